"""KLUE-STS: sentence-pair similarity regression (0-5), scored by Pearson r and F1 at >= 3."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mtl.metrics.sts import sts_metrics
from mtl.tasks.base import check_number
from mtl.tasks.sentence import SentenceTask


class StsTask(SentenceTask):
    name = "sts"
    labels: tuple[str, ...] = ()
    text_fields = ("sentence1", "sentence2")
    target_field = "score"  # the regression target is real-label (Pearson is computed on it)
    head_kind = "regression"
    prediction_fields = ("score",)
    main_metric = "pearsonr"
    metric_names = ("pearsonr", "f1")

    def check_prediction(self, pred: Mapping[str, Any], gold: Any) -> str | None:
        return check_number(pred.get("score"), "score")

    def compute_metrics(self, golds: Sequence[Any], preds: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        return sts_metrics([g["score"] for g in golds], [float(p["score"]) for p in preds])

    def decode(
        self, records: Sequence[Mapping[str, Any]], features: Any, outputs: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        return [
            {"guid": records[i]["guid"], "score": float(o["score"])}
            for i, o in zip(features["example_index"], outputs, strict=True)
        ]

    official_dev_file = "klue-sts-v1.1_dev.json"
    baseline_description = "mean train score"
    nonneural_description = (
        "character/word overlap of the pair, linear fit to the score on train, clipped to 0-5"
    )

    def trivial_baseline(
        self, train: Sequence[Mapping[str, Any]], heldout: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        mean = sum(r["score"] for r in train) / len(train)
        return [{"guid": r["guid"], "score": mean} for r in heldout]

    def nonneural_baseline(
        self, train: Sequence[Mapping[str, Any]], heldout: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]] | None:
        from mtl.baselines import linear_fit, overlap_features

        first, second = self.text_fields
        model = linear_fit(
            [overlap_features(r[first], r[second]) for r in train], [r["score"] for r in train]
        )
        scores = model.predict([overlap_features(r[first], r[second]) for r in heldout])
        return [
            {"guid": r["guid"], "score": float(min(max(s, 0.0), 5.0))}
            for r, s in zip(heldout, scores, strict=True)
        ]
