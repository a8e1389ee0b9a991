"""KLUE-NLI reader: premise/hypothesis pairs and their entailment label.

Official file: a JSON list of ``{guid, source|genre, premise, hypothesis, gold_label, author?,
label2..5?}``; the train file names the source ``genre`` and the dev file ``source``: both land in
``source``. ``gold_label`` is the label name. Hub rows: ``{guid, source, premise, hypothesis, label}``
with ``label`` an id in :data:`mtl.data.labels.NLI_LABELS` order (the final hub order, not the May-2021 one).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mtl.data import common
from mtl.data.labels import NLI_LABELS
from mtl.data.records import NliRecord
from mtl.errors import KlueInputError


def read(path: str | Path, *, labeled: bool = True, split: str = "dev") -> list[NliRecord]:
    """Read NLI records from an official file, a hub export or a ``hub:`` spec."""
    return common.read_task(
        path,
        task="nli",
        official_json=_from_official,
        from_hub_rows=from_hub_rows,
        labeled=labeled,
        split=split,
    )


def from_hub_rows(
    rows: Iterable[Mapping[str, Any]], *, source: str, labeled: bool = True, split: str = "dev"
) -> list[NliRecord]:
    """Turn hub-schema rows (label ids) into records; ``source`` names the input in errors."""
    return _records(common.as_row_list(rows), source, labeled, common.label_from_id, "label")


def _from_official(data: Any, path: Path, labeled: bool) -> list[NliRecord]:
    return _records(data, path, labeled, common.label_from_name, "gold_label")


def _source(obj: Mapping[str, Any], path: str | Path, where: str) -> str:
    if "source" in obj:
        return common.get_str(obj, "source", path, where)
    if "genre" in obj:
        return common.get_str(obj, "genre", path, where)
    raise KlueInputError(
        path, where, "missing key 'source' (or 'genre', as the official train file calls it)"
    )


def _records(
    items: list[Any], path: str | Path, labeled: bool, label_of: common.LabelOf, label_key: str
) -> list[NliRecord]:
    guids = common.GuidSet(path)
    out: list[NliRecord] = []
    for i, obj in enumerate(items):
        where = common.locate(obj, i, path)
        guid = common.get_str(obj, "guid", path, where)
        guids.add(guid, f"#{i}")
        out.append(
            NliRecord(
                guid=guid,
                source=_source(obj, path, where),
                premise=common.get_str(obj, "premise", path, where),
                hypothesis=common.get_str(obj, "hypothesis", path, where),
                label=label_of(obj, label_key, NLI_LABELS, path, where) if labeled else None,
            )
        )
    return common.require_records(out, path)
