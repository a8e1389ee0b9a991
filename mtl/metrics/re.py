"""KLUE-RE: micro-F1 without no_relation, and the trapezoidal PR-AUC over all 30 classes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mtl.data.labels import RE_LABELS, RE_NO_RELATION
from mtl.metrics.classification import as_label_arrays


def micro_f1_without_no_relation(gold: np.ndarray, pred: np.ndarray) -> float:
    """sklearn micro-F1 over every label except no_relation, in percent; 0.0 when 0/0.

    tp = correct real relations; fp = wrong real-relation predictions (whatever the gold);
    fn = gold real relations not predicted exactly.
    """
    tp = int(np.sum((gold == pred) & (gold != RE_NO_RELATION)))
    denom = int(np.sum(gold != RE_NO_RELATION)) + int(np.sum(pred != RE_NO_RELATION))
    return 2.0 * tp / denom * 100.0 if denom else 0.0


def pr_auc(is_positive: np.ndarray, scores: np.ndarray) -> float:
    """``sklearn.metrics.auc(recall, precision)`` of ``precision_recall_curve(is_positive, scores)``.

    One point per distinct score (ties grouped) plus the (R=0, P=1) anchor, joined by trapezoids.
    With no positive at all, recall is 1 at every threshold (sklearn >= 1.1), which gives 0.5.
    """
    order = np.argsort(scores, kind="mergesort")[::-1]
    sorted_scores = scores[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(sorted_scores)), len(scores) - 1]
    tps = np.cumsum(is_positive[order], dtype=np.float64)[last_of_tie]
    fps = 1.0 + last_of_tie - tps
    precision = tps / (tps + fps)
    recall = tps / tps[-1] if tps[-1] > 0 else np.ones_like(tps)
    precision = np.r_[precision[::-1], 1.0]
    recall = np.r_[recall[::-1], 0.0]
    # recall falls along the curve, so the signed trapezoid area is negative
    return float(-np.trapezoid(precision, recall))


def re_metrics(gold: Sequence[int], pred: Sequence[int], probs: np.ndarray) -> dict[str, float]:
    """``{"micro_f1", "auprc"}`` in percent, the official KLUE-RE definitions.

    Args:
        gold, pred: RE_LABELS ids (no_relation is id 0).
        probs: ``[n, 30]`` class probabilities in RE_LABELS order (any score works: only the order
            of each column matters).

    Raises:
        ValueError: lengths or shapes differ, an id is out of range, a probability is not finite,
            or there is nothing to score.
    """
    gold_arr, pred_arr = as_label_arrays(gold, pred)
    n_classes = len(RE_LABELS)
    for name, arr in (("gold", gold_arr), ("pred", pred_arr)):
        if arr.min() < 0 or arr.max() >= n_classes:
            raise ValueError(f"{name} RE label ids must lie in [0, {n_classes})")
    probs_arr = np.asarray(probs, dtype=np.float64)
    if probs_arr.shape != (len(gold_arr), n_classes):
        raise ValueError(f"probs must have shape ({len(gold_arr)}, {n_classes}), got {probs_arr.shape}")
    if not np.all(np.isfinite(probs_arr)):
        raise ValueError("probs contain NaN or infinity")
    areas = [pr_auc(gold_arr == c, probs_arr[:, c]) for c in range(n_classes)]
    return {
        "micro_f1": micro_f1_without_no_relation(gold_arr, pred_arr),
        "auprc": float(np.mean(areas) * 100.0),
    }
