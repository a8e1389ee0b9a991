"""The per-task scoreboard: official metrics beside the published KLUE-RoBERTa-base numbers."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mtl.tasks import TASKS


def build_scoreboard(
    results: Mapping[str, Mapping[str, float]], counts: Mapping[str, int] | None = None
) -> dict[str, Any]:
    """Rows in registry order (KLUE's tasks, then the rest in result order): metrics, unit count, and
    the published KLUE-RoBERTa-base numbers. Those are TEST-set numbers (the KLUE test sets are hidden),
    so they are a reference point, not a like-for-like comparison with dev scores.
    """
    rows = []
    order = [t for t in TASKS if t in results] + [t for t in results if t not in TASKS]
    for task in order:
        published = TASKS[task].published if task in TASKS else {}
        rows.append(
            {
                "task": task,
                "n": (counts or {}).get(task),
                "metrics": {k: round(float(v), 4) for k, v in results[task].items()},
                "published_test": dict(published),
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
    """The classification report (columns aligned for Korean labels) and the confusion matrix."""
    from mtl.reports import classification_report_text, confusion_counts

    return classification_report_text(labels, gold, pred), confusion_counts(labels, gold, pred)


def confusion_image(matrix: np.ndarray, labels: Sequence[str], title: str = "") -> np.ndarray:
    """The labelled heat map of :func:`mtl.reports.confusion_figure` as an HWC uint8 array."""
    from mtl.reports import confusion_figure, figure_array

    return figure_array(confusion_figure(matrix, labels, title))
