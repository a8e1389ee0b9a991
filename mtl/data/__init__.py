"""KLUE readers: one module per task turns official release files or hub exports into records.

Each task module exposes ``read(path, *, labeled=True, split="dev")`` and
``from_hub_rows(rows, *, source, labeled=True, split="dev")``; :data:`READERS` maps task names to those
modules and :func:`read_records` is the one entry point that takes a task name.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

from mtl.data import dp, mrc, ner, nli, re, sts, wos, ynat
from mtl.errors import KlueInputError

READERS: dict[str, ModuleType] = {
    "ynat": ynat,
    "nli": nli,
    "sts": sts,
    "ner": ner,
    "re": re,
    "dp": dp,
    "mrc": mrc,
    "wos": wos,
}


def read_records(
    task: str, path: str | Path, *, labeled: bool = True, split: str = "dev"
) -> list[dict[str, Any]]:
    """Read the records of ``task`` from ``path`` (any format its reader accepts)."""
    reader = READERS.get(task)
    if reader is None:
        raise KlueInputError(None, None, f"unknown task {task!r}; known tasks: {', '.join(READERS)}")
    return reader.read(path, labeled=labeled, split=split)
