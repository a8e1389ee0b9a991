"""Shared model side of the [CLS]-level tasks (YNAT, NLI, STS): encode one text or a pair."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from mtl.tasks.base import Key, Task, input_pair, input_text, single_label_pairs


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
        by_guid = {p["guid"]: p["label"] for p in predictions}
        return [
            {"label": by_guid[r["guid"]], "probs": dict(zip(names, probs_list(probs[i]), strict=True))}
            for i, r in enumerate(records)
        ]


def probs_list(probs: np.ndarray) -> list[float]:
    """Probabilities as plain floats for JSON."""
    return [float(p) for p in np.asarray(probs, dtype=np.float64)]
