"""YNAT macro-F1 and NLI accuracy, also the macro-F1 that DP's UAS/LAS reuse.

Labels can be any integers (DP feeds head positions and pseudo-classes through the same code).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def as_label_arrays(gold: Sequence[int], pred: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Both label sequences as 1-D integer arrays of equal, non-zero length.

    Raises:
        ValueError: lengths differ, nothing to score, or a label is not an integer.
    """
    gold_arr = np.asarray(gold)
    pred_arr = np.asarray(pred)
    if gold_arr.ndim != 1 or pred_arr.ndim != 1:
        raise ValueError("labels must be flat sequences")
    if len(gold_arr) != len(pred_arr):
        raise ValueError(f"{len(gold_arr)} gold labels but {len(pred_arr)} predictions")
    if len(gold_arr) == 0:
        raise ValueError("nothing to score: no labels")
    for name, arr in (("gold", gold_arr), ("pred", pred_arr)):
        if not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"{name} labels must be integers, got dtype {arr.dtype}")
    return gold_arr.astype(np.int64, copy=False), pred_arr.astype(np.int64, copy=False)


def per_class_f1(gold: np.ndarray, pred: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """F1 = 2tp / (2tp + fp + fn) of each class in ``labels``, with 1.0 where that is 0/0.

    The 0/0 case (a class absent from both sides) only arises when the caller asks for a fixed
    label set; sklearn's ``zero_division=1`` scores it 1, which is what NER char-F1 needs.
    """
    k = len(labels)
    gold_idx = np.searchsorted(labels, gold)
    pred_idx = np.searchsorted(labels, pred)
    # A label outside ``labels`` is not counted on its own side, as sklearn does with labels=...
    gold_in = (gold_idx < k) & (labels[np.minimum(gold_idx, k - 1)] == gold)
    pred_in = (pred_idx < k) & (labels[np.minimum(pred_idx, k - 1)] == pred)
    hit = (gold == pred) & gold_in
    tp = np.bincount(gold_idx[hit], minlength=k).astype(np.float64)
    n_gold = np.bincount(gold_idx[gold_in], minlength=k).astype(np.float64)
    n_pred = np.bincount(pred_idx[pred_in], minlength=k).astype(np.float64)
    denom = n_gold + n_pred
    return np.divide(2.0 * tp, denom, out=np.ones(k), where=denom > 0)


def macro_f1(gold: Sequence[int], pred: Sequence[int]) -> float:
    """Macro-F1 in percent over the classes that occur in gold or pred (sklearn's default set).

    A class only predicted (or only gold) scores 0; a class absent from both is not averaged.
    """
    gold_arr, pred_arr = as_label_arrays(gold, pred)
    labels = np.union1d(gold_arr, pred_arr)
    return float(per_class_f1(gold_arr, pred_arr, labels).mean() * 100.0)


def accuracy(gold: Sequence[int], pred: Sequence[int]) -> float:
    """Fraction of exact matches, in percent."""
    gold_arr, pred_arr = as_label_arrays(gold, pred)
    return float(np.mean(gold_arr == pred_arr) * 100.0)
