"""Padding efficiency: real tokens / tokens processed over one joint epoch (arithmetic on lengths).

Three ways to batch the same features with the same batch sizes: ours (``TaskBatches``: length
grouping inside chunks, padding to the longest member), padding every batch to the task's
KLUE-baseline max length, and random-order batches padded to their longest member.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from mtl.batching.order import TaskBatches

Counts = tuple[int, int]  # (real tokens, processed tokens)


def processed_tokens(lengths: np.ndarray, batches: list[np.ndarray], fixed: int | None = None) -> int:
    """Tokens a model processes for ``batches``: rows x (``fixed`` or the batch's longest row)."""
    if fixed is not None:
        return int(sum(len(b) for b in batches) * fixed)
    return int(sum(len(b) * int(lengths[b].max()) for b in batches))


def random_batches(n: int, batch_size: int, seed: int) -> list[np.ndarray]:
    """Random-order batches (no length grouping)."""
    perm = np.random.default_rng(seed).permutation(n)
    return [perm[i : i + batch_size] for i in range(0, n, batch_size)]


def task_padding(lengths: np.ndarray, batch_size: int, max_length: int, seed: int) -> dict[str, Counts]:
    """(real, processed) tokens of one epoch of one task under each batching."""
    lengths = np.asarray(lengths)
    real = int(lengths.sum())
    ours = TaskBatches(lengths, batch_size, seed=seed).epoch_batches(0)
    rand = random_batches(len(lengths), batch_size, seed)
    return {
        "ours": (real, processed_tokens(lengths, ours)),
        "baseline_max_length": (real, processed_tokens(lengths, rand, fixed=max_length)),
        "random_dynamic": (real, processed_tokens(lengths, rand)),
    }


def padding_efficiency(
    lengths: Mapping[str, np.ndarray],
    batch_sizes: Mapping[str, int],
    max_lengths: Mapping[str, int],
    seed: int,
) -> dict[str, object]:
    """Per task and over the joint epoch (all tasks' tokens pooled): real / processed per scheme."""
    per_task: dict[str, dict[str, float]] = {}
    totals: dict[str, list[int]] = {}
    for i, (task, lens) in enumerate(lengths.items()):
        counts = task_padding(lens, batch_sizes[task], max_lengths[task], seed + 1000 * (i + 1))
        per_task[task] = {scheme: round(r / p, 4) for scheme, (r, p) in counts.items()}
        for scheme, (r, p) in counts.items():
            acc = totals.setdefault(scheme, [0, 0])
            acc[0] += r
            acc[1] += p
    joint = {scheme: round(r / p, 4) for scheme, (r, p) in totals.items()}
    tokens = {scheme: {"real": r, "processed": p} for scheme, (r, p) in totals.items()}
    return {"joint": joint, "tokens": tokens, "per_task": per_task}
