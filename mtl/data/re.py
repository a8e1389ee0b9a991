"""KLUE-RE reader: a sentence, a subject and an object entity, and their relation.

The official file (a JSON list) and the hub rows share one shape:
``{guid, sentence, subject_entity: {word, start_idx, end_idx, type}, object_entity: {...}, label,
source}``; ``label`` is the relation name in the official file and an id in
:data:`mtl.data.labels.RE_LABELS` order on the hub. Offsets are character offsets with an INCLUSIVE end:
every entity must satisfy ``sentence[start_idx:end_idx + 1] == word`` and have a type in
:data:`mtl.data.labels.RE_ENTITY_TYPES`; anything else is an error naming the guid.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mtl.data import common
from mtl.data.labels import RE_ENTITY_TYPES, RE_LABELS
from mtl.data.records import Entity, ReRecord
from mtl.errors import KlueInputError


def _entity(obj: Mapping[str, Any], key: str, sentence: str, path: str | Path, where: str) -> Entity:
    if key not in obj:
        raise KlueInputError(path, where, f"missing key {key!r}")
    ent = common.as_mapping(obj[key], path, where, repr(key))
    word = common.get_str(ent, "word", path, where)
    start = common.get_int(ent, "start_idx", path, where)
    end = common.get_int(ent, "end_idx", path, where)
    etype = common.get_str(ent, "type", path, where)
    if etype not in RE_ENTITY_TYPES:
        raise KlueInputError(path, where, f"{key}.type {etype!r} is not one of {', '.join(RE_ENTITY_TYPES)}")
    if not 0 <= start <= end < len(sentence):
        raise KlueInputError(
            path,
            where,
            f"{key} offsets {start}..{end} (end inclusive) do not fit a sentence of {len(sentence)} characters",
        )
    if sentence[start : end + 1] != word:
        raise KlueInputError(
            path,
            where,
            f"{key}.word {word!r} does not match sentence[{start}:{end}+1] = {sentence[start : end + 1]!r} "
            "(end_idx is inclusive)",
        )
    return Entity(word=word, start=start, end=end, type=etype)


def _record(obj: Mapping[str, Any], guid: str, item: common.Item) -> ReRecord:
    path, where = item.path, item.where
    sentence = common.get_str(obj, "sentence", path, where)
    return ReRecord(
        guid=guid,
        sentence=sentence,
        subject=_entity(obj, "subject_entity", sentence, path, where),
        object=_entity(obj, "object_entity", sentence, path, where),
        label=item.label(obj, "label", RE_LABELS),
        source=common.get_str(obj, "source", path, where),
    )


_reader = common.JsonListReader("re", _record)
read = _reader.read
from_hub_rows = _reader.from_hub_rows
