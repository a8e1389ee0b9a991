"""YNAT: news headline topic classification (7 topics)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mtl.labels import YNAT_LABELS
from mtl.metrics.classification import macro_f1
from mtl.tasks.base import check_label
from mtl.tasks.sentence import ClassificationTask


class YnatTask(ClassificationTask):
    name = "ynat"
    labels = YNAT_LABELS
    text_fields = ("title",)
    prediction_fields = ("label",)
    main_metric = "macro_f1"
    metric_names = ("macro_f1",)

    def check_prediction(self, pred: Mapping[str, Any], gold: Any) -> str | None:
        return check_label(pred.get("label"), self.labels)

    def compute_metrics(self, golds: Sequence[Any], preds: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        index = {name: i for i, name in enumerate(self.labels)}
        return {"macro_f1": macro_f1([g["label"] for g in golds], [index[p["label"]] for p in preds])}

    official_dev_file = "ynat-v1.1_dev.json"
    baseline_description = "majority topic of train"
    nonneural_description = "TF-IDF char 1-3-gram logistic regression on the title"
