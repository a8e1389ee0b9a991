"""At most one host sync per optimizer step outside logging steps, counted on the demo run.

On a GPU every read of a device value into Python (``item``, ``bool``, ``tolist``, a copy to the
CPU, a data-dependent shape) makes the host wait for the device, so the two take turns instead of
overlapping. On CPU the same calls run, so a :class:`~torch.overrides.TorchFunctionMode` that counts
them during training counts what a GPU would wait on.

Counted apart: transformers' SDPA mask builder asks once per forward whether the batch has any
padding (``padding_mask.all()``, to drop the mask and reach the flash kernel), and the Trainer's
own loop (see the Trainer test).
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.overrides import TorchFunctionMode

from mtl.training.run import EngineRun
from tests.test_engines import run

#: Tensor methods that wait for the device's result (copies to the host or Python values)
SYNCS = {
    torch.Tensor.item: "item",
    torch.Tensor.__bool__: "__bool__",
    torch.Tensor.tolist: "tolist",
    torch.Tensor.cpu: "cpu",
    torch.Tensor.numpy: "numpy",
    torch.Tensor.__float__: "__float__",
    torch.Tensor.__int__: "__int__",
    torch.Tensor.nonzero: "nonzero",
    torch.nonzero: "nonzero",
}


class SyncCounter(TorchFunctionMode):
    """Counts the host syncs of each optimizer step, apart from what ``EngineRun.end_step`` does.

    ``end_step`` (logging, evaluation, checkpoints) is counted separately per step, so a step's
    count is its forward, backward, clipping, check and optimizer step.
    """

    def __init__(self) -> None:
        super().__init__()
        self.step_counts: list[Counter[str]] = []
        self.end_step_counts: list[Counter[str]] = []
        self.current: Counter[str] = Counter()
        self.counting = False

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        if self.counting:
            name = SYNCS.get(func)
            if name is None and func is torch.Tensor.__getitem__ and _has_bool_index(args[1]):
                name = "boolean index"  # the result's shape depends on the mask's values
            if name is not None:
                self.current[f"{_caller_library()}{name}"] += 1
        return func(*args, **(kwargs or {}))


#: libraries whose syncs are counted apart, by the module that makes them
LIBRARIES = {"transformers.masking_utils": "transformers mask", "transformers.trainer": "Trainer"}


def _caller_library() -> str:
    """``"<library>: "`` for calls made by one of :data:`LIBRARIES`, else ``""`` (our code)."""
    frame = sys._getframe(2)
    for _ in range(3):
        if frame is None:
            break
        module = frame.f_globals.get("__name__", "")
        if module.startswith(("mtl.", "heads", "samplers")):
            break  # the nearest caller is ours
        if module in LIBRARIES:
            return f"{LIBRARIES[module]}: "
        frame = frame.f_back
    return ""


def _by(counts: Counter[str], library: str | None) -> int:
    """The syncs of ``library`` (None: ours) in ``counts``."""
    if library is None:
        return sum(
            v for k, v in counts.items() if not any(k.startswith(f"{lib}: ") for lib in LIBRARIES.values())
        )
    return sum(v for k, v in counts.items() if k.startswith(f"{library}: "))


def _has_bool_index(index: Any) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in items)


@pytest.fixture
def sync_counter(monkeypatch: pytest.MonkeyPatch) -> SyncCounter:
    """Counting from the end of ``EngineRun.begin`` to the end of the run, step by step."""
    counter = SyncCounter()
    begin, end_step = EngineRun.begin, EngineRun.end_step

    def counted_begin(self: EngineRun) -> None:
        begin(self)
        counter.current = Counter()
        counter.counting = True

    def counted_end_step(self: EngineRun, step: int) -> bool:
        counter.step_counts.append(counter.current)
        counter.current = Counter()
        stop = end_step(self, step)
        counter.end_step_counts.append(counter.current)
        counter.current = Counter()
        return stop

    monkeypatch.setattr(EngineRun, "begin", counted_begin)
    monkeypatch.setattr(EngineRun, "end_step", counted_end_step)
    return counter


def no_eval() -> list[str]:
    return [f"tasks.{t}.dev=null" for t in ("ynat", "nli", "sts", "ner", "re", "dp", "mrc", "wos")]


@pytest.mark.slow
@pytest.mark.parametrize(("engine", "precision"), [("loop", "fp32"), ("loop", "fp16"), ("trainer", "fp16")])
def test_each_step_syncs_once_outside_logging_steps(
    tmp_path: Path, sync_counter: SyncCounter, engine: str, precision: str
) -> None:
    steps, log_every, accum = 12, 5, 2  # as tests.test_engines.tiny_config sets them
    with sync_counter:
        summary, _ = run(tmp_path, engine, steps, extra=[*no_eval(), f"train.precision={precision}"])
    assert len(summary["losses"]) == steps and len(sync_counter.step_counts) == steps
    logging = {s for s in range(1, steps + 1) if s % log_every == 0 or s == steps}
    for step, (counts, end) in enumerate(
        zip(sync_counter.step_counts, sync_counter.end_step_counts, strict=True), start=1
    ):
        seen = f"step {step}: {dict(counts)}, end_step {dict(end)}"
        assert _by(counts, None) == 1, seen  # the gradient-norm check, nothing else of ours
        assert _by(counts, "transformers mask") == accum, seen  # transformers: any padding? per forward
        # The Trainer reads its loss and gradient norm at its own logging, after our end_step: the
        # counts of the step that follows a logging step. Nothing of its own in any other step.
        assert _by(counts, "Trainer") == (2 if engine == "trainer" and step - 1 in logging else 0), seen
        assert _by(end, None) == (1 if step in logging else 0), seen  # the losses, in one read
