"""The per-task scoreboard: official metrics beside the published KLUE-RoBERTa-base numbers."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mtl.layout import SCOREBOARD_JSON, SCOREBOARD_MD
from mtl.tasks import TASKS


def build_scoreboard(
    results: Mapping[str, Mapping[str, float]],
    counts: Mapping[str, int] | None = None,
    task_best: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Rows in registry order (KLUE's tasks, then the rest in result order): metrics, unit count, and
    the published KLUE-RoBERTa-base numbers. Those are TEST-set numbers (the KLUE test sets are hidden),
    so they are a reference point, not a like-for-like comparison with dev scores.

    ``task_best`` (a training run's ``task_best.json`` "tasks") adds each task's own best checkpoint:
    its selection metric, value and step, beside the joint checkpoint's metrics.
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
        if task_best and task in task_best:
            rows[-1]["task_best"] = dict(task_best[task])
    return {
        "rows": rows,
        "note": "published = KLUE-RoBERTa-base on the hidden KLUE test sets (reference only)",
    }


def render_markdown(board: Mapping[str, Any]) -> str:
    """A Markdown table (also what the terminal shows)."""
    own = any("task_best" in row for row in board["rows"])
    lines = [
        "| task | n | metrics (dev, official) |"
        + (" task's own best (step) |" if own else "")
        + " KLUE-RoBERTa-base (published, test) |",
        "|---|---:|---|" + ("---|" if own else "") + "---|",
    ]
    for row in board["rows"]:
        metrics = " · ".join(f"{k} {v:.2f}" for k, v in row["metrics"].items())
        published = " · ".join(f"{k} {v:.2f}" for k, v in row["published_test"].items())
        best = ""
        if own and "task_best" in row:
            b = row["task_best"]
            best = f" {b['metric']} {b['value']:.2f} (step {b['step']}) |"
        elif own:
            best = "  |"
        lines.append(
            f"| {row['task']} | {row['n'] if row['n'] is not None else ''} | {metrics} |{best} {published} |"
        )
    lines.append("")
    if own:
        lines.append(
            "_metrics = the final evaluation (the `last` checkpoint); task's own best = the checkpoint "
            "`best-<task>`, chosen by the task's selection metric at the step shown_"
        )
    lines.append(f"_{board['note']}_")
    return "\n".join(lines) + "\n"


def write_scoreboard(board: Mapping[str, Any], directory: str | Path) -> tuple[Path, Path]:
    """``scoreboard.json`` and ``scoreboard.md`` in ``directory``.

    When the run folder holds task-interaction heat maps (:mod:`mtl.evaluation.interaction`), both
    link them (``interaction``: paths relative to ``directory``).
    """
    from mtl.evaluation.interaction import interaction_pictures

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    pictures = [str(p.relative_to(directory)) for p in interaction_pictures(directory)]
    if pictures:
        board = {**board, "interaction": pictures}
    json_path, md_path = directory / SCOREBOARD_JSON, directory / SCOREBOARD_MD
    json_path.write_text(json.dumps(board, indent=2, ensure_ascii=False), encoding="utf-8")
    links = "".join(f"\n_task interaction: [{p}]({p})_\n" for p in pictures)
    md_path.write_text(render_markdown(board) + links, encoding="utf-8")
    return json_path, md_path


def classification_details(
    labels: Sequence[str], gold: Sequence[int], pred: Sequence[int]
) -> tuple[str, np.ndarray]:
    """The classification report (columns aligned for Korean labels) and the confusion matrix."""
    from mtl.evaluation.reports import classification_report_text, confusion_counts

    return classification_report_text(labels, gold, pred), confusion_counts(labels, gold, pred)


def confusion_image(matrix: np.ndarray, labels: Sequence[str], title: str = "") -> np.ndarray:
    """The labelled heat map of :func:`mtl.evaluation.reports.confusion_figure` as an HWC uint8 array."""
    from mtl.evaluation.reports import confusion_figure, figure_array

    return figure_array(confusion_figure(matrix, labels, title))
