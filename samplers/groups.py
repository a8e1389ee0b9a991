"""Groups of distinct tasks per step: successive sampling without replacement from a task sampler.

With ``train.tasks_per_step: K`` every optimizer step trains K different tasks. The first task of a
group is the sampler's own draw (so K = 1 is exactly the one-task stream); each further task is drawn
from the same step's probabilities renormalised over the tasks not drawn yet. Task ``i`` then lands in
a group with its *inclusion probability* (not ``K * p_i``, which could exceed 1):
:func:`inclusion_probabilities` computes it exactly, for the budget table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def draw_rest(first: int, probabilities: Sequence[float], k: int, rng: np.random.Generator) -> list[int]:
    """Indices of a group of ``k`` distinct tasks that starts with ``first``.

    One uniform of ``rng`` per further task, mapped through the cumulative probabilities of the
    tasks still free (renormalised), so the group is a deterministic function of the RNG state.
    """
    p = np.asarray(probabilities, dtype=np.float64)
    group = [first]
    free = np.ones(len(p), dtype=bool)
    free[first] = False
    for _ in range(k - 1):
        cdf = np.cumsum(np.where(free, p, 0.0))
        # side="right" never lands on a drawn task (its zero-width step repeats the previous total);
        # the clip guards the rounding case u * total == total.
        index = int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"))
        index = min(index, int(np.flatnonzero(free)[-1]))
        group.append(index)
        free[index] = False
    return group


def inclusion_probabilities(probabilities: np.ndarray, k: int) -> np.ndarray:
    """Probability that each task is in a group of ``k`` drawn as :func:`draw_rest` does.

    ``probabilities`` has the tasks on its last axis (leading axes: one row per step); exact, by
    dynamic programming over the subsets of tasks drawn so far (2^n subsets; fine for tens of tasks
    at most, and a KLUE run has eight or nine).
    """
    p = np.asarray(probabilities, dtype=np.float64)
    n = p.shape[-1]
    if k >= n:
        return np.ones_like(p)
    # reach[mask]: probability that the first popcount(mask) draws are exactly the tasks of mask.
    reach: dict[int, np.ndarray] = {0: np.ones(p.shape[:-1])}
    inclusion = np.zeros_like(p)
    for _ in range(k):
        following: dict[int, np.ndarray] = {}
        for mask, chance in reach.items():
            members = [i for i in range(n) if mask >> i & 1]
            left = 1.0 - p[..., members].sum(axis=-1) if members else 1.0
            for j in range(n):
                if mask >> j & 1:
                    continue
                step = chance * p[..., j] / left
                inclusion[..., j] += step
                following[mask | 1 << j] = following.get(mask | 1 << j, 0.0) + step
        reach = following
    return inclusion


def expected_group_counts(sampler: Any, draws: int, k: int) -> dict[str, float]:
    """Expected number of groups (of ``k`` distinct tasks) each task is in, over ``draws`` groups.

    ``sampler`` is any task sampler with ``tasks``, ``probabilities(step)`` and
    ``expected_counts(n)``. With ``k = 1`` this is the sampler's own expected counts; otherwise the
    inclusion probability of every step summed (once, times ``draws``, when the probabilities do
    not change over the run; step by step under an annealed temperature).
    """
    if k == 1:
        return sampler.expected_counts(draws)
    rows = [sampler.probabilities(0), sampler.probabilities(max(draws - 1, 0))]
    if rows[0] == rows[1]:
        total = inclusion_probabilities(np.array([rows[0][t] for t in sampler.tasks]), k) * draws
    else:
        total = np.zeros(len(sampler.tasks))
        for lo in range(0, draws, 4096):
            steps = range(lo, min(lo + 4096, draws))
            table = np.array([[sampler.probabilities(s)[t] for t in sampler.tasks] for s in steps])
            total += inclusion_probabilities(table, k).sum(axis=0)
    return {t: float(c) for t, c in zip(sampler.tasks, total, strict=True)}
