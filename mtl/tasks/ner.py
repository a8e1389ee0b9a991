"""KLUE-NER: character-level BIO tagging over 6 entity types."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mtl.labels import NER_LABELS
from mtl.metrics.ner import ner_metrics
from mtl.tasks.base import Task, check_list


class NerTask(Task):
    name = "ner"
    labels = NER_LABELS
    prediction_fields = ("tags",)
    main_metric = "entity_f1"
    metric_names = ("entity_f1", "char_f1")

    def check_prediction(self, pred: Mapping[str, Any], gold: Any) -> str | None:
        tags = pred.get("tags")
        problem = check_list(tags, "tags", len(gold["text"]))
        if problem:
            return problem + " (one tag per character of the sentence, spaces included)"
        unknown = next((t for t in tags if t not in self.labels), None)
        return f"unknown tag {unknown!r}" if unknown is not None else None

    def compute_metrics(self, golds: Sequence[Any], preds: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        return ner_metrics(
            [g["text"] for g in golds],
            [[NER_LABELS[t] for t in g["tags"]] for g in golds],
            [p["tags"] for p in preds],
        )
