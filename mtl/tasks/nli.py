"""KLUE-NLI: premise/hypothesis entailment (3 labels)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mtl.labels import NLI_LABELS
from mtl.metrics.classification import accuracy
from mtl.tasks.base import check_label
from mtl.tasks.sentence import ClassificationTask


class NliTask(ClassificationTask):
    name = "nli"
    labels = NLI_LABELS
    text_fields = ("premise", "hypothesis")
    prediction_fields = ("label",)
    main_metric = "accuracy"
    metric_names = ("accuracy",)

    def check_prediction(self, pred: Mapping[str, Any], gold: Any) -> str | None:
        return check_label(pred.get("label"), self.labels)

    def compute_metrics(self, golds: Sequence[Any], preds: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        index = {name: i for i, name in enumerate(self.labels)}
        return {"accuracy": accuracy([g["label"] for g in golds], [index[p["label"]] for p in preds])}

    official_dev_file = "klue-nli-v1.1_dev.json"
    baseline_description = "majority label of train"
    nonneural_description = "TF-IDF char 1-3-gram logistic regression on premise, hypothesis, hypothesis words not in the premise + overlap"
