"""train.memory_check: each task's largest batch tried before step 1; a stand-in measures GPU memory."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from mtl.errors import KlueInputError
from mtl.modeling.encoder import is_checkpointing
from mtl.training.memory import check_memory, largest_batches
from mtl.training.session import build_session
from tests.test_engines import no_eval, tiny_config

GIB = 2**30


@pytest.fixture(scope="module")
def session_factory(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("memory")

    def make(extra: list[str] | None = None):
        cfg = tiny_config(root, 4, [*no_eval(), *(extra or [])])
        return build_session(cfg, root / "run", progress=False)

    return make


def fake_gpu(
    session: Any, too_big: set[str], fits_with_checkpointing: bool
) -> tuple[Any, list[tuple[str, bool]]]:
    """A device where the batches of ``too_big`` run out of memory (unless checkpointed, if allowed)."""
    calls: list[tuple[str, bool]] = []

    def measure(task: str, batch: dict[str, Any]) -> int:
        checkpointed = is_checkpointing(session.model.encoder)
        calls.append((task, checkpointed))
        if task in too_big and not (checkpointed and fits_with_checkpointing):
            raise torch.OutOfMemoryError("CUDA out of memory (fake)")
        return batch["input_ids"].numel() * 1000

    return measure, calls


def test_on_cpu_or_when_off_the_check_does_nothing(session_factory) -> None:
    assert check_memory(session_factory()) is None  # CPU: nothing measured, nothing changed
    session = session_factory(["train.memory_check=false"])
    measure, calls = fake_gpu(session, set(), True)
    assert check_memory(session, measure) is None and not calls


def test_every_task_is_tried_at_its_longest_batch_and_its_peak_reported(
    session_factory, capsys: pytest.CaptureFixture[str]
) -> None:
    session = session_factory()
    measure, calls = fake_gpu(session, set(), True)
    report = check_memory(session, measure)
    assert report is not None and not report.enabled_checkpointing
    assert [t for t, _ in calls] == list(session.data)
    for name, td in session.data.items():
        lengths = td.train.lengths
        rows = min(td.task.settings.batch_size, len(lengths))
        assert report.shapes[name] == (rows, int(max(lengths)))  # the task's longest features
    out = capsys.readouterr().out
    assert "memory check" in out and all(name in out for name in session.data)


def test_a_task_that_fits_only_checkpointed_turns_checkpointing_on_and_says_so(
    session_factory, capsys: pytest.CaptureFixture[str]
) -> None:
    session = session_factory()
    weights = {k: v.clone() for k, v in session.model.state_dict().items()}
    rng = torch.get_rng_state()
    measure, calls = fake_gpu(session, {"mrc"}, fits_with_checkpointing=True)
    report = check_memory(session, measure)
    assert report is not None and report.enabled_checkpointing
    assert ("mrc", False) in calls and ("mrc", True) in calls
    assert session.cfg.train.gradient_checkpointing and is_checkpointing(session.model.encoder)
    assert "the mrc batch" in capsys.readouterr().out
    # The check changed neither the weights nor the random state.
    assert all(torch.equal(v, weights[k]) for k, v in session.model.state_dict().items())
    assert torch.equal(torch.get_rng_state(), rng)


def test_a_task_that_never_fits_stops_naming_task_shape_and_options(session_factory) -> None:
    session = session_factory()
    measure, _ = fake_gpu(session, {"wos"}, fits_with_checkpointing=False)
    with pytest.raises(KlueInputError) as caught:
        check_memory(session, measure)
    rows, tokens = largest_batches(session)["wos"]["input_ids"].shape
    message = str(caught.value)
    assert "tasks.wos" in message and f"{rows} rows x {tokens} tokens" in message
    for option in ("tasks.wos.batch_size", "train.gradient_accumulation_steps", "gradient checkpointing"):
        assert option in message, message


@pytest.mark.parametrize(
    ("other_rank", "checkpointing", "stops"),
    [((1, 0), True, False), ((0, 1), False, True), ((0, 0), False, False)],
)
def test_ranks_agree_checkpointing_if_one_needs_it_and_all_stop_if_one_must(
    session_factory,
    monkeypatch: pytest.MonkeyPatch,
    other_rank: tuple[int, int],
    checkpointing: bool,
    stops: bool,
) -> None:
    """Every task fits on this rank; the other rank reports (needed checkpointing, cannot fit)."""
    session = session_factory()
    session.world_size = 2
    reduced: list[list[int]] = []

    def all_reduce(flags: torch.Tensor, op: Any) -> None:
        reduced.append(flags.tolist())
        flags.copy_(torch.maximum(flags, torch.tensor(other_rank)))

    monkeypatch.setattr(torch.distributed, "all_reduce", all_reduce)
    measure, _ = fake_gpu(session, set(), True)
    if stops:
        with pytest.raises(KlueInputError, match="another process"):
            check_memory(session, measure)
    else:
        report = check_memory(session, measure)
        assert report is not None and report.enabled_checkpointing is checkpointing
        for name, td in session.data.items():  # each rank's share of the global batch
            assert report.shapes[name][0] == min(td.task.settings.batch_size // 2, len(td.train.lengths))
    assert reduced == [[0, 0]]  # this rank's own verdict: fits without checkpointing
    assert is_checkpointing(session.model.encoder) is checkpointing
    assert session.cfg.train.gradient_checkpointing is checkpointing
