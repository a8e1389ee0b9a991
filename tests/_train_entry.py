"""``klue-mtl`` for subprocess tests, with test-only instrumentation.

``python tests/_train_entry.py ARGS [--then ARGS ...]`` runs :func:`mtl.cli.main.main` once per argument
list, in one process (under ``torchrun`` the process group is joined once and reused, which saves a
launch per run), and exits with the first non-zero status. Switches:

- ``KLUE_MTL_TEST_DRAWS=1`` (environment): every drawn training batch is appended as one JSON line
  ``{"task", "indices"}`` to ``<output folder>/draws-rank<R>.jsonl`` (R = this process's rank), so a
  test can check that all ranks train the same task on different shards at every step;
- ``--no-dropout`` (in one run's arguments, removed before ``main`` sees it, like the next switch):
  every dropout module of the model gets ``p = 0``, so the run is a deterministic function of its
  global batches (DDP and a single process can be compared);
- ``--nan-at STEP:RANK``: the loss of the batch drawn at optimizer step STEP on rank RANK is
  multiplied by NaN, keeping its graph, as an overflow would (counts draws: use it without gradient
  accumulation);
- ``--signal-at STEP:RANK``: the process of rank RANK sends itself SIGTERM when it draws the batch of
  optimizer step STEP (counts draws, like ``--nan-at``); the other ranks get no signal;
- ``KLUE_MTL_TEST_STATUS=1`` (environment): each run's exit status is written to
  ``<output folder>/status-rank<R>.txt`` (torchrun itself reports only that some rank failed);
- ``KLUE_MTL_TEST_PREDICTIONS=1`` (environment): every call of
  :func:`mtl.evaluation.inference.predict_features` appends ``{"task", "features", "total"}`` (features
  this rank predicted, features in the split) to ``<output folder>/predicted-rank<R>.jsonl`` (training
  runs and ``evaluate`` alike: the folder is the command's ``--output``);
- ``KLUE_MTL_TEST_MEMORY_CHECK=1`` (environment): the memory check before step 1 runs on CPU too, with
  a real forward and backward of each task's largest batch (the GPU's peak-memory reading replaced
  by 0), and appends ``{"task", "rows"}`` per batch to ``<output folder>/memory-rank<R>.jsonl``;
- ``KLUE_MTL_TEST_ALLREDUCES=1`` (environment): a DDP communication hook appends, whenever a gradient
  all-reduce completes its last bucket, the number of batches drawn so far to
  ``<output folder>/allreduces-rank<R>.txt`` (both engines wrap the model in the same
  ``DistributedDataParallel``).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
from torch.nn.parallel import DistributedDataParallel

import mtl.evaluation.inference
import mtl.training.memory
import mtl.training.run
import mtl.training.session
from mtl.batching.order import TaskBatches
from mtl.batching.stream import MultiTaskStream
from mtl.cli.main import main
from mtl.modeling.model import MultiTaskModel

SEPARATOR = "--then"
NAN_AT = "--nan-at"
SIGNAL_AT = "--signal-at"
AT_SWITCHES = {NAN_AT: "nan_at", SIGNAL_AT: "signal_at"}  # switch: its (step, rank) in the run's state
NO_DROPOUT = "--no-dropout"
SetAttr = Callable[[Any, str, Any], None]

# Per-run state of the instrumentation: reset when a run builds its session.
_run: dict[str, Any] = {
    "draw_log": None,
    "output": None,
    "indices": None,
    "draws": 0,
    "nan_at": None,
    "signal_at": None,
    "no_dropout": False,
    "rank": 0,
}


def log_draws(set_attr: SetAttr = setattr) -> None:
    """Log every drawn batch to the current run's draw log (tests pass ``monkeypatch.setattr``)."""
    next_indices, next_batch = TaskBatches.__next__, MultiTaskStream.__next__

    def indices(self: TaskBatches) -> Any:
        _run["indices"] = next_indices(self)
        return _run["indices"]

    def batch(self: MultiTaskStream) -> dict[str, Any]:
        out = next_batch(self)
        row = {"task": out["task"], "indices": [int(i) for i in _run["indices"]]}
        with Path(_run["draw_log"]).open("a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        return out

    set_attr(TaskBatches, "__next__", indices)
    set_attr(MultiTaskStream, "__next__", batch)


def poison_losses(set_attr: SetAttr = setattr) -> None:
    """Make the loss NaN where the current run's ``nan_at`` (step, rank) says; send SIGTERM where its
    ``signal_at`` says."""
    next_batch, forward = MultiTaskStream.__next__, MultiTaskModel.forward

    def counting(self: MultiTaskStream) -> dict[str, Any]:
        _run["draws"] += 1
        if _run["signal_at"] == (_run["draws"], _run["rank"]):
            os.kill(os.getpid(), signal.SIGTERM)
        return next_batch(self)

    def poisoned(self: MultiTaskModel, task: str, **batch: torch.Tensor) -> Any:
        out = forward(self, task, **batch)
        if self.training and _run["nan_at"] == (_run["draws"], _run["rank"]):
            out.loss = out.loss * float("nan")
        return out

    set_attr(MultiTaskStream, "__next__", counting)
    set_attr(MultiTaskModel, "forward", poisoned)


def without_dropout(model: torch.nn.Module) -> None:
    """``p = 0`` in every dropout module (the encoder's attention dropout is a config value)."""
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0


def log_predictions(set_attr: SetAttr = setattr) -> None:
    """Log how many features of a split this rank predicts (see the module docstring)."""
    predict = mtl.evaluation.inference.predict_features

    def logged(model: Any, task: Any, split: Any, **kwargs: Any) -> Any:
        outputs = predict(model, task, split, **kwargs)
        row = {"task": task.name, "features": sum(o is not None for o in outputs), "total": len(outputs)}
        with (Path(_run["output"]) / f"predicted-rank{_run['rank']}.jsonl").open("a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        return outputs

    set_attr(mtl.evaluation.inference, "predict_features", logged)


def check_memory_on_cpu(set_attr: SetAttr = setattr) -> None:
    """Run the memory check with a CPU forward and backward (see the module docstring)."""
    check = mtl.training.memory.check_memory

    def checked(session: Any) -> Any:
        def measure(task: str, batch: dict[str, Any]) -> int:
            with (Path(_run["output"]) / f"memory-rank{_run['rank']}.jsonl").open("a", encoding="utf-8") as f:
                f.write(json.dumps({"task": task, "rows": int(batch["input_ids"].shape[0])}) + "\n")
            try:
                session.model(task, **batch).loss.backward()
            finally:
                session.model.zero_grad(set_to_none=True)
            return 0

        return check(session, measure)

    set_attr(mtl.training.run, "check_memory", checked)


def count_allreduces(set_attr: SetAttr = setattr) -> None:
    """Log each completed gradient all-reduce of the current run (see the module docstring)."""
    init = DistributedDataParallel.__init__

    def hooked(self: DistributedDataParallel, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        log = Path(_run["output"]) / f"allreduces-rank{_run['rank']}.txt"

        def hook(state, bucket):  # type: ignore[no-untyped-def]  # (DDP checks real annotations, if any)
            if bucket.is_last():
                with log.open("a", encoding="utf-8") as f:
                    f.write(f"{_run['draws']}\n")
            return default_hooks.allreduce_hook(state, bucket)

        self.register_comm_hook(None, hook)

    set_attr(DistributedDataParallel, "__init__", hooked)


def instrument_sessions(*, no_dropout: bool | None = None, set_attr: SetAttr = setattr) -> None:
    """Reset the per-run state when a session is built; switch dropout off (``no_dropout``, or else
    the current run's ``--no-dropout``)."""
    build = mtl.training.session.build_session

    def instrumented(*args: Any, **kwargs: Any) -> mtl.training.session.Session:
        session = build(*args, **kwargs)
        _run.update(
            draw_log=session.output_dir / f"draws-rank{session.rank}.jsonl",
            output=session.output_dir,
            draws=0,
            rank=session.rank,
        )
        if _run["no_dropout"] if no_dropout is None else no_dropout:
            without_dropout(session.model)
        return session

    set_attr(mtl.training.session, "build_session", instrumented)


def read_draws(path: Path) -> list[dict[str, Any]]:
    """The rows a run logged, in draw order."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _split_runs(argv: list[str]) -> list[tuple[list[str], dict[str, Any]]]:
    """The ``--then``-separated runs: (arguments for ``main``, this run's switches)."""
    defaults = {"nan_at": None, "signal_at": None, "no_dropout": False}
    runs: list[tuple[list[str], dict[str, Any]]] = [([], dict(defaults))]
    args = iter(argv)
    for arg in args:
        if arg == SEPARATOR:
            runs.append(([], dict(defaults)))
        elif arg in AT_SWITCHES:
            step, rank = next(args).split(":")
            runs[-1][1][AT_SWITCHES[arg]] = (int(step), int(rank))
        elif arg == NO_DROPOUT:
            runs[-1][1]["no_dropout"] = True
        else:
            runs[-1][0].append(arg)
    return runs


def run(argv: list[str]) -> int:
    """Run each ``--then``-separated argument list; the first non-zero status ends the sequence."""
    if os.environ.get("KLUE_MTL_TEST_DRAWS") == "1":
        log_draws()
    if os.environ.get("KLUE_MTL_TEST_PREDICTIONS") == "1":
        log_predictions()
    if os.environ.get("KLUE_MTL_TEST_ALLREDUCES") == "1":
        count_allreduces()
    if os.environ.get("KLUE_MTL_TEST_MEMORY_CHECK") == "1":
        check_memory_on_cpu()
    poison_losses()
    instrument_sessions()
    for command, switches in _split_runs(argv):
        # Until a run builds its session (evaluate builds none): its --output and this process's rank.
        output = command[command.index("--output") + 1] if "--output" in command else None
        _run.update(switches, output=output, rank=int(os.environ.get("RANK", "0")))
        status = main(command)
        if output is not None and os.environ.get("KLUE_MTL_TEST_STATUS") == "1":
            Path(output, f"status-rank{_run['rank']}.txt").write_text(f"{status}\n", encoding="utf-8")
        if status:
            return status
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
