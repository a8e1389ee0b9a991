"""YNAT: news headline topic classification (7 topics)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mtl.data import ynat as ynat_reader
from mtl.data.labels import YNAT_LABELS
from mtl.metrics.classification import macro_f1
from mtl.tasks.base import check_label
from mtl.tasks.sentence import ClassificationTask


class YnatTask(ClassificationTask):
    name = "ynat"
    text_of_record = ("title",)
    reader = ynat_reader
    default_max_length = 128
    dev_patterns = ("ynat-v1*_dev*.json", "ynat_dev.json")
    official_dev_file = "ynat-v1.1_dev.json"
    sample_file = "ynat_{split}.json"
    sample_generator = "mtl.samples.generators.ynat"
    published = {"macro_f1": 85.07}  # KLUE-RoBERTa-base, KLUE test set
    bench_batch_size = 16
    labels = YNAT_LABELS
    text_fields = ("title",)
    prediction_fields = ("label",)
    main_metric = "macro_f1"
    selection_metric = "macro_f1"  # KLUE-baseline's checkpoint selection
    metric_names = ("macro_f1",)

    def check_prediction(self, pred: Mapping[str, Any], gold: Any) -> str | None:
        return check_label(pred.get("label"), self.labels)

    def compute_metrics(self, golds: Sequence[Any], preds: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        index = {name: i for i, name in enumerate(self.labels)}
        return {"macro_f1": macro_f1([g["label"] for g in golds], [index[p["label"]] for p in preds])}

    # -- per-task recipe (README "Per-task budgets") ------------------------------------------------
    #: training units (features) of the KLUE train split: 45,678 headlines
    klue_train_size = 45_678
    #: evaluation units (features) of the KLUE dev split (9,107 headlines), for budgets planned without data
    klue_dev_size = 9_107
    #: KLUE-baseline's epochs for this task (run_all.sh)
    baseline_epochs = 4

    baseline_description = "majority topic of train"
    nonneural_description = "TF-IDF char 1-3-gram logistic regression on the title"
