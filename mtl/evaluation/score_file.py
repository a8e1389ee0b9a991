"""``klue-mtl score``: official metrics of a JSON Lines predictions file against a gold file.

Predictions are matched to gold units by key (order-free). Every unit must be predicted exactly
once, and each prediction must have the contract's shape; anything else is an input error naming
the predictions file and the unit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mtl.data.io import iter_jsonl
from mtl.errors import KlueInputError
from mtl.tasks import get_task
from mtl.tasks.base import Key, Task


def read_predictions(task: Task, path: str | Path, gold: dict[Key, Any]) -> dict[Key, dict[str, Any]]:
    """Read and validate a predictions file against the gold units it must cover."""
    preds: dict[Key, dict[str, Any]] = {}
    key_fields = task.key_fields
    for lineno, obj in iter_jsonl(path):
        if not isinstance(obj, dict):
            raise KlueInputError(path, lineno, "each line must be a JSON object")
        missing = [f for f in (*key_fields, *task.prediction_fields) if f not in obj]
        if missing:
            raise KlueInputError(path, lineno, f"missing field(s) {', '.join(map(repr, missing))}")
        if problem := task.check_key(obj):
            raise KlueInputError(path, lineno, problem)
        key = task.key_of(obj)
        if key not in gold:
            raise KlueInputError(path, lineno, task.unknown_key_message(key, gold))
        if key in preds:
            raise KlueInputError(path, lineno, f"{task.describe_key(key)} is predicted more than once")
        if problem := task.check_prediction(obj, gold[key]):
            raise KlueInputError(path, lineno, f"{task.describe_key(key)}: {problem}")
        preds[key] = obj
    missing_units = [k for k in gold if k not in preds]
    if missing_units:
        first = task.describe_key(missing_units[0])
        raise KlueInputError(
            path, None, f"{len(missing_units)} of {len(gold)} gold units have no prediction (first: {first})"
        )
    return preds


def score(
    task_name: str,
    gold_path: str | Path,
    pred_path: str | Path,
    settings: Any = None,
    resources: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Score a predictions file; returns ``{"task", "n", "metrics"}`` with metrics in percent.

    ``settings``: the TaskConfig of a task declared in a config (``kind:``), None for registered tasks;
    ``resources``: the task's vocabularies from a checkpoint's ``tasks.json`` (a declared task's labels).
    """
    task = get_task(task_name, settings)
    if resources is not None:
        task.resources = dict(resources)
    gold = task.gold_units(task.read(gold_path, labeled=True))
    preds = read_predictions(task, pred_path, gold)
    keys = list(gold)
    metrics = task.compute_metrics([gold[k] for k in keys], [preds[k] for k in keys])
    return {"task": task.name, "n": len(keys), "metrics": {k: float(v) for k, v in metrics.items()}}
