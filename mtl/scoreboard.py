"""The per-task scoreboard: official metrics beside the published KLUE-RoBERTa-base numbers."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mtl.labels import TASK_NAMES

# KLUE-RoBERTa-base as published in the KLUE README/paper. These are TEST-set numbers (the KLUE test
# sets are hidden), so they are a reference point, not a like-for-like comparison with dev scores.
PUBLISHED_ROBERTA_BASE: dict[str, dict[str, float]] = {
    "ynat": {"macro_f1": 85.07},
    "nli": {"accuracy": 84.83},
    "sts": {"pearsonr": 92.50, "f1": 85.40},
    "ner": {"entity_f1": 84.60, "char_f1": 91.44},
    "re": {"micro_f1": 67.65, "auprc": 68.55},
    "dp": {"uas": 93.04, "las": 88.32},
    "mrc": {"exact_match": 68.67, "rouge_w": 73.98},
    "wos": {"joint_goal_accuracy": 47.49, "slot_f1": 91.64},
}


def build_scoreboard(
    results: Mapping[str, Mapping[str, float]], counts: Mapping[str, int] | None = None
) -> dict[str, Any]:
    """Rows in KLUE task order: metrics, unit count, and the published reference."""
    rows = []
    for task in TASK_NAMES:
        if task not in results:
            continue
        rows.append(
            {
                "task": task,
                "n": (counts or {}).get(task),
                "metrics": {k: round(float(v), 4) for k, v in results[task].items()},
                "published_test": PUBLISHED_ROBERTA_BASE.get(task, {}),
            }
        )
    return {
        "rows": rows,
        "note": "published = KLUE-RoBERTa-base on the hidden KLUE test sets (reference only)",
    }


def render_markdown(board: Mapping[str, Any]) -> str:
    """A Markdown table (also what the terminal shows)."""
    lines = [
        "| task | n | metrics (dev, official) | KLUE-RoBERTa-base (published, test) |",
        "|---|---:|---|---|",
    ]
    for row in board["rows"]:
        metrics = " · ".join(f"{k} {v:.2f}" for k, v in row["metrics"].items())
        published = " · ".join(f"{k} {v:.2f}" for k, v in row["published_test"].items())
        lines.append(
            f"| {row['task']} | {row['n'] if row['n'] is not None else ''} | {metrics} | {published} |"
        )
    lines.append("")
    lines.append(f"_{board['note']}_")
    return "\n".join(lines) + "\n"


def write_scoreboard(board: Mapping[str, Any], directory: str | Path) -> tuple[Path, Path]:
    """``scoreboard.json`` and ``scoreboard.md`` in ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    json_path, md_path = directory / "scoreboard.json", directory / "scoreboard.md"
    json_path.write_text(json.dumps(board, indent=2, ensure_ascii=False), encoding="utf-8")
    md_path.write_text(render_markdown(board), encoding="utf-8")
    return json_path, md_path


def classification_details(
    labels: Sequence[str], gold: Sequence[int], pred: Sequence[int]
) -> tuple[str, np.ndarray]:
    """sklearn's classification report (text) and the confusion matrix over ``labels``."""
    from sklearn.metrics import classification_report, confusion_matrix

    ids = list(range(len(labels)))
    report = classification_report(
        gold, pred, labels=ids, target_names=list(labels), digits=4, zero_division=0
    )
    return report, confusion_matrix(gold, pred, labels=ids)


def confusion_image(matrix: np.ndarray, cell: int = 12) -> np.ndarray:
    """A row-normalised confusion matrix as an HWC uint8 heat map (no plotting library needed)."""
    rows = matrix.sum(axis=1, keepdims=True).clip(min=1)
    intensity = (255 * (1 - matrix / rows)).astype(np.uint8)  # dark = frequent
    big = np.kron(intensity, np.ones((cell, cell), dtype=np.uint8))
    return np.repeat(big[:, :, None], 3, axis=2)
