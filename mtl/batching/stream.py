"""The multi-task batch stream both engines train on: the sampler picks a task, that task's
length-grouped batch order gives the indices, the collator pads them.

It is an endless iterator of ``{"task": name, **tensors}`` dicts with a JSON state, so the custom
loop and the Trainer see the same batches in the same order and a resumed run continues exactly.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch

from mtl.batching.collate import batch_for
from mtl.batching.order import TaskBatches
from mtl.batching.prepare import TaskData
from samplers import TaskSampler


class MultiTaskStream:
    """Endless ``{"task", **batch}`` iterator over every task's training features."""

    def __init__(
        self,
        data: Mapping[str, TaskData],
        *,
        sampler: TaskSampler,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        device: torch.device | str = "cpu",
    ) -> None:
        """``sampler`` picks the task of each batch: the run's, from :func:`mtl.training.budget.build_sampler`."""
        self.data = data
        self.device = device
        self.sampler = sampler
        # Draws a task makes on its batches (masked LM's masks): saved with the stream, so resume repeats them.
        self.rng = np.random.default_rng(seed + 7)
        self.batches = {
            name: TaskBatches(
                td.train.lengths,  # type: ignore[union-attr]
                td.task.settings.batch_size,
                seed=seed + 1000 * (i + 1),
                rank=rank,
                world_size=world_size,
            )
            for i, (name, td) in enumerate(data.items())
        }

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self

    def __next__(self) -> dict[str, Any]:
        task = next(self.sampler)
        td = self.data[task]
        batch = batch_for(td.task, td.train, next(self.batches[task]), self.device)  # type: ignore[arg-type]
        return {"task": task, **td.task.train_batch(batch, self.rng)}

    def state_dict(self) -> dict[str, Any]:
        """Sampler position and every task's batch-order position (JSON)."""
        return {
            "sampler": self.sampler.state_dict(),
            "batches": {k: b.state_dict() for k, b in self.batches.items()},
            "rng": self.rng.bit_generator.state,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from :meth:`state_dict`."""
        self.sampler.load_state_dict(state["sampler"])
        for name, s in state["batches"].items():
            self.batches[name].load_state_dict(s)
        if "rng" in state:  # absent from checkpoints written before masked LM existed
            self.rng.bit_generator.state = state["rng"]
