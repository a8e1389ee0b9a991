"""Slow, independent reference implementations of the official KLUE metrics, for tests only.

Each follows the official baseline's recipe with the libraries it used (sklearn, seqeval, scipy)
or, where the baseline used none, with the most literal code possible (a brute-force O(n*m)
substring search, plain loops). Nothing here imports mtl.metrics.
"""

from __future__ import annotations

import functools
import string
import warnings
from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np
from scipy.stats import pearsonr
from seqeval.metrics import f1_score as seqeval_f1
from seqeval.scheme import IOB2
from sklearn.metrics import auc, f1_score, precision_recall_curve

from mtl.data.labels import DP_OTHERS_FROM, NER_LABELS, RE_LABELS

F = TypeVar("F", bound=Callable)


def quiet(func: F) -> F:
    """Silence the libraries' ill-defined-metric warnings: the edge cases are tested on purpose."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


@quiet
def ref_macro_f1(gold: Sequence[int], pred: Sequence[int]) -> float:
    return float(f1_score(list(gold), list(pred), average="macro") * 100.0)


def ref_accuracy(gold: Sequence[int], pred: Sequence[int]) -> float:
    return float(np.mean(np.asarray(gold) == np.asarray(pred)) * 100.0)


@quiet
def ref_sts(gold: Sequence[float], pred: Sequence[float]) -> dict[str, float]:
    gold64 = np.asarray(gold, dtype=np.float64)
    pred64 = np.asarray(pred, dtype=np.float64)
    return {
        "pearsonr": float(pearsonr(pred64, gold64)[0] * 100.0),
        "f1": float(f1_score(gold64 >= 3, pred64 >= 3, average="binary", zero_division=0) * 100.0),
    }


def ref_ner_sequences(texts: Sequence[str], tags: Sequence[Sequence[str]]) -> list[str]:
    """The baseline's scored sequence: per sentence O + non-space tags + O, all concatenated."""
    out: list[str] = []
    for text, sentence_tags in zip(texts, tags, strict=True):
        out.append("O")
        for char, tag in zip(text, sentence_tags, strict=True):
            if char != " ":
                out.append(tag)
        out.append("O")
    return out


@quiet
def ref_ner(
    texts: Sequence[str], gold_tags: Sequence[Sequence[str]], pred_tags: Sequence[Sequence[str]]
) -> dict[str, float]:
    gold = ref_ner_sequences(texts, gold_tags)
    pred = ref_ner_sequences(texts, pred_tags)
    entity = seqeval_f1([gold], [pred], average="macro", mode="strict", scheme=IOB2)
    label_id = {tag: i for i, tag in enumerate(NER_LABELS)}
    char = f1_score(
        [label_id[t] for t in gold],
        [label_id[t] for t in pred],
        labels=list(range(len(NER_LABELS))),
        average="macro",
        zero_division=1,
    )
    return {"entity_f1": float(entity * 100.0), "char_f1": float(char * 100.0)}


@quiet
def ref_re(gold: Sequence[int], pred: Sequence[int], probs: np.ndarray) -> dict[str, float]:
    labels = [i for i in range(len(RE_LABELS)) if RE_LABELS[i] != "no_relation"]
    micro = f1_score(list(gold), list(pred), average="micro", labels=labels, zero_division=0)
    one_hot = np.eye(len(RE_LABELS))[np.asarray(gold)]
    areas = []
    for c in range(len(RE_LABELS)):
        precision, recall, _ = precision_recall_curve(one_hot[:, c], np.asarray(probs)[:, c])
        areas.append(auc(recall, precision))
    return {"micro_f1": float(micro * 100.0), "auprc": float(np.mean(areas) * 100.0)}


@quiet
def ref_dp(
    gold_heads: Sequence[Sequence[int]],
    gold_deprels: Sequence[Sequence[int]],
    pred_heads: Sequence[Sequence[int]],
    pred_deprels: Sequence[Sequence[int]],
) -> dict[str, float]:
    gh = [h for s in gold_heads for h in s]
    ph = [h for s in pred_heads for h in s]
    gd = ["OTHERS" if d >= DP_OTHERS_FROM else str(d) for s in gold_deprels for d in s]
    pd = ["OTHERS" if d >= DP_OTHERS_FROM else str(d) for s in pred_deprels for d in s]
    pd_las = [label if g == p else "HEAD-WRONG" for label, g, p in zip(pd, gh, ph, strict=True)]
    las_plain = np.mean([g == p and a == b for g, p, a, b in zip(gh, ph, gd, pd, strict=True)])
    return {
        "uas": float(f1_score(gh, ph, average="macro") * 100.0),
        "las": float(f1_score(gd, pd_las, average="macro") * 100.0),
        "uas_plain": float(f1_score(gh, ph, average="micro") * 100.0),
        "las_plain": float(las_plain * 100.0),
    }


def ref_normalize(text: str) -> str:
    text = text.lower()
    # the baseline regex, spelled out: one of '"《》<>〈〉 directly followed by the literal ()‘’
    for quote in "'\"《》<>〈〉":
        text = text.replace(quote + "()‘’", " ")
    text = "".join(c for c in text if c not in set(string.punctuation))
    return " ".join(text.split())


def brute_force_lccs(a: str, b: str) -> int:
    """O(len(a) * len(b)) dynamic programme over common suffix lengths."""
    best = 0
    previous = [0] * (len(b) + 1)
    for i in range(1, len(a) + 1):
        current = [0] * (len(b) + 1)
        for j in range(1, len(b) + 1):
            if a[i - 1] == b[j - 1]:
                current[j] = previous[j - 1] + 1
                best = max(best, current[j])
        previous = current
    return best


def _ref_rouge(pred: str, gold: str) -> float:
    if gold == "":
        return 1.0 if pred == "" else 0.0
    length = brute_force_lccs(pred, gold)
    p = length / len(pred) if pred else 0.0
    r = length / len(gold)
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def ref_mrc(golds: Sequence[Sequence[str]], preds: Sequence[str]) -> dict[str, float]:
    em, rouge = [], []
    for answers, pred in zip(golds, preds, strict=True):
        p = ref_normalize(pred)
        gs = [ref_normalize(a) for a in answers] if answers else [""]
        em.append(max([0.0] + [1.0 if p == g else 0.0 for g in gs]))
        rouge.append(max([0.0] + [_ref_rouge(p, g) for g in gs]))
    return {"exact_match": float(np.mean(em) * 100.0), "rouge_w": float(np.mean(rouge) * 100.0)}


def ref_wos(golds: Sequence[Sequence[str]], preds: Sequence[Sequence[str]]) -> dict[str, float]:
    joint, f1s = [], []
    for gold, pred in zip(golds, preds, strict=True):
        joint.append(1.0 if set(gold) == set(pred) else 0.0)
        if len(gold) == 0:
            f1s.append(1.0 if len(pred) == 0 else 0.0)
            continue
        tp = sum(1 for g in gold if g in pred)
        fn = sum(1 for g in gold if g not in pred)
        fp = sum(1 for p in pred if p not in gold)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1s.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return {"joint_goal_accuracy": float(np.mean(joint) * 100.0), "slot_f1": float(np.mean(f1s) * 100.0)}
