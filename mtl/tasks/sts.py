"""KLUE-STS: sentence-pair similarity regression (0-5), scored by Pearson r and F1 at >= 3."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mtl.data import sts as sts_reader
from mtl.metrics.sts import sts_metrics
from mtl.tasks.base import Key, check_number
from mtl.tasks.sentence import RegressionTask


class StsTask(RegressionTask):
    name = "sts"
    text_of_record = ("sentence1", "sentence2")
    reader = sts_reader
    default_max_length = 128
    dev_patterns = ("klue-sts-v1*_dev*.json", "sts_dev.json")
    official_dev_file = "klue-sts-v1.1_dev.json"
    sample_file = "sts_{split}.json"
    sample_generator = "mtl.samples.generators.sts"
    published = {"pearsonr": 92.50, "f1": 85.40}  # KLUE-RoBERTa-base, KLUE test set
    bench_batch_size = 16
    labels: tuple[str, ...] = ()
    text_fields = ("sentence1", "sentence2")
    target_field = "score"  # the regression target is real-label (Pearson is computed on it)
    head_kind = "regression"
    prediction_fields = ("score",)
    main_metric = "pearsonr"
    selection_metric = "pearsonr"  # KLUE-baseline's checkpoint selection
    metric_names = ("pearsonr", "f1")

    def check_prediction(self, pred: Mapping[str, Any], gold: Any) -> str | None:
        return check_number(pred.get("score"), "score")

    def compute_metrics(self, golds: Sequence[Any], preds: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        return sts_metrics([g["score"] for g in golds], [float(p["score"]) for p in preds])

    def reference_prediction(self, key: Key, gold: Any, *, alter: bool, seed: int) -> dict[str, Any]:
        return {"guid": key, "score": min(5.0, float(gold["score"]) + (0.7 if alter else 0.0))}

    def decode(
        self, records: Sequence[Mapping[str, Any]], features: Any, outputs: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        return [
            {"guid": records[i]["guid"], "score": float(o["score"])}
            for i, o in zip(features["example_index"], outputs, strict=True)
        ]

    # -- per-task recipe (README "Per-task budgets") ------------------------------------------------
    #: training units (features) of the KLUE train split: 11,668 pairs
    klue_train_size = 11_668
    #: evaluation units (features) of the KLUE dev split (519 pairs), for budgets planned without data
    klue_dev_size = 519
    #: KLUE-baseline's epochs for this task (run_all.sh)
    baseline_epochs = 4

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
        from mtl.tasks.baselines import linear_fit, overlap_features

        first, second = self.text_fields
        model = linear_fit(
            [overlap_features(r[first], r[second]) for r in train], [r["score"] for r in train]
        )
        scores = model.predict([overlap_features(r[first], r[second]) for r in heldout])
        return [
            {"guid": r["guid"], "score": float(min(max(s, 0.0), 5.0))}
            for r, s in zip(heldout, scores, strict=True)
        ]
