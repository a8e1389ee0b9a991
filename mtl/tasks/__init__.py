"""The task registry: every task the project knows, and the generic kinds a config can declare.

A KLUE task is one line below. A task of your own comes in one of two ways:

* **in the config, no Python**: a task with ``kind:`` (one of :data:`KINDS`, e.g.
  ``single_sentence_classification``) plus its columns and labels -> :func:`get_task` builds a
  :class:`mtl.tasks.generic.GenericTask` from that definition;
* **in Python**: a :class:`~mtl.tasks.base.Task` subclass passed to :func:`register_task` (and its
  head to :func:`heads.register_head`), in a module the config lists under ``imports:`` or that a
  package exposes through the ``klue_mtl.tasks`` entry point group.

Everything else in the project (config defaults, ``evaluate --data-dir``, ``score``, the scoreboard,
samples, split, baselines, bench) reads its per-task facts from the classes registered here.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from importlib import metadata
from typing import Any

from mtl.errors import KlueInputError
from mtl.tasks.base import Task
from mtl.tasks.dp import DpTask
from mtl.tasks.generic import KINDS, GenericTask
from mtl.tasks.mlm import MaskedLmTask
from mtl.tasks.mrc import MrcTask
from mtl.tasks.ner import NerTask
from mtl.tasks.re import ReTask
from mtl.tasks.sentence import NliTask, YnatTask
from mtl.tasks.sts import StsTask
from mtl.tasks.wos import WosTask

#: task name -> class, in scoreboard order (the eight KLUE tasks first)
TASKS: dict[str, type[Task]] = {}

#: the entry point group a package uses to register its tasks when installed
ENTRY_POINT_GROUP = "klue_mtl.tasks"


def register_task(cls: type[Task], *, replace: bool = False) -> type[Task]:
    """Make ``cls`` (a :class:`Task` subclass with a ``name``) available to every command.

    Usable as a class decorator. A second registration of the same name is an error unless
    ``replace`` is true (re-importing the same module re-registers the same class, which is fine).
    """
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise TypeError(f"register_task expects a Task subclass, got {cls!r}")
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"{cls.__name__}.name must be a short identifier, got {name!r}")
    if name in KINDS:
        raise ValueError(f"task name {name!r} is a generic task kind; choose another name")
    known = TASKS.get(name)
    if known is not None and not replace and known.__qualname__ != cls.__qualname__:
        raise ValueError(
            f"a task named {name!r} is already registered ({known.__module__}.{known.__qualname__})"
        )
    TASKS[name] = cls
    return cls


def register_kind(cls: type[GenericTask]) -> type[GenericTask]:
    """Make a :class:`GenericTask` subclass declarable in configs as ``kind: <cls.kind_name>``."""
    if cls.kind_name in TASKS:
        raise ValueError(f"kind {cls.kind_name!r} is also a task name")
    KINDS[cls.kind_name] = cls
    return cls


for _cls in (YnatTask, NliTask, StsTask, NerTask, ReTask, DpTask, MrcTask, WosTask):
    register_task(_cls)
register_kind(MaskedLmTask)

_plugins_loaded = False


def load_plugins(modules: Iterable[str] = ()) -> None:
    """Import ``modules`` (a config's ``imports:``) and, once, every ``klue_mtl.tasks`` entry point.

    A module that cannot be imported is an input error naming it.
    """
    global _plugins_loaded
    if not _plugins_loaded:
        _plugins_loaded = True
        for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
            entry.load()
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as e:
            raise KlueInputError(
                None, "imports", f"cannot import task module {module!r} ({e})", kind="key"
            ) from None


def klue_tasks() -> list[str]:
    """The KLUE benchmark tasks (those with an official dev file), in registry order."""
    return [name for name, cls in TASKS.items() if cls.official_dev_file]


def task_names() -> list[str]:
    """Every registered task name, in registry order."""
    return list(TASKS)


def get_task(name: str, settings: Any = None) -> Task:
    """A new task object: a registered task by name, or a generic one when ``settings.kind`` is set.

    An unknown name is an input error listing the known tasks and kinds.
    """
    kind = getattr(settings, "kind", None)
    if kind:
        if kind not in KINDS:
            raise KlueInputError(
                None, f"tasks.{name}.kind", f"unknown kind {kind!r}; kinds: {', '.join(KINDS)}", kind="key"
            )
        return KINDS[kind](name, settings)
    if name not in TASKS:
        raise KlueInputError(
            None,
            None,
            f"unknown task {name!r}; known tasks: {', '.join(TASKS)} "
            f"(or declare your own with kind: {' | '.join(KINDS)})",
        )
    return TASKS[name]()


__all__ = [
    "ENTRY_POINT_GROUP",
    "KINDS",
    "TASKS",
    "GenericTask",
    "Task",
    "get_task",
    "klue_tasks",
    "load_plugins",
    "register_kind",
    "register_task",
    "task_names",
]
