"""Featurization through ``datasets``: records -> features, batched and cached on disk.

The cache key covers the records, the tokenizer, the task settings and the project version, so
a second run with the same inputs loads the Arrow file instead of tokenizing again, and any change
to one of them featurizes anew.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from datasets import Dataset, are_progress_bars_disabled, disable_progress_bars, enable_progress_bars
from datasets.arrow_writer import OptimizedTypedSequence
from datasets.table import InMemoryTable

import mtl
from mtl.tasks.base import Task

_TOKENIZER_HASHES: dict[int, str] = {}


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """A stable hash of a fast tokenizer's full definition (vocab, normalizer, added tokens)."""
    key = id(tokenizer)
    if key not in _TOKENIZER_HASHES:
        text = (
            tokenizer.backend_tokenizer.to_str()
            if hasattr(tokenizer, "backend_tokenizer")
            else repr(tokenizer)
        )
        _TOKENIZER_HASHES[key] = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    return _TOKENIZER_HASHES[key]


def features_fingerprint(task: Task, records: Sequence[dict[str, Any]]) -> str:
    """Hash of everything that determines the features of ``records``."""
    h = hashlib.sha256()
    h.update(json.dumps([task.name, mtl.__version__, tokenizer_fingerprint(task.tokenizer)]).encode())
    h.update(json.dumps(dataclasses.asdict(task.settings), sort_keys=True, default=str).encode())
    h.update(json.dumps(task.resources, sort_keys=True, ensure_ascii=False).encode())
    h.update(json.dumps(records, sort_keys=True, ensure_ascii=False).encode())
    return h.hexdigest()[:24]


def featurize(
    task: Task,
    records: Sequence[dict[str, Any]],
    *,
    cache_dir: str | Path | None = None,
    progress: bool = True,
) -> Dataset:
    """Features of ``records`` (a ``datasets.Dataset``, one row per model input)."""
    fingerprint = features_fingerprint(task, records)
    if cache_dir is None and 0 < len(records) <= IN_MEMORY_RECORDS:
        return _featurize_in_memory(task, records, fingerprint)
    cache_file = Path(cache_dir) / f"{task.name}-{fingerprint}.arrow" if cache_dir else None
    if cache_file is not None and cache_file.is_file():
        return Dataset.from_file(str(cache_file))
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
    source = Dataset.from_list(list(records))
    hide = not progress and not are_progress_bars_disabled()  # restored after: global state
    if hide:
        disable_progress_bars()
    try:
        features = source.map(
            task.featurize,
            batched=True,
            batch_size=256,
            with_indices=True,
            remove_columns=source.column_names,
            cache_file_name=str(cache_file) if cache_file else None,
            new_fingerprint=fingerprint,
            desc=f"featurize {task.name}",
        )
    finally:
        if hide:
            enable_progress_bars()
    return features


#: inputs up to this many records, without a cache, are featurized in memory (one batch of ``map``'s)
IN_MEMORY_RECORDS = 256


def _featurize_in_memory(task: Task, records: Sequence[dict[str, Any]], fingerprint: str) -> Dataset:
    """What :func:`featurize` gives for a few uncached records (a request to the API or the server),
    without ``Dataset.map``: its bookkeeping (fingerprints hashed by pickling the table, twice) cost
    ~6 ms a call, more than the encoder takes for one text on a GPU.

    The same steps as ``map``'s, on one batch: the records become Arrow columns (nested fields filled
    in alike), the task's ``featurize`` runs on them as Python lists, and its output columns get the
    types ``map`` writes (``OptimizedTypedSequence``). ``tests/test_featurize.py`` checks the result
    equals ``map``'s, types included, for every task on real dev data.
    """
    mapping = {k: [r.get(k) for r in records] for k in records[0]}  # as Dataset.from_list
    batch = InMemoryTable.from_pydict(
        {k: OptimizedTypedSequence(v, col=k) for k, v in mapping.items()}
    ).to_pydict()
    out = task.featurize(batch, list(range(len(records))))
    table = InMemoryTable.from_pydict({k: OptimizedTypedSequence(v, col=k) for k, v in out.items()})
    return Dataset(table, fingerprint=fingerprint)


def feature_lengths(features: Dataset) -> np.ndarray:
    """Token count of every feature (the batching and padding statistics use it)."""
    return np.fromiter((len(ids) for ids in features["input_ids"]), dtype=np.int64, count=len(features))
