"""KLUE-DP: dependency parsing over eojeols (head + relation per word)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mtl.labels import DP_DEPRELS
from mtl.metrics.dp import dp_metrics
from mtl.tasks.base import Task, check_list


class DpTask(Task):
    name = "dp"
    labels = DP_DEPRELS
    prediction_fields = ("heads", "deprels")
    main_metric = "uas"
    metric_names = ("uas", "las", "uas_plain", "las_plain")

    def check_prediction(self, pred: Mapping[str, Any], gold: Any) -> str | None:
        n = len(gold["words"])
        heads, deprels = pred.get("heads"), pred.get("deprels")
        problem = check_list(heads, "heads", n) or check_list(deprels, "deprels", n)
        if problem:
            return problem + " (one per word)"
        for i, h in enumerate(heads):
            if isinstance(h, bool) or not isinstance(h, int) or not 0 <= h <= n:
                return f"heads[{i}] = {h!r} is not a word index in 0..{n}"
        unknown = next((d for d in deprels if d not in self.labels), None)
        return f"unknown deprel {unknown!r}" if unknown is not None else None

    def compute_metrics(self, golds: Sequence[Any], preds: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        index = {name: i for i, name in enumerate(self.labels)}
        return dp_metrics(
            [g["heads"] for g in golds],
            [g["deprels"] for g in golds],
            [p["heads"] for p in preds],
            [[index[d] for d in p["deprels"]] for p in preds],
        )
