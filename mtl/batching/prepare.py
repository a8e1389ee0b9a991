"""From a run config to ready-to-train task data: resolve paths, read records, featurize.

Everything a run reads is read here, before the first step, so a malformed file stops the run
before any training time is spent.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from datasets import Dataset

from mtl.batching.featurize import feature_lengths, featurize
from mtl.config import RunConfig, resolve_path
from mtl.errors import KlueInputError
from mtl.tasks import TASKS, get_task
from mtl.tasks.base import Task


@dataclass
class Split:
    """Records of one split of one task and their features."""

    records: list[dict[str, Any]]
    features: Dataset
    lengths: np.ndarray


@dataclass
class TaskData:
    """A task set up for the run (settings, tokenizer, resources) and its train/dev splits."""

    task: Task
    train: Split | None
    dev: Split | None


def setup_task(name: str, cfg: RunConfig, tokenizer: Any, resources: dict[str, Any] | None = None) -> Task:
    """A task instance with the run's settings, its files resolved against ``data_dir``.

    Resources a task builds from files (the WoS ontology, a declared task's labels read from its
    train file) therefore find them wherever the command runs.
    """
    settings = cfg.task_settings(name)
    paths = {key: getattr(settings, key) for key in ("train", "dev", "ontology")}
    settings = dataclasses.replace(
        settings, **{key: resolve_path(cfg, value) for key, value in paths.items() if value}
    )
    task = get_task(name, settings)
    task.setup(settings, tokenizer, resources)
    return task


def add_task_tokens(tokenizer: Any, tasks: list[Task]) -> int:
    """Add every task's special tokens (RE entity markers) to the shared tokenizer; returns how many."""
    tokens = [t for task in tasks for t in task.special_tokens]
    existing = set(tokenizer.get_vocab())
    new = [t for t in dict.fromkeys(tokens) if t not in existing]
    if new:
        # Special tokens are never split and never lower-cased; saved with the tokenizer files.
        tokenizer.add_tokens(new, special_tokens=True)
    return len(new)


def read_split(
    task: Task, path: str, split: str, limit: int | None, *, labeled: bool = True
) -> list[dict[str, Any]]:
    """Read one split's records, optionally keeping the first ``limit``."""
    records = task.read(path, labeled=labeled, split=split)
    if not records:
        raise KlueInputError(path, None, "holds no records")
    return records[:limit] if limit else records


def prepare(
    cfg: RunConfig,
    tokenizer: Any,
    *,
    splits: tuple[str, ...] = ("train", "dev"),
    tasks: list[str] | None = None,
    resources: dict[str, Any] | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = True,
) -> dict[str, TaskData]:
    """Read and featurize every task of the run (all files checked before any featurizing)."""
    names = tasks or list(cfg.tasks)
    prepared: dict[str, TaskData] = {}
    records: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for name in names:
        task = setup_task(name, cfg, tokenizer, (resources or {}).get(name))
        tc = cfg.tasks[name]
        for split in splits:
            value = getattr(tc, split)
            if value is None:
                if split == "train":
                    raise KlueInputError(None, f"tasks.{name}.train", "no train file given", kind="key")
                continue
            if task.reads_other_tasks(split):
                continue  # read below, once every other task's training records are in
            limit = tc.max_train_examples if split == "train" else tc.max_dev_examples
            records[(name, split)] = read_split(task, resolve_path(cfg, value), split, limit)
        prepared[name] = TaskData(task, None, None)
    for name, td in prepared.items():
        tc = cfg.tasks[name]
        if "train" in splits and td.task.reads_other_tasks("train"):
            texts = other_task_texts(cfg, name, records, prepared)
            recs = td.task.from_texts(texts)  # type: ignore[attr-defined]
            if not recs:
                raise KlueInputError(None, f"tasks.{name}.train", "the other tasks hold no text", kind="key")
            records[(name, "train")] = recs[: tc.max_train_examples] if tc.max_train_examples else recs
        if "dev" in splits and tc.dev is None and (name, "train") in records:
            cut = td.task.split_heldout(records[(name, "train")])
            if cut is not None:
                records[(name, "train")], records[(name, "dev")] = cut
    for (name, split), recs in records.items():
        source = getattr(cfg.tasks[name], split)
        made = featurize_split(
            prepared[name].task, recs, source=source, cache_dir=cache_dir, progress=progress
        )
        setattr(prepared[name], split, made)
    return prepared


def featurize_split(
    task: Task,
    records: list[dict[str, Any]],
    *,
    source: str | Path | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = True,
) -> Split:
    """Featurize ``records`` into a :class:`Split`; records that give no feature at all are an input
    error naming ``source`` (the file they came from)."""
    features = featurize(task, records, cache_dir=cache_dir, progress=progress)
    if records and len(features) == 0:
        raise KlueInputError(source, None, f"{task.name}: no features were produced")
    return Split(records, features, feature_lengths(features))


def other_task_texts(
    cfg: RunConfig,
    name: str,
    records: dict[tuple[str, str], list[dict[str, Any]]],
    prepared: dict[str, TaskData],
) -> list[str]:
    """The training text of the tasks that feed ``name``'s ``@tasks`` source, in task order.

    ``tasks.<name>.text_from`` names those tasks and their train files; without it, every other task
    of the config gives the records it trains on. Dev files are never read.
    """
    texts: list[str] = []
    text_from = cfg.tasks[name].text_from
    if text_from:
        for other, value in text_from.items():
            if other not in TASKS:
                raise KlueInputError(
                    None,
                    f"tasks.{name}.text_from.{other}",
                    f"not a registered task ({', '.join(TASKS)})",
                    kind="key",
                )
            task = get_task(other)
            texts.extend(
                t
                for r in read_split(task, resolve_path(cfg, value), "train", None)
                for t in task.record_texts(r)
            )
        return texts
    for (other, split), recs in records.items():
        if split == "train" and other != name and not prepared[other].task.reads_other_tasks("train"):
            texts.extend(t for r in recs for t in prepared[other].task.record_texts(r))
    return texts
