"""Dynamic padding: a list of feature rows of one task -> a batch of tensors.

Sequences are padded to the longest member of the batch, never to a fixed maximum length. The
work is one NumPy fill per row and field, not a Python loop over tokens.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from mtl.batching.prepare import Split
    from mtl.tasks.base import Task

#: fields kept on the host for decoding; never sent to the model
META_FIELDS = frozenset({"example_index", "length"})


def pad_rows(rows: Sequence[Sequence[Any]], pad: float | int, dtype: Any) -> np.ndarray:
    """Right-pad variable-length rows into one [len(rows), longest] array."""
    width = max((len(r) for r in rows), default=0)
    out = np.full((len(rows), width), pad, dtype=dtype)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def collate(
    rows: Mapping[str, Sequence[Any]],
    *,
    pad_token_id: int,
    token_fields: Sequence[str],
    item_fields: Sequence[str] = (),
    pad_values: Mapping[str, Any] | None = None,
    skip_fields: Sequence[str] = (),
) -> dict[str, torch.Tensor]:
    """Columns of a batch (``dataset[indices]``) -> model inputs.

    ``token_fields`` pad to the longest ``input_ids``; ``item_fields`` (per-word, per-slot...) pad
    to their own longest row. Integer targets pad with -100 unless ``pad_values`` says otherwise;
    fields named ``*_mask`` become booleans; ``skip_fields`` (decoding metadata) are left out.
    """
    pad_values = pad_values or {}
    batch: dict[str, torch.Tensor] = {}
    ids = pad_rows(rows["input_ids"], pad_token_id, np.int64)
    lengths = np.fromiter((len(r) for r in rows["input_ids"]), dtype=np.int64, count=len(rows["input_ids"]))
    batch["input_ids"] = torch.from_numpy(ids)
    batch["attention_mask"] = torch.from_numpy(np.arange(ids.shape[1])[None, :] < lengths[:, None]).long()
    for key, values in rows.items():
        if key == "input_ids" or key in META_FIELDS or key in skip_fields:
            continue
        is_mask = key.endswith("_mask")
        if key in token_fields or key in item_fields:
            first = next((v for r in values for v in r), 0)
            dtype = np.float32 if isinstance(first, float) else np.int64
            pad = pad_values.get(key, 0 if is_mask else -100)
            arr = pad_rows(values, pad, dtype)
            if key in token_fields and arr.shape[1] != ids.shape[1]:
                arr = _fit_width(arr, ids.shape[1], pad)
        else:
            arr = np.asarray(values)
            if arr.dtype == np.float64:
                arr = arr.astype(np.float32)
        tensor = torch.from_numpy(np.ascontiguousarray(arr))
        batch[key] = tensor.bool() if is_mask else tensor
    return batch


def _fit_width(arr: np.ndarray, width: int, pad: Any) -> np.ndarray:
    out = np.full((arr.shape[0], width), pad, dtype=arr.dtype)
    n = min(width, arr.shape[1])
    out[:, :n] = arr[:, :n]
    return out


def batch_for(
    task: Task, split: Split, indices: Sequence[int], device: torch.device | str
) -> dict[str, torch.Tensor]:
    """Collate the features at ``indices`` of ``split`` for ``task`` onto ``device``."""
    rows = split.features[list(map(int, indices))]
    batch = collate(
        rows,
        pad_token_id=task.tokenizer.pad_token_id,
        token_fields=task.token_fields,
        item_fields=task.item_fields,
        pad_values=task.pad_values,
        skip_fields=task.meta_fields,
    )
    return to_device(batch, device)


def train_batch_for(
    task: Task, split: Split, indices: Sequence[int], device: torch.device | str, rng: np.random.Generator
) -> dict[str, torch.Tensor]:
    """A training batch: collated, the task's :meth:`~mtl.tasks.base.Task.train_batch` applied (masked
    LM's masks, drawn from ``rng``), then onto ``device``. The task's work runs on host tensors,
    before the copy: on a GPU it would otherwise read the batch back (a host sync per tensor)."""
    return to_device(task.train_batch(batch_for(task, split, indices, "cpu"), rng), device)


def to_device(batch: dict[str, torch.Tensor], device: torch.device | str) -> dict[str, torch.Tensor]:
    """``batch`` on ``device``; to a GPU through page-locked memory, asynchronously (the copy overlaps
    the step still running)."""
    if torch.device(device).type == "cuda":
        return {k: v.pin_memory().to(device, non_blocking=True) for k, v in batch.items()}
    return {k: v.to(device) for k, v in batch.items()}
