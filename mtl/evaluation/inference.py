"""Run a model over a task's features, decode official predictions, score them."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
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
) -> list[dict[str, np.ndarray]]:
    """Head predictions for every feature of ``split``, in feature order (targets ignored)."""
    was_training = model.training
    model.eval()
    outputs: list[dict[str, np.ndarray] | None] = [None] * len(split.features)
    batches = eval_batches(split.lengths, batch_size)
    # disable=None: tqdm shows the bar on a terminal only (a log or pipe gets no carriage returns)
    bar = tqdm(
        batches, desc=f"predict {task.name}", unit="batch", disable=None if progress else True, leave=False
    )
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
    """(contract predictions, official metrics) of the model on a labelled split."""
    outputs = predict_features(
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
