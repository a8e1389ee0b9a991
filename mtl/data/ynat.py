"""KLUE-TC (YNAT) reader: news headlines and their topic.

Official file: a JSON list of ``{guid, title, label, predefined_news_category?, annotations?, url?,
date?}`` with ``label`` a topic name. Hub rows: ``{guid, title, label, url, date}`` with ``label`` an id
in :data:`mtl.data.labels.YNAT_LABELS` order. Only guid, title and label reach the record.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mtl.data import common
from mtl.data.labels import YNAT_LABELS
from mtl.data.records import YnatRecord


def read(path: str | Path, *, labeled: bool = True, split: str = "dev") -> list[YnatRecord]:
    """Read YNAT records from an official file, a hub export or a ``hub:`` spec."""
    return common.read_task(
        path,
        task="ynat",
        official_json=_from_official,
        from_hub_rows=from_hub_rows,
        labeled=labeled,
        split=split,
    )


def from_hub_rows(
    rows: Iterable[Mapping[str, Any]], *, source: str, labeled: bool = True, split: str = "dev"
) -> list[YnatRecord]:
    """Turn hub-schema rows (label ids) into records; ``source`` names the input in errors."""
    return _records(common.as_row_list(rows), source, labeled, common.label_from_id)


def _from_official(data: Any, path: Path, labeled: bool) -> list[YnatRecord]:
    return _records(data, path, labeled, common.label_from_name)


def _records(items: list[Any], path: str | Path, labeled: bool, label_of: common.LabelOf) -> list[YnatRecord]:
    guids = common.GuidSet(path)
    out: list[YnatRecord] = []
    for i, obj in enumerate(items):
        where = common.locate(obj, i, path)
        guid = common.get_str(obj, "guid", path, where)
        guids.add(guid, f"#{i}")
        out.append(
            YnatRecord(
                guid=guid,
                title=common.get_str(obj, "title", path, where),
                label=label_of(obj, "label", YNAT_LABELS, path, where) if labeled else None,
            )
        )
    return common.require_records(out, path)
