"""Per-task batch order: length-grouped, shuffled, resumable, shard-aware.

Each epoch shuffles the task's features, sorts them by length inside chunks of
``group_factor`` batches (so a batch holds similar lengths and pads little), cuts the batches and
shuffles their order. The order depends only on (seed, epoch), so the state is two integers.
``batch_size`` is global: under DDP every rank builds the same global batches of ``batch_size`` rows
and takes every ``world_size``-th row from its rank on (:func:`~mtl.training.budget.per_rank_batch_size`
rows; a short last batch splits as evenly as it can), so all ranks train the same task on different
shards at every step, and a run draws the same batches at any world size.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np


class TaskBatches:
    """An endless, resumable stream of index batches for one task."""

    def __init__(
        self,
        lengths: np.ndarray,
        batch_size: int,
        *,
        seed: int,
        group_factor: int = 50,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if len(lengths) == 0:
            raise ValueError("a task with no training features cannot be batched")
        self.lengths = np.asarray(lengths)
        self.batch_size = batch_size
        self.seed = seed
        self.group_factor = group_factor
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.position = 0  # batches of the current epoch already handed out
        self._order: list[np.ndarray] | None = None

    def epoch_batches(self, epoch: int) -> list[np.ndarray]:
        """The global batches of one epoch, in the order they are drawn."""
        rng = np.random.default_rng([self.seed, epoch])
        perm = rng.permutation(len(self.lengths))
        size = self.batch_size
        chunk = size * self.group_factor
        batches: list[np.ndarray] = []
        for start in range(0, len(perm), chunk):
            part = perm[start : start + chunk]
            part = part[np.argsort(-self.lengths[part], kind="stable")]
            batches.extend(part[i : i + size] for i in range(0, len(part), size))
        return [batches[i] for i in rng.permutation(len(batches))]

    def __iter__(self) -> Iterator[np.ndarray]:
        return self

    def __next__(self) -> np.ndarray:
        if self._order is None:
            self._order = self.epoch_batches(self.epoch)
        if self.position >= len(self._order):
            self.epoch, self.position = self.epoch + 1, 0
            self._order = self.epoch_batches(self.epoch)
        batch = self._order[self.position]
        self.position += 1
        # A short last batch may leave a rank with nothing: it then repeats the first index so
        # every rank still runs the step (DDP needs all ranks to join each all-reduce).
        shard = batch[self.rank :: self.world_size]
        return shard if len(shard) else batch[:1]

    @property
    def batches_per_epoch(self) -> int:
        """Number of global batches in one pass over the task (the same at any world size)."""
        return -(-len(self.lengths) // self.batch_size)

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable position in the stream."""
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a saved position."""
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self._order = None


def eval_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Deterministic evaluation batches, longest first (pads least, fails fast on memory)."""
    order = np.argsort(-np.asarray(lengths), kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def longest_batch(lengths: np.ndarray, batch_size: int) -> list[int]:
    """Indices of the ``batch_size`` longest features: the batch whose activations peak."""
    return [int(i) for i in np.argsort(-np.asarray(lengths), kind="stable")[:batch_size]]
