"""KLUE-NLI: premise/hypothesis entailment (3 labels)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mtl.data import nli as nli_reader
from mtl.data.labels import NLI_LABELS
from mtl.metrics.classification import accuracy
from mtl.tasks.base import check_label
from mtl.tasks.sentence import ClassificationTask


class NliTask(ClassificationTask):
    name = "nli"
    text_of_record = ("premise", "hypothesis")
    reader = nli_reader
    default_max_length = 128
    dev_patterns = ("klue-nli-v1*_dev*.json", "nli_dev.json")
    official_dev_file = "klue-nli-v1.1_dev.json"
    sample_file = "nli_{split}.json"
    sample_generator = "mtl.samples.generators.nli"
    published = {"accuracy": 84.83}  # KLUE-RoBERTa-base, KLUE test set
    bench_batch_size = 16
    labels = NLI_LABELS
    text_fields = ("premise", "hypothesis")
    prediction_fields = ("label",)
    main_metric = "accuracy"
    selection_metric = "accuracy"  # KLUE-baseline's checkpoint selection
    metric_names = ("accuracy",)

    def check_prediction(self, pred: Mapping[str, Any], gold: Any) -> str | None:
        return check_label(pred.get("label"), self.labels)

    def compute_metrics(self, golds: Sequence[Any], preds: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        index = {name: i for i, name in enumerate(self.labels)}
        return {"accuracy": accuracy([g["label"] for g in golds], [index[p["label"]] for p in preds])}

    # -- per-task recipe (README "Per-task budgets") ------------------------------------------------
    #: training units (features) of the KLUE train split: 24,998 pairs
    klue_train_size = 24_998
    #: evaluation units (features) of the KLUE dev split (3,000 pairs), for budgets planned without data
    klue_dev_size = 3_000
    #: KLUE-baseline's epochs for this task (run_all.sh)
    baseline_epochs = 5

    baseline_description = "majority label of train"
    nonneural_description = "TF-IDF char 1-3-gram logistic regression on premise, hypothesis, hypothesis words not in the premise + overlap"
