"""Multi-task strategies: several tasks per step, loss weighting, gradient aggregation.

- ``train.tasks_per_step`` K: each optimizer step (each accumulation micro-step) trains K distinct
  tasks (:mod:`mtl.batching.stream`, :mod:`samplers.groups`);
- ``train.weighting``: how each task's loss is weighted (:mod:`.weighting`);
- ``train.aggregator``: how the K tasks' encoder gradients are combined (:mod:`.aggregation`).

The task-interaction probe (``train.interaction_every``, ``klue-mtl interaction``) is
:mod:`mtl.evaluation.interaction`.
"""

from __future__ import annotations

from mtl.config import RunConfig
from mtl.errors import KlueInputError
from mtl.training.strategies.aggregation import AGGREGATORS, EXTRA, torchjd_installed
from mtl.training.strategies.weighting import WEIGHTINGS, Weighting, build_weighting, register_weighting

__all__ = ["Weighting", "build_weighting", "check_strategies", "register_weighting"]


def check_strategies(cfg: RunConfig, world_size: int = 1) -> None:
    """Exit 2 before any data is read when the strategy keys cannot run as given."""
    t = cfg.train

    def fail(key: str, message: str) -> KlueInputError:
        return KlueInputError(None, key, message, kind="key")

    if t.weighting not in WEIGHTINGS:
        raise fail("train.weighting", f"unknown weighting {t.weighting!r}; known: {', '.join(WEIGHTINGS)}")
    if t.aggregator != "sum" and t.aggregator not in AGGREGATORS:
        raise fail(
            "train.aggregator", f"unknown aggregator {t.aggregator!r}; known: sum, {', '.join(AGGREGATORS)}"
        )
    if t.aggregator != "sum" and t.tasks_per_step == 1:
        raise fail(
            "train.aggregator",
            f"{t.aggregator} combines the gradients of several tasks, but a step has one task: "
            "set train.tasks_per_step to 2 or more, or keep train.aggregator: sum",
        )
    if t.aggregator != "sum" and not torchjd_installed():
        raise fail(
            "train.aggregator",
            f"{t.aggregator} comes from TorchJD, which is not installed: pip install 'klue-mtl[{EXTRA}]'",
        )
    if t.aggregator != "sum" and world_size > 1:
        raise fail(
            "train.aggregator",
            f"{t.aggregator} is single-process only (the per-task encoder gradients are not all-reduced); "
            "use train.aggregator: sum under torchrun",
        )
    if t.weighting != "static" and world_size > 1:
        raise fail(
            "train.weighting",
            f"{t.weighting} weights are computed from each process's own losses and would drift apart "
            "between processes; use train.weighting: static under torchrun",
        )
    targets = [n for n, tc in cfg.tasks.items() if tc.epochs is not None]
    if t.tasks_per_step > 1 and targets:
        raise fail(
            f"tasks.{targets[0]}.epochs",
            "epoch targets are solved for one task per step; drop them or set train.tasks_per_step: 1",
        )
