"""WoS: dialogue state tracking; one scoring unit per user turn (its cumulative state)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mtl.metrics.wos import wos_metrics
from mtl.tasks.base import Key, Task, check_list


class WosTask(Task):
    name = "wos"
    labels: tuple[str, ...] = ()
    prediction_fields = ("state",)
    main_metric = "joint_goal_accuracy"
    metric_names = ("joint_goal_accuracy", "slot_f1")

    def gold_units(self, records: Sequence[Mapping[str, Any]]) -> dict[Key, Any]:
        """One unit per user turn, keyed by (dialogue guid, index of the turn in ``dialogue``)."""
        units: dict[Key, Any] = {}
        for r in records:
            for i, turn in enumerate(r["dialogue"]):
                if turn["role"] == "user":
                    units[(r["guid"], i)] = turn
        return units

    def key_of(self, pred: Mapping[str, Any]) -> Key:
        return (pred["guid"], pred["turn"])

    def describe_key(self, key: Key) -> str:
        guid, turn = key  # type: ignore[misc]
        return f"guid {guid} turn {turn}"

    def unknown_key_message(self, key: Key, gold: Mapping[Key, Any]) -> str:
        guid, turn = key  # type: ignore[misc]
        if any(g == guid for g, _ in gold):
            return f"turn {turn} of guid {guid} is not a user turn of that dialogue (predictions are per user turn)"
        return f"guid {guid} is not in the gold file"

    def check_prediction(self, pred: Mapping[str, Any], gold: Any) -> str | None:
        state = pred.get("state")
        if problem := check_list(state, "state"):
            return problem
        for item in state:
            if not isinstance(item, str) or len(item.split("-", 2)) != 3 or not all(item.split("-", 2)):
                return f"state item {item!r} is not 'domain-slot-value'"
        return None

    def compute_metrics(self, golds: Sequence[Any], preds: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        return wos_metrics([g["state"] for g in golds], [p["state"] for p in preds])
