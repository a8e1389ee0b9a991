"""KLUE-NLI reader: premise/hypothesis pairs and their entailment label.

Official file: a JSON list of ``{guid, source|genre, premise, hypothesis, gold_label, author?,
label2..5?}``; the train file names the source ``genre`` and the dev file ``source``: both land in
``source``. ``gold_label`` is the label name. Hub rows: ``{guid, source, premise, hypothesis, label}``
with ``label`` an id in :data:`mtl.data.labels.NLI_LABELS` order (the final hub order, not the May-2021 one).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mtl.data import common
from mtl.data.labels import NLI_LABELS
from mtl.data.records import NliRecord
from mtl.errors import KlueInputError


def _source(obj: Mapping[str, Any], path: str | Path, where: str) -> str:
    if "source" in obj:
        return common.get_str(obj, "source", path, where)
    if "genre" in obj:
        return common.get_str(obj, "genre", path, where)
    raise KlueInputError(
        path, where, "missing key 'source' (or 'genre', as the official train file calls it)"
    )


def _record(obj: Mapping[str, Any], guid: str, item: common.Item) -> NliRecord:
    return NliRecord(
        guid=guid,
        source=_source(obj, item.path, item.where),
        premise=common.get_str(obj, "premise", item.path, item.where),
        hypothesis=common.get_str(obj, "hypothesis", item.path, item.where),
        label=item.label(obj, "gold_label" if item.official else "label", NLI_LABELS),
    )


_reader = common.JsonListReader("nli", _record)
read = _reader.read
from_hub_rows = _reader.from_hub_rows
