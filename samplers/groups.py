"""Groups of distinct tasks per step: how often each task is in one (the budget of ``train.tasks_per_step``).

With ``train.tasks_per_step: K`` every optimizer step trains K different tasks, drawn from the task
sampler with repeats dropped (:meth:`mtl.batching.stream.MultiTaskStream.draw_group`): sampling
without replacement, each further task with the probabilities renormalised over the tasks not drawn
yet. Task ``i`` then lands in a group with its *inclusion probability*, not ``K * p_i`` (which could
exceed 1); :func:`inclusion_probabilities` computes it exactly.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def inclusion_probabilities(probabilities: np.ndarray, k: int) -> np.ndarray:
    """Probability that each task is in a group of ``k`` distinct tasks drawn without replacement.

    Exact, by dynamic programming over the sets of tasks drawn so far (2^n sets: fine for tens of
    tasks at most, and a KLUE run has eight or nine).
    """
    p = np.asarray(probabilities, dtype=np.float64)
    n = len(p)
    if k >= n:
        return np.ones(n)
    # reach[mask]: probability that the first popcount(mask) distinct tasks are exactly those of mask.
    reach: dict[int, float] = {0: 1.0}
    inclusion = np.zeros(n)
    for _ in range(k):
        following: dict[int, float] = {}
        for mask, chance in reach.items():
            left = 1.0 - sum(p[i] for i in range(n) if mask >> i & 1)
            for j in range(n):
                if mask >> j & 1:
                    continue
                step = chance * p[j] / left
                inclusion[j] += step
                following[mask | 1 << j] = following.get(mask | 1 << j, 0.0) + step
        reach = following
    return inclusion


def expected_group_counts(sampler: Any, draws: int, k: int) -> dict[str, float]:
    """Expected number of groups (of ``k`` distinct tasks) each task is in, over ``draws`` groups.

    ``sampler`` is any :class:`samplers.TaskSampler`. With ``k = 1`` this is its own expected counts;
    otherwise the inclusion probabilities of its mean distribution over the run, times ``draws``
    (exact for a sampler whose probabilities do not change; an approximation under annealing).
    """
    counts = sampler.expected_counts(draws)
    if k == 1 or draws == 0:
        return counts
    mean = np.array([counts[t] for t in sampler.tasks]) / draws
    total = inclusion_probabilities(mean, k) * draws
    return {t: float(c) for t, c in zip(sampler.tasks, total, strict=True)}
