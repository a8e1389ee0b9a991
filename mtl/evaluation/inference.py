"""The one inference loop: evaluation during training, ``evaluate``, ``predict`` and the Python API.

:func:`predict_features` runs a model over a task's features in length-sorted, dynamically padded
batches under ``torch.inference_mode``; :func:`evaluate_split` decodes the outputs into contract
predictions and scores them. An autocast dtype covers the encoder only: the model runs every head
(and its loss) in fp32 (:meth:`mtl.modeling.model.MultiTaskModel.forward`). Which dtype a run uses
is :func:`mtl.modeling.precision.pick_autocast`'s choice; the callers pass it in.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from mtl.batching.collate import batch_for
from mtl.batching.order import eval_batches
from mtl.batching.prepare import Split
from mtl.modeling.model import MultiTaskModel
from mtl.modeling.precision import autocast
from mtl.tasks.base import Task


def predict_features(
    model: MultiTaskModel,
    task: Task,
    split: Split,
    *,
    batch_size: int,
    device: torch.device | str = "cpu",
    autocast_dtype: torch.dtype | None = None,
    progress: bool = False,
    shard: tuple[int, int] = (0, 1),
) -> list[dict[str, np.ndarray]]:
    """Head predictions (NumPy, floats as fp32) for every feature of ``split``, in feature order.

    Targets in the features are ignored. The model is put in eval mode and given back in the mode
    it came in. ``progress`` shows a bar on a terminal only (no carriage-return lines in a log file).
    ``shard=(rank, world_size)`` predicts only every ``world_size``-th batch from ``rank`` on (the
    other entries stay None): the batches are the ones a single process runs, so predictions do
    not depend on how many processes share the work (:func:`gather_predictions`).
    """
    device = torch.device(device)
    was_training = model.training
    model.eval()
    outputs: list[dict[str, np.ndarray] | None] = [None] * len(split.features)
    # Longest first: each batch pads to its own longest member, and running out of memory fails fast.
    rank, world_size = shard
    batches = eval_batches(split.lengths, batch_size)[rank::world_size]
    # disable=None: tqdm draws only when its stream is a terminal.
    bar = tqdm(
        batches, desc=f"predict {task.name}", unit="batch", disable=None if progress else True, leave=False
    )
    try:
        with inference_region(device, autocast_dtype):
            for indices in bar:
                store_rows(
                    model.predict(task.name, **batch_for(task, split, indices, device)), indices, outputs
                )
    finally:
        model.train(was_training)
    return outputs  # type: ignore[return-value]


@contextlib.contextmanager
def inference_region(device: torch.device, autocast_dtype: torch.dtype | None) -> Iterator[None]:
    """``torch.inference_mode`` plus autocast in ``autocast_dtype`` (None: fp32) on ``device``'s type;
    the model turns autocast off around its heads."""
    with torch.inference_mode(), autocast(device, autocast_dtype):
        yield


def store_rows(pred: dict[str, torch.Tensor], indices: Sequence[int], outputs: list[Any]) -> None:
    """Put row ``r`` of every prediction tensor (NumPy, floats as fp32) at ``outputs[indices[r]]``."""
    arrays = {k: (v.float() if v.is_floating_point() else v).cpu().numpy() for k, v in pred.items()}
    for row, index in enumerate(indices):
        outputs[int(index)] = {k: v[row] for k, v in arrays.items()}


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
    autocast_dtype: torch.dtype | None = None,
    progress: bool = False,
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
        autocast_dtype=autocast_dtype,
        progress=progress,
    )
    predictions = task.decode(split.records, split.features, outputs)
    gold = task.gold_units(split.records)
    by_key = {task.key_of(p): p for p in predictions}
    keys = list(gold)
    metrics = task.compute_metrics([gold[k] for k in keys], [by_key[k] for k in keys])
    return predictions, {k: float(v) for k, v in metrics.items()}
