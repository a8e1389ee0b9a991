"""Run a model over a task's features, decode official predictions, score them."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from mtl.batching.collate import batch_for
from mtl.batching.order import eval_batches
from mtl.batching.prepare import Split
from mtl.modeling.model import MultiTaskModel
from mtl.tasks.base import Task


@torch.no_grad()
def predict_features(
    model: MultiTaskModel,
    task: Task,
    split: Split,
    *,
    batch_size: int,
    device: torch.device | str = "cpu",
    progress: bool = True,
    autocast_dtype: torch.dtype | None = None,
    shard: tuple[int, int] = (0, 1),
) -> list[dict[str, np.ndarray]]:
    """Head predictions for every feature of ``split``, in feature order (targets ignored).

    ``shard=(rank, world_size)`` predicts only every ``world_size``-th batch from ``rank`` on (the
    other entries stay None): the batches are the ones a single process runs, so predictions do
    not depend on how many processes share the work (:func:`gather_predictions`).
    """
    was_training = model.training
    model.eval()
    outputs: list[dict[str, np.ndarray] | None] = [None] * len(split.features)
    rank, world_size = shard
    batches = eval_batches(split.lengths, batch_size)[rank::world_size]
    bar = tqdm(batches, desc=f"predict {task.name}", unit="batch", disable=not progress, leave=False)
    device_type = torch.device(device).type
    for indices in bar:
        batch = batch_for(task, split, indices, device)
        with torch.autocast(
            device_type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None
        ):
            pred = model.predict(task.name, **batch)
        pred = {
            k: v.float().cpu().numpy() if v.is_floating_point() else v.cpu().numpy() for k, v in pred.items()
        }
        for row, index in enumerate(indices):
            outputs[int(index)] = {k: v[row] for k, v in pred.items()}
    model.train(was_training)
    return outputs  # type: ignore[return-value]


def gather_predictions(
    model: MultiTaskModel, task: Task, split: Split, **kwargs: Any
) -> list[dict[str, np.ndarray]]:
    """:func:`predict_features` split across the processes of a DDP run, every output on every rank.

    Each rank predicts its shard of the batches; the shards are exchanged so that every rank decodes
    and scores the whole split alike (and so takes the same best-checkpoint decisions). Without a
    process group this is :func:`predict_features`.
    """
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return predict_features(model, task, split, **kwargs)
    rank, world_size = dist.get_rank(), dist.get_world_size()
    mine = predict_features(model, task, split, shard=(rank, world_size), **kwargs)
    shards: list[Any] = [None] * world_size
    dist.all_gather_object(shards, {i: out for i, out in enumerate(mine) if out is not None})
    outputs: list[dict[str, np.ndarray] | None] = [None] * len(split.features)
    for shard in shards:
        for index, out in shard.items():
            outputs[index] = out
    return outputs  # type: ignore[return-value]


def evaluate_split(
    model: MultiTaskModel,
    task: Task,
    split: Split,
    *,
    batch_size: int,
    device: torch.device | str = "cpu",
    progress: bool = True,
    autocast_dtype: torch.dtype | None = None,
) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """(contract predictions, official metrics) of the model on a labelled split.

    Under DDP the ranks share the prediction work and all return the same result.
    """
    outputs = gather_predictions(
        model,
        task,
        split,
        batch_size=batch_size,
        device=device,
        progress=progress,
        autocast_dtype=autocast_dtype,
    )
    predictions = task.decode(split.records, split.features, outputs)
    gold = task.gold_units(split.records)
    by_key = {task.key_of(p): p for p in predictions}
    keys = list(gold)
    metrics = task.compute_metrics([gold[k] for k in keys], [by_key[k] for k in keys])
    return predictions, {k: float(v) for k, v in metrics.items()}
