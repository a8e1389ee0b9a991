"""The Task contract: required hooks are abstract, optional ones work without being written."""

from __future__ import annotations

from typing import Any

import pytest

from mtl.errors import KlueInputError
from mtl.tasks import TASKS
from mtl.tasks.base import Task


class _Minimal(Task):
    """A task with only what the contract requires."""

    name = "minimal"
    head_kind = "classification"
    prediction_fields = ("label",)
    main_metric = "accuracy"
    metric_names = ("accuracy",)

    def featurize(self, batch: Any, indices: list[int]) -> dict[str, list[Any]]:
        return {"input_ids": [[0]] * len(indices), "example_index": list(indices)}

    def decode(self, records: Any, features: Any, outputs: Any) -> list[dict[str, Any]]:
        return [{"guid": r["guid"], "label": "x"} for r in records]

    def check_prediction(self, pred: Any, gold: Any) -> str | None:
        return None

    def compute_metrics(self, golds: Any, preds: Any) -> dict[str, float]:
        return {"accuracy": 100.0}


@pytest.mark.parametrize("missing", ["featurize", "decode", "check_prediction", "compute_metrics"])
def test_a_task_without_a_required_hook_cannot_be_made(missing: str) -> None:
    incomplete = type("Incomplete", (_Minimal,), {missing: Task.__dict__[missing]})
    with pytest.raises(TypeError, match=missing):
        incomplete()


def test_the_optional_hooks_have_working_defaults() -> None:
    task = _Minimal()
    records = [{"guid": "a"}, {"guid": "b"}]
    predictions = task.decode(records, None, [])
    assert task.results(records, list(reversed(predictions)), None, []) == predictions
    assert task.trivial_baseline(records, records) is None
    assert task.nonneural_baseline(records, records) is None
    assert task.reference_prediction("a", records[0], alter=False, seed=0) is None
    assert task.split_texts({"guid": "a"}) == []
    assert task.label_pairs(records, predictions) is None
    with pytest.raises(KlueInputError, match="minimal takes no raw inputs"):
        task.records_from_inputs(["text"])


def test_every_registered_task_can_be_made() -> None:
    for cls in TASKS.values():
        assert isinstance(cls(), Task)
