"""The task registry: one line per KLUE task."""

from __future__ import annotations

from mtl.errors import KlueInputError
from mtl.tasks.base import Task
from mtl.tasks.dp import DpTask
from mtl.tasks.mrc import MrcTask
from mtl.tasks.ner import NerTask
from mtl.tasks.nli import NliTask
from mtl.tasks.re import ReTask
from mtl.tasks.sts import StsTask
from mtl.tasks.wos import WosTask
from mtl.tasks.ynat import YnatTask

TASKS: dict[str, type[Task]] = {
    "ynat": YnatTask,
    "nli": NliTask,
    "sts": StsTask,
    "ner": NerTask,
    "re": ReTask,
    "dp": DpTask,
    "mrc": MrcTask,
    "wos": WosTask,
}


def get_task(name: str) -> Task:
    """Instantiate a task by name; an unknown name is an input error listing the known ones."""
    if name not in TASKS:
        raise KlueInputError(None, None, f"unknown task {name!r}; known tasks: {', '.join(TASKS)}")
    return TASKS[name]()
