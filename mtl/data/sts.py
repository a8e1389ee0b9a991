"""KLUE-STS reader: sentence pairs and their similarity score.

The official file (a JSON list) and the hub rows share one shape:
``{guid, source, sentence1, sentence2, labels: {label, real-label, binary-label}, annotations?}``
(the hub stores ``binary-label`` as a ClassLabel id, which is the same 0/1). ``real-label`` (the mean
annotator score, the regression target) becomes ``score``, ``label`` (rounded to one decimal) stays
``label`` and ``binary-label`` becomes ``binary``. The reader keeps the three values as given and does
not recompute one from another.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mtl.data import common
from mtl.data.records import StsRecord
from mtl.errors import KlueInputError

_MIN_SCORE, _MAX_SCORE = 0.0, 5.0


def _score(labels: Mapping[str, Any], key: str, path: str | Path, where: str) -> float:
    value = common.get_float(labels, key, path, where)
    if not _MIN_SCORE <= value <= _MAX_SCORE:
        raise KlueInputError(path, where, f"labels.{key} {value} is outside 0..5")
    return value


def _gold(obj: Mapping[str, Any], path: str | Path, where: str) -> tuple[float, float, int]:
    if "labels" not in obj:
        raise KlueInputError(path, where, "missing key 'labels'")
    labels = common.as_mapping(obj["labels"], path, where, "'labels'")
    binary = common.get_int(labels, "binary-label", path, where)
    if binary not in (0, 1):
        raise KlueInputError(path, where, f"labels.binary-label must be 0 or 1, got {binary}")
    return _score(labels, "real-label", path, where), _score(labels, "label", path, where), binary


def _record(obj: Mapping[str, Any], guid: str, item: common.Item) -> StsRecord:
    path, where = item.path, item.where
    score, label, binary = _gold(obj, path, where) if item.labeled else (None, None, None)
    return StsRecord(
        guid=guid,
        source=common.get_str(obj, "source", path, where),
        sentence1=common.get_str(obj, "sentence1", path, where),
        sentence2=common.get_str(obj, "sentence2", path, where),
        score=score,
        label=label,
        binary=binary,
    )


_reader = common.JsonListReader("sts", _record)
read = _reader.read
from_hub_rows = _reader.from_hub_rows
