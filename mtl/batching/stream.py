"""The multi-task batch stream both engines train on: the sampler picks a task, that task's
length-grouped batch order gives the indices, the collator pads them.

It is an endless iterator of ``{"task": name, **tensors}`` dicts with a JSON state, so the custom
loop and the Trainer see the same batches in the same order and a resumed run continues exactly.
With ``tasks_per_step`` K > 1 each item is a group ``{"tasks": {name: tensors, ...}}`` of K distinct
tasks (:meth:`MultiTaskStream.draw_group`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch

from mtl.batching.collate import train_batch_for
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
        tasks_per_step: int = 1,
    ) -> None:
        """``sampler`` picks the task of each batch: the run's, from :func:`mtl.training.budget.build_sampler`;
        ``tasks_per_step`` > 1 yields groups of that many distinct tasks (``train.tasks_per_step``)."""
        self.data = data
        self.device = device
        self.sampler = sampler
        self.tasks_per_step = tasks_per_step
        self.rank = rank
        # Draws a task makes on its batches (masked LM's masks): saved with the stream, so resume repeats
        # them. One generator per rank (rank 0's is a single process's): the ranks mask different rows,
        # so their generators advance differently and each is saved (Session.training_state).
        self.rng = np.random.default_rng(seed + 7 if rank == 0 else [seed + 7, rank])
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
        if self.tasks_per_step > 1:
            return {"tasks": {task: self.task_batch(task) for task in self.draw_group()}}
        task = next(self.sampler)
        return {"task": task, **self.task_batch(task)}

    def task_batch(self, task: str) -> dict[str, Any]:
        """The next training batch of ``task`` in its own batch order."""
        td = self.data[task]
        return train_batch_for(td.task, td.train, next(self.batches[task]), self.device, self.rng)  # type: ignore[arg-type]

    def draw_group(self) -> list[str]:
        """``tasks_per_step`` distinct tasks, in the order the sampler first draws them.

        Draws from the sampler until that many distinct tasks came up, dropping repeats: for a
        sampler with probabilities p this is sampling without replacement, each further task with
        p renormalised over the tasks not drawn yet. Deterministic, and resumed by the sampler's own
        state (a group may take several draws: the sampler's position runs ahead of the steps).
        """
        group: list[str] = []
        while len(group) < self.tasks_per_step:
            task = next(self.sampler)
            if task not in group:
                group.append(task)
        return group

    def state_dict(self) -> dict[str, Any]:
        """Sampler position, every task's batch-order position and this rank's draw generator (JSON).

        Under DDP the sampler and batch positions are the same on every rank; the generator is not:
        :meth:`mtl.training.session.Session.training_state` replaces ``rng`` with every rank's, a list
        in rank order.
        """
        return {
            "sampler": self.sampler.state_dict(),
            "batches": {k: b.state_dict() for k, b in self.batches.items()},
            "rng": self.rng.bit_generator.state,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from :meth:`state_dict` (``rng``: this rank's state, or a list of every rank's)."""
        self.sampler.load_state_dict(state["sampler"])
        for name, s in state["batches"].items():
            self.batches[name].load_state_dict(s)
        rng = state.get("rng")  # absent from checkpoints written before masked LM existed
        if isinstance(rng, list):
            # Saved by more processes, or fewer: a rank without a saved state keeps its fresh generator.
            rng = rng[self.rank] if self.rank < len(rng) else None
        if rng is not None:
            self.rng.bit_generator.state = rng
