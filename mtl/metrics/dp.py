"""KLUE-DP: the official macro-F1 "UAS"/"LAS" and the textbook attachment scores."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain

import numpy as np

from mtl.data.labels import DP_DEPRELS, DP_OTHERS_FROM
from mtl.metrics.classification import macro_f1

_HEAD_WRONG = -1  # the official LAS pseudo-class for a word whose predicted head is wrong


def _flatten(
    name: str, sentences: Sequence[Sequence[int]], lengths: list[int] | None
) -> tuple[np.ndarray, list[int]]:
    sentence_lengths = [len(words) for words in sentences]
    if lengths is not None:
        if len(sentence_lengths) != len(lengths):
            raise ValueError(f"{len(lengths)} gold sentences but {len(sentence_lengths)} in {name}")
        for index, (expected, got) in enumerate(zip(lengths, sentence_lengths, strict=True)):
            if expected != got:
                raise ValueError(f"sentence {index}: {expected} gold words but {got} in {name}")
    values = np.fromiter(chain.from_iterable(sentences), dtype=np.int64, count=sum(sentence_lengths))
    return values, sentence_lengths


def dp_metrics(
    gold_heads: Sequence[Sequence[int]],
    gold_deprels: Sequence[Sequence[int]],
    pred_heads: Sequence[Sequence[int]],
    pred_deprels: Sequence[Sequence[int]],
) -> dict[str, float]:
    """``{"uas", "las", "uas_plain", "las_plain"}`` in percent over all words of all sentences.

    * uas: macro-F1 where every head position value (0 = root, 1, 2, ...) is a class.
    * las: deprel ids >= DP_OTHERS_FROM merged into one OTHERS class on both sides, the predicted
      label of every word with a wrong head replaced by a "head-wrong" pseudo-class, then macro-F1
      over every class seen in gold or pred (so any wrong head caps it below 100).
    * uas_plain: fraction of words with the right head.
    * las_plain: fraction with the right head and the right label after the OTHERS merge.

    Args:
        gold_heads, pred_heads: per sentence, the 1-based head of each word (0 = root).
        gold_deprels, pred_deprels: per sentence, the DP_DEPRELS id of each word.

    Raises:
        ValueError: sentence or word counts differ, an id is out of range, or nothing to score.
    """
    gold_h, lengths = _flatten("gold_heads", gold_heads, None)
    gold_d, _ = _flatten("gold_deprels", gold_deprels, lengths)
    pred_h, _ = _flatten("pred_heads", pred_heads, lengths)
    pred_d, _ = _flatten("pred_deprels", pred_deprels, lengths)
    if len(gold_h) == 0:
        raise ValueError("nothing to score: no DP words")
    for name, heads in (("gold", gold_h), ("pred", pred_h)):
        if heads.min() < 0:
            raise ValueError(f"{name} heads must be >= 0 (0 = root)")
    for name, deprels in (("gold", gold_d), ("pred", pred_d)):
        if deprels.min() < 0 or deprels.max() >= len(DP_DEPRELS):
            raise ValueError(f"{name} deprel ids must lie in [0, {len(DP_DEPRELS)})")

    head_ok = gold_h == pred_h
    gold_l = np.minimum(gold_d, DP_OTHERS_FROM)
    pred_l = np.minimum(pred_d, DP_OTHERS_FROM)
    return {
        "uas": macro_f1(gold_h, pred_h),
        "las": macro_f1(gold_l, np.where(head_ok, pred_l, _HEAD_WRONG)),
        "uas_plain": float(np.mean(head_ok) * 100.0),
        "las_plain": float(np.mean(head_ok & (gold_l == pred_l)) * 100.0),
    }
