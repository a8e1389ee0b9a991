"""KLUE-STS: Pearson r and binary F1."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

STS_POSITIVE_FROM = 3.0  # a pair is "similar" iff its score is >= 3.0, on both sides


def _scores(name: str, values: Sequence[float]) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} scores must be a flat sequence")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} scores contain NaN or infinity")
    return arr


def pearson_r(gold: np.ndarray, pred: np.ndarray) -> float:
    """Pearson correlation in float64; 0.0 where it is undefined (n < 2 or a constant side).

    The baseline's scipy call runs in float32 under numpy 2; float64 is what the 2021
    stack computed. scipy would return NaN for the undefined case, which no JSON scoreboard can
    carry, and "no measurable correlation" is what a constant predictor has.
    """
    if len(gold) < 2:
        return 0.0
    gold_c = gold - gold.mean()
    pred_c = pred - pred.mean()
    norm_gold = np.linalg.norm(gold_c)
    norm_pred = np.linalg.norm(pred_c)
    if norm_gold == 0.0 or norm_pred == 0.0:
        return 0.0
    r = float(np.dot(gold_c / norm_gold, pred_c / norm_pred))
    return max(-1.0, min(1.0, r))


def sts_metrics(gold: Sequence[float], pred: Sequence[float]) -> dict[str, float]:
    """``{"pearsonr", "f1"}`` in percent: raw Pearson r, and the positive-class F1 after ``>= 3.0``.

    Predictions are taken raw (no clipping to [0, 5]), as the baseline does. F1 is 0 when there is
    no true positive.

    Raises:
        ValueError: lengths differ, nothing to score, or a non-finite score.
    """
    gold_arr = _scores("gold", gold)
    pred_arr = _scores("pred", pred)
    if len(gold_arr) != len(pred_arr):
        raise ValueError(f"{len(gold_arr)} gold scores but {len(pred_arr)} predictions")
    if len(gold_arr) == 0:
        raise ValueError("nothing to score: no STS pairs")
    gold_pos = gold_arr >= STS_POSITIVE_FROM
    pred_pos = pred_arr >= STS_POSITIVE_FROM
    tp = int(np.sum(gold_pos & pred_pos))
    f1 = 2.0 * tp / (int(gold_pos.sum()) + int(pred_pos.sum())) if tp else 0.0
    return {"pearsonr": pearson_r(gold_arr, pred_arr) * 100.0, "f1": f1 * 100.0}
