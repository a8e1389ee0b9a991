"""The [CLS]-level tasks (YNAT, NLI, STS and the declared kinds): encode one text or a pair.

:class:`SentenceTask` is the shared model side; :class:`ClassificationTask` is everything a
single-label classification task does, so YNAT and NLI below are two rows of data (their files,
labels, metric and published numbers) and the declared classification kinds reuse it too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from mtl.data import nli as nli_reader
from mtl.data import ynat as ynat_reader
from mtl.data.labels import NLI_LABELS, YNAT_LABELS
from mtl.metrics.classification import accuracy, macro_f1
from mtl.tasks.base import Key, Task, check_label, input_pair, input_text, single_label_pairs
from mtl.tasks.baselines import majority

#: metric name -> official metric (percent) of gold and predicted label ids
CLASSIFICATION_METRICS = {"accuracy": accuracy, "macro_f1": macro_f1}


class SentenceTask(Task):
    """A task read from token 0: ``text_fields`` are encoded as a single text or a pair."""

    text_fields: ClassVar[tuple[str, ...]]
    target_field: ClassVar[str] = "label"
    token_fields = ("input_ids",)

    def featurize(self, batch: Mapping[str, list[Any]], indices: list[int]) -> dict[str, list[Any]]:
        texts = [batch[f] for f in self.text_fields]
        enc = self.tokenizer(*texts, **self.encode_kwargs())
        out: dict[str, list[Any]] = {"input_ids": enc["input_ids"], "example_index": list(indices)}
        targets = batch[self.target_field]
        if all(t is not None for t in targets):
            out["labels"] = list(targets)
        return out

    def records_from_inputs(self, inputs: Sequence[Any]) -> list[dict[str, Any]]:
        """A text per item (one text field), or a (first, second) pair (two fields)."""
        records = []
        for i, item in enumerate(inputs):
            if len(self.text_fields) == 1:
                texts: tuple[str, ...] = (input_text(self.name, i, item),)
            else:
                texts = input_pair(self.name, i, item, self.text_fields)  # type: ignore[arg-type]
            records.append(
                {
                    "guid": f"input-{i}",
                    **dict(zip(self.text_fields, texts, strict=True)),
                    self.target_field: None,
                }
            )
        return records

    def split_texts(self, item: Any) -> list[str]:
        # the release's keys are the record's text fields
        return [item[f] for f in self.text_fields]


class ClassificationTask(SentenceTask):
    """Single-label classification over ``labels``, scored by the :data:`CLASSIFICATION_METRICS` in
    ``metric_names``."""

    head_kind = "classification"
    prediction_fields = ("label",)
    labels: ClassVar[tuple[str, ...]] = ()

    def label_names(self) -> list[str]:
        """The label names: the run's vocabulary once set up, else the task's own ``labels``."""
        resources = getattr(self, "resources", None)
        return list(resources["labels"]) if resources else list(self.labels)

    def check_prediction(self, pred: Mapping[str, Any], gold: Any) -> str | None:
        return check_label(pred.get("label"), self.label_names())

    def compute_metrics(self, golds: Sequence[Any], preds: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        index = {name: i for i, name in enumerate(self.label_names())}
        gold, pred = [g["label"] for g in golds], [index[p["label"]] for p in preds]
        return {name: CLASSIFICATION_METRICS[name](gold, pred) for name in self.metric_names}

    def head_args(self) -> dict[str, Any]:
        return {"num_labels": len(self.resources["labels"])}

    def reference_prediction(self, key: Key, gold: Any, *, alter: bool, seed: int) -> dict[str, Any]:
        names = self.resources["labels"]
        return {"guid": key, "label": names[(gold["label"] + alter) % len(names)]}

    def label_pairs(
        self, records: Sequence[Mapping[str, Any]], preds: Sequence[Mapping[str, Any]]
    ) -> tuple[list[str], list[int], list[int]] | None:
        return single_label_pairs(self, records, preds)

    def decode(
        self, records: Sequence[Mapping[str, Any]], features: Any, outputs: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        names = self.resources["labels"]
        return [
            {"guid": records[i]["guid"], "label": names[int(o["label"])]}
            for i, o in zip(features["example_index"], outputs, strict=True)
        ]

    def results(
        self,
        records: Sequence[Mapping[str, Any]],
        predictions: Sequence[Mapping[str, Any]],
        features: Any,
        outputs: Sequence[Mapping[str, Any]],
    ) -> list[dict[str, Any]]:
        """``{"label": name, "probs": {name: probability}}`` per record."""
        names = list(self.resources["labels"])
        probs = {int(i): o["probs"] for i, o in zip(features["example_index"], outputs, strict=True)}
        label = {self.key_of(p): p["label"] for p in predictions}
        return [
            {"label": label[self.unit_key(r)], "probs": dict(zip(names, probs_list(probs[i]), strict=True))}
            for i, r in enumerate(records)
        ]

    def trivial_baseline(
        self, train: Sequence[Mapping[str, Any]], heldout: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        label = self.label_names()[majority(r["label"] for r in train)]
        return [{"guid": r["guid"], "label": label} for r in heldout]

    def nonneural_baseline(
        self, train: Sequence[Mapping[str, Any]], heldout: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]] | None:
        """TF-IDF character n-gram logistic regression; a pair also gets its overlap.

        For a pair (a, b): n-grams of a, of b, and of b's words missing from a, plus the character
        overlap features of :func:`mtl.tasks.baselines.overlap_features`.
        """
        from mtl.tasks.baselines import overlap_features, tfidf_logreg

        def columns(records: Sequence[Mapping[str, Any]]) -> list[list[str]]:
            cols = [[r[f] for r in records] for f in self.text_fields]
            if len(cols) == 2:
                cols.append(
                    [" ".join(w for w in b.split() if w not in a) for a, b in zip(*cols, strict=True)]
                )
            return cols

        def dense(records: Sequence[Mapping[str, Any]]) -> list[list[float]] | None:
            if len(self.text_fields) != 2:
                return None
            first, second = self.text_fields
            return [overlap_features(r[first], r[second]) for r in records]

        probs, classes = tfidf_logreg(
            columns(train),
            [r["label"] for r in train],
            columns(heldout),
            train_dense=dense(train),
            test_dense=dense(heldout),
        )
        best, names = probs.argmax(axis=1), self.label_names()
        return [{"guid": r["guid"], "label": names[classes[b]]} for r, b in zip(heldout, best, strict=True)]


class RegressionTask(SentenceTask):
    """A [CLS]-level score per text pair (STS and the declared regression kind)."""

    def results(
        self,
        records: Sequence[Mapping[str, Any]],
        predictions: Sequence[Mapping[str, Any]],
        features: Any,
        outputs: Sequence[Mapping[str, Any]],
    ) -> list[dict[str, Any]]:
        """``{"score": value}`` per pair (the head's raw output, not clipped to the gold range)."""
        score = {self.key_of(p): p["score"] for p in predictions}
        return [{"score": score[self.unit_key(r)]} for r in records]


class YnatTask(ClassificationTask):
    """YNAT: news headline topic classification (7 topics)."""

    name = "ynat"
    reader = ynat_reader
    labels = YNAT_LABELS
    text_fields = ("title",)
    text_of_record = ("title",)
    dev_patterns = ("ynat-v1*_dev*.json", "ynat_dev.json")
    official_dev_file = "ynat-v1.1_dev.json"
    sample_file = "ynat_{split}.json"
    sample_generator = "mtl.samples.generators.ynat"
    published = {"macro_f1": 85.07}  # KLUE-RoBERTa-base, KLUE test set
    main_metric = "macro_f1"
    selection_metric = "macro_f1"  # KLUE-baseline's checkpoint selection
    metric_names = ("macro_f1",)
    klue_train_size = 45_678  # headlines of the KLUE train split
    klue_dev_size = 9_107  # headlines of the KLUE dev split
    baseline_epochs = 4  # KLUE-baseline's run_all.sh
    baseline_description = "majority topic of train"
    nonneural_description = "TF-IDF char 1-3-gram logistic regression on the title"


class NliTask(ClassificationTask):
    """KLUE-NLI: premise/hypothesis entailment (3 labels)."""

    name = "nli"
    reader = nli_reader
    labels = NLI_LABELS
    text_fields = ("premise", "hypothesis")
    text_of_record = ("premise", "hypothesis")
    dev_patterns = ("klue-nli-v1*_dev*.json", "nli_dev.json")
    official_dev_file = "klue-nli-v1.1_dev.json"
    sample_file = "nli_{split}.json"
    sample_generator = "mtl.samples.generators.nli"
    published = {"accuracy": 84.83}  # KLUE-RoBERTa-base, KLUE test set
    main_metric = "accuracy"
    selection_metric = "accuracy"  # KLUE-baseline's checkpoint selection
    metric_names = ("accuracy",)
    klue_train_size = 24_998  # pairs of the KLUE train split
    klue_dev_size = 3_000  # pairs of the KLUE dev split
    baseline_epochs = 5  # KLUE-baseline's run_all.sh
    baseline_description = "majority label of train"
    nonneural_description = (
        "TF-IDF char 1-3-gram logistic regression on premise, hypothesis, "
        "hypothesis words not in the premise + overlap"
    )


def probs_list(probs: np.ndarray) -> list[float]:
    """Probabilities as plain floats for JSON."""
    return [float(p) for p in np.asarray(probs, dtype=np.float64)]
