"""Bundled sample data: a few dozen invented records per KLUE task, in the official release format.

The files are written by :mod:`mtl.samples.make_samples` (deterministic; never copied from KLUE) and
ship as package data, so the offline demo and the end-to-end tests run anywhere.
"""

from __future__ import annotations

from pathlib import Path

from mtl.errors import KlueInputError

SAMPLES_DIR: Path = Path(__file__).resolve().parent
"""The folder holding the sample files."""

ONTOLOGY_PATH: Path = SAMPLES_DIR / "ontology.json"
"""WoS ontology of the samples: ``{"domain-slot": ["none", "dontcare", values...]}`` for the 45 slots."""

RELATION_LIST_PATH: Path = SAMPLES_DIR / "relation_list.json"
"""``{"relations": [...]}``: the 30 RE labels in id order (= ``mtl.data.labels.RE_LABELS``)."""

SAMPLE_SPLITS: tuple[str, ...] = ("train", "dev")

# The hub calls the dev split "validation"; accept that name too.
_SPLIT_ALIASES = {"train": "train", "dev": "dev", "validation": "dev"}


def sample_files() -> dict[str, str]:
    """Task -> sample file name pattern (``{split}`` = train/dev), for every task that bundles samples."""
    from mtl.tasks import TASKS

    return {name: cls.sample_file for name, cls in TASKS.items() if cls.sample_file}


def sample_path(task: str, split: str) -> Path:
    """Path of the bundled sample file of ``task`` (a KLUE task name) for ``split`` (train/dev)."""
    files = sample_files()
    if task not in files:
        raise KlueInputError(None, None, f"no sample data for task {task!r}; tasks are {', '.join(files)}")
    if split not in _SPLIT_ALIASES:
        raise KlueInputError(None, None, f"no sample split {split!r}; splits are train, dev (or validation)")
    return SAMPLES_DIR / files[task].format(split=_SPLIT_ALIASES[split])
