"""Trivial baselines: what a model must beat to show it learned anything.

Each baseline sees only the training records (for the majority label or the mean score) and emits
contract-shaped predictions for the held-out records, which ``score`` then scores like any model's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from mtl.labels import DP_DEPRELS, NER_LABELS, NLI_LABELS, RE_LABELS, YNAT_LABELS

DESCRIPTIONS = {
    "ynat": "majority topic of train",
    "nli": "majority label of train",
    "sts": "mean train score",
    "ner": "every character O",
    "re": "always no_relation",
    "dp": "head = next word (last word -> root), most frequent train label",
    "mrc": "always unanswerable",
    "wos": "empty state",
}


def trivial_predictions(
    task: str, train: Sequence[dict[str, Any]], heldout: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Baseline predictions for every scoring unit of ``heldout``."""
    if task in ("ynat", "nli"):
        names = YNAT_LABELS if task == "ynat" else NLI_LABELS
        majority = names[Counter(r["label"] for r in train).most_common(1)[0][0]]
        return [{"guid": r["guid"], "label": majority} for r in heldout]
    if task == "sts":
        mean = sum(r["score"] for r in train) / len(train)
        return [{"guid": r["guid"], "score": mean} for r in heldout]
    if task == "ner":
        return [{"guid": r["guid"], "tags": [NER_LABELS[-1]] * len(r["text"])} for r in heldout]
    if task == "re":
        one_hot = [1.0] + [0.0] * (len(RE_LABELS) - 1)
        return [{"guid": r["guid"], "label": RE_LABELS[0], "probs": one_hot} for r in heldout]
    if task == "dp":
        label = DP_DEPRELS[Counter(d for r in train for d in r["deprels"]).most_common(1)[0][0]]
        return [
            {
                "guid": r["guid"],
                "heads": [*range(2, len(r["words"]) + 1), 0],
                "deprels": [label] * len(r["words"]),
            }
            for r in heldout
        ]
    if task == "mrc":
        return [{"guid": r["guid"], "answer": ""} for r in heldout]
    if task == "wos":
        return [
            {"guid": r["guid"], "turn": i, "state": []}
            for r in heldout
            for i, turn in enumerate(r["dialogue"])
            if turn["role"] == "user"
        ]
    raise ValueError(f"no baseline for task {task!r}")
