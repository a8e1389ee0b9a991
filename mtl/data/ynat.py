"""KLUE-TC (YNAT) reader: news headlines and their topic.

Official file: a JSON list of ``{guid, title, label, predefined_news_category?, annotations?, url?,
date?}`` with ``label`` a topic name. Hub rows: ``{guid, title, label, url, date}`` with ``label`` an id
in :data:`mtl.data.labels.YNAT_LABELS` order. Only guid, title and label reach the record.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mtl.data import common
from mtl.data.labels import YNAT_LABELS
from mtl.data.records import YnatRecord


def _record(obj: Mapping[str, Any], guid: str, item: common.Item) -> YnatRecord:
    return YnatRecord(
        guid=guid,
        title=common.get_str(obj, "title", item.path, item.where),
        label=item.label(obj, "label", YNAT_LABELS),
    )


_reader = common.JsonListReader("ynat", _record)
read = _reader.read
from_hub_rows = _reader.from_hub_rows
