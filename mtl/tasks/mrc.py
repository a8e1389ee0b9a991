"""KLUE-MRC: extractive question answering with unanswerable questions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mtl.metrics.mrc import mrc_metrics
from mtl.tasks.base import Task


class MrcTask(Task):
    name = "mrc"
    labels: tuple[str, ...] = ()
    prediction_fields = ("answer",)
    main_metric = "exact_match"
    metric_names = ("exact_match", "rouge_w")

    def check_prediction(self, pred: Mapping[str, Any], gold: Any) -> str | None:
        if not isinstance(pred.get("answer"), str):
            return "'answer' must be a string (\"\" for unanswerable)"
        return None

    def compute_metrics(self, golds: Sequence[Any], preds: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        return mrc_metrics([[a["text"] for a in g["answers"]] for g in golds], [p["answer"] for p in preds])
