"""WoS: joint goal accuracy and the turn-averaged slot F1."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def turn_slot_f1(gold: Sequence[str], pred: Sequence[str]) -> float:
    """TRADE's per-turn F1 (``compute_prf``) of two ``domain-slot-value`` lists, in [0, 1].

    tp counts gold items found in pred and fn those not found (a duplicated gold item counts each
    time); fp counts pred items not in gold. A turn with an empty gold state scores 1 iff the
    prediction is empty too.
    """
    if not gold:
        return float(not pred)
    gold_set, pred_set = set(gold), set(pred)
    tp = sum(1 for item in gold if item in pred_set)
    fn = len(gold) - tp
    fp = sum(1 for item in pred if item not in gold_set)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn)
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def wos_metrics(golds: Sequence[Sequence[str]], preds: Sequence[Sequence[str]]) -> dict[str, float]:
    """``{"joint_goal_accuracy", "slot_f1"}`` in percent, one entry per user turn.

    A turn is jointly correct iff ``set(pred) == set(gold)`` (order and duplicates ignored);
    slot_f1 is the mean of :func:`turn_slot_f1` over turns, not a pooled micro-F1.

    Raises:
        ValueError: the counts differ or there is nothing to score.
    """
    if len(golds) != len(preds):
        raise ValueError(f"{len(golds)} gold turns but {len(preds)} predicted turns")
    if len(golds) == 0:
        raise ValueError("nothing to score: no WoS turns")
    for name, turns in (("gold", golds), ("pred", preds)):
        for index, state in enumerate(turns):
            if isinstance(state, str):
                raise ValueError(f"{name} turn {index}: a state is a list of strings, not one string")
    joint = [set(gold) == set(pred) for gold, pred in zip(golds, preds, strict=True)]
    slot = [turn_slot_f1(gold, pred) for gold, pred in zip(golds, preds, strict=True)]
    return {
        "joint_goal_accuracy": float(np.mean(joint) * 100.0),
        "slot_f1": float(np.mean(slot) * 100.0),
    }
