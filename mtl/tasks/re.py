"""KLUE-RE: relation between a marked subject and object entity (30 labels incl. no_relation)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mtl.labels import RE_LABELS
from mtl.metrics.re import re_metrics
from mtl.tasks.base import Task, check_label, check_list, check_number


class ReTask(Task):
    name = "re"
    labels = RE_LABELS
    prediction_fields = ("label", "probs")
    main_metric = "micro_f1"
    metric_names = ("micro_f1", "auprc")

    def check_prediction(self, pred: Mapping[str, Any], gold: Any) -> str | None:
        problem = check_label(pred.get("label"), self.labels)
        problem = problem or check_list(pred.get("probs"), "probs", len(self.labels))
        if problem:
            return problem
        for i, p in enumerate(pred["probs"]):
            if bad := check_number(p, f"probs[{i}]"):
                return bad
        return None

    def compute_metrics(self, golds: Sequence[Any], preds: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        index = {name: i for i, name in enumerate(self.labels)}
        probs = np.asarray([p["probs"] for p in preds], dtype=np.float64).reshape(len(preds), len(self.labels))
        return re_metrics([g["label"] for g in golds], [index[p["label"]] for p in preds], probs)
