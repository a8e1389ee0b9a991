"""Featurization speed over the eight dev sets: a first run into a fresh cache, then cached runs."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from mtl.batching.featurize import feature_lengths, featurize
from mtl.batching.prepare import Split, add_task_tokens, read_split, resolve_path, setup_task
from mtl.config import RunConfig
from mtl.modeling.tokenizer import load_tokenizer


def load_dev_splits(
    cfg: RunConfig, dev_files: dict[str, str], cache_dir: str | Path, limit: int | None, repeats: int
) -> tuple[dict[str, Any], dict[str, Split]]:
    """Read and featurize every dev file (timed), then featurize again from the cache ``repeats`` times.

    ``cfg`` must be the run config the training sessions use: the cache key covers the task
    settings, so the sessions built afterwards find these features in ``cache_dir``.
    """
    started = time.perf_counter()
    tokenizer = load_tokenizer("offline", offline_ok=True)  # built from scratch in a fresh process
    tokenizer_seconds = time.perf_counter() - started
    tasks = {name: setup_task(name, cfg, tokenizer) for name in dev_files}
    add_task_tokens(tokenizer, list(tasks.values()))
    per_task: dict[str, dict[str, Any]] = {}
    splits: dict[str, Split] = {}
    for name, task in tasks.items():
        t0 = time.perf_counter()
        records = read_split(task, resolve_path(cfg, dev_files[name]), "dev", limit)
        t1 = time.perf_counter()
        features = featurize(task, records, cache_dir=cache_dir, progress=False)
        t2 = time.perf_counter()
        cached = []
        for _ in range(repeats):
            c0 = time.perf_counter()
            again = featurize(task, records, cache_dir=cache_dir, progress=False)
            cached.append(time.perf_counter() - c0)
        if len(again) != len(features):
            raise RuntimeError(f"{name}: the cached features differ from the first run")
        lengths = feature_lengths(features)
        splits[name] = Split(records, features, lengths)
        per_task[name] = {
            "examples": len(records),
            "features": len(features),
            "tokens": int(lengths.sum()),
            "read_seconds": round(t1 - t0, 4),
            "first_seconds": round(t2 - t1, 4),
            "cached_seconds": round(float(np.median(cached)), 4),
        }
    examples = sum(p["examples"] for p in per_task.values())
    first = sum(p["first_seconds"] for p in per_task.values())
    cached_total = sum(p["cached_seconds"] for p in per_task.values())
    report = {
        "tokenizer_seconds": round(tokenizer_seconds, 4),
        "examples": examples,
        "features": sum(p["features"] for p in per_task.values()),
        "read_seconds": round(sum(p["read_seconds"] for p in per_task.values()), 4),
        "first_seconds": round(first, 4),
        "cached_seconds": round(cached_total, 4),
        "first_examples_per_second": round(examples / first, 1),
        "cached_examples_per_second": round(examples / cached_total, 1),
        "cached_speedup": round(first / cached_total, 2),
        "per_task": per_task,
    }
    return report, splits
