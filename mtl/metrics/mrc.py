"""KLUE-MRC: exact match and the character LCCS-F1 the baseline calls "ROUGE-W"."""

from __future__ import annotations

import re
import string
from collections.abc import Sequence

import numpy as np

# The baseline's pattern, kept verbatim: it only matches one of the quote/bracket characters
# immediately followed by the literal "()‘’" (KLUE-baseline issue #10), so it almost never fires;
# where it does, it turns those characters into a space, which the punctuation pass alone would not.
_BASELINE_QUOTE_PATTERN = re.compile(r"[\'\"《》<>〈〉]\(\)\‘\’")
_ASCII_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalize_answer(s: str) -> str:
    """The official answer normalisation: lower(), the baseline regex, ASCII punctuation
    removed (non-ASCII marks such as 《》‘’ stay), whitespace collapsed."""
    s = _BASELINE_QUOTE_PATTERN.sub(" ", s.lower())
    s = s.translate(_ASCII_PUNCTUATION)
    return " ".join(s.split())


def longest_common_substring(a: str, b: str) -> int:
    """Length of the longest common contiguous substring of ``a`` and ``b`` (the true maximum,
    not difflib's autojunk approximation)."""
    if len(a) > len(b):
        a, b = b, a
    if not a:
        return 0
    if a in b:
        return len(a)
    # Having a common substring of length k implies one of every shorter length: binary search.
    lo, hi = 0, len(a) - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        pieces = {a[i : i + mid] for i in range(len(a) - mid + 1)}
        if any(b[j : j + mid] in pieces for j in range(len(b) - mid + 1)):
            lo = mid
        else:
            hi = mid - 1
    return lo


def lccs_f1(pred: str, gold: str) -> float:
    """Character LCCS-F1 of two already-normalised answers, in [0, 1].

    An empty gold scores 1 iff the prediction is empty too; an empty prediction scores 0.
    """
    if not gold:
        return float(not pred)
    length = longest_common_substring(pred, gold)
    if length == 0:
        return 0.0
    precision = length / len(pred)
    recall = length / len(gold)
    return 2.0 * (precision * recall) / (precision + recall)


def mrc_metrics(golds: Sequence[Sequence[str]], preds: Sequence[str]) -> dict[str, float]:
    """``{"exact_match", "rouge_w"}`` in percent, averaged over all questions.

    Per question both scores are the maximum over its gold answers, after normalising prediction
    and golds; an empty gold list (unanswerable) counts as the single gold ``""``.

    Raises:
        ValueError: the counts differ or there is nothing to score.
    """
    if len(golds) != len(preds):
        raise ValueError(f"{len(golds)} questions but {len(preds)} predictions")
    if len(golds) == 0:
        raise ValueError("nothing to score: no MRC questions")
    exact, rouge = [], []
    for answers, pred in zip(golds, preds, strict=True):
        pred_norm = normalize_answer(pred)
        gold_norms = [normalize_answer(answer) for answer in answers] or [""]
        exact.append(max(float(pred_norm == gold) for gold in gold_norms))
        rouge.append(max(lccs_f1(pred_norm, gold) for gold in gold_norms))
    return {"exact_match": float(np.mean(exact) * 100.0), "rouge_w": float(np.mean(rouge) * 100.0)}
