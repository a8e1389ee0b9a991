"""Shared model side of the [CLS]-level tasks (YNAT, NLI, STS): encode one text or a pair."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from mtl.tasks.base import Key, Task, input_pair, input_text, single_label_pairs
from mtl.tasks.baselines import majority


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
    """Single-label classification over ``labels``."""

    head_kind = "classification"

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
        label = self.labels[majority(r["label"] for r in train)]
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
        best = probs.argmax(axis=1)
        return [
            {"guid": r["guid"], "label": self.labels[classes[b]]} for r, b in zip(heldout, best, strict=True)
        ]


def probs_list(probs: np.ndarray) -> list[float]:
    """Probabilities as plain floats for JSON."""
    return [float(p) for p in np.asarray(probs, dtype=np.float64)]
