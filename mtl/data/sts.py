"""KLUE-STS reader: sentence pairs and their similarity score.

The official file (a JSON list) and the hub rows share one shape:
``{guid, source, sentence1, sentence2, labels: {label, real-label, binary-label}, annotations?}``
(the hub stores ``binary-label`` as a ClassLabel id, which is the same 0/1). ``real-label`` (the mean
annotator score, the regression target) becomes ``score``, ``label`` (rounded to one decimal) stays
``label`` and ``binary-label`` becomes ``binary``. The reader keeps the three values as given and does
not recompute one from another.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mtl.data import common
from mtl.data.records import StsRecord
from mtl.errors import KlueInputError

_MIN_SCORE, _MAX_SCORE = 0.0, 5.0


def read(path: str | Path, *, labeled: bool = True, split: str = "dev") -> list[StsRecord]:
    """Read STS records from an official file, a hub export or a ``hub:`` spec."""
    return common.read_task(
        path,
        task="sts",
        official_json=_from_official,
        from_hub_rows=from_hub_rows,
        labeled=labeled,
        split=split,
    )


def from_hub_rows(
    rows: Iterable[Mapping[str, Any]], *, source: str, labeled: bool = True, split: str = "dev"
) -> list[StsRecord]:
    """Turn hub-schema rows into records; ``source`` names the input in errors."""
    return _records(common.as_row_list(rows), source, labeled)


def _from_official(data: Any, path: Path, labeled: bool) -> list[StsRecord]:
    return _records(data, path, labeled)


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


def _records(items: list[Any], path: str | Path, labeled: bool) -> list[StsRecord]:
    guids = common.GuidSet(path)
    out: list[StsRecord] = []
    for i, obj in enumerate(items):
        where = common.locate(obj, i, path)
        guid = common.get_str(obj, "guid", path, where)
        guids.add(guid, f"#{i}")
        score, label, binary = _gold(obj, path, where) if labeled else (None, None, None)
        out.append(
            StsRecord(
                guid=guid,
                source=common.get_str(obj, "source", path, where),
                sentence1=common.get_str(obj, "sentence1", path, where),
                sentence2=common.get_str(obj, "sentence2", path, where),
                score=score,
                label=label,
                binary=binary,
            )
        )
    return common.require_records(out, path)
