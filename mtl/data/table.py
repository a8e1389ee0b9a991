"""Rows of a user's table file, for the tasks a config declares with ``kind:``.

Accepted: ``.tsv`` and ``.csv`` with a header line, JSON Lines (``.jsonl``/``.ndjson``), a ``.json``
list of objects, and everything :mod:`mtl.data.hub` reads (``hub:<repo>/<config>/<split>``,
``.parquet``, ``.arrow``, a ``save_to_disk`` folder). Each row comes with where it was found (a line
number for text files, a row number otherwise) so that every error names the file and the record.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mtl.data.hub import HUB_SPEC_PREFIX, load_hub_rows
from mtl.data.io import iter_jsonl, read_text
from mtl.errors import KlueInputError

#: one row: (where it is: a line number, or "#i" for the i-th row of a binary file, the row as a mapping)
Row = tuple[int | str, dict[str, Any]]

_DELIMITERS = {".tsv": "\t", ".csv": ","}


def read_table(path: str | Path) -> list[Row]:
    """Every row of ``path``; an empty file or one without a header is an input error."""
    spec = str(path)
    if spec.startswith(HUB_SPEC_PREFIX):
        rows, source = load_hub_rows(spec)
        return _numbered(rows, source)
    path = Path(path)
    if not path.exists():
        raise KlueInputError(path, None, "file not found")
    suffix = path.suffix.lower()
    if suffix in _DELIMITERS:
        rows = list(_delimited(path, _DELIMITERS[suffix]))
    elif suffix in (".jsonl", ".ndjson"):
        rows = [(n, _object(obj, path, n)) for n, obj in iter_jsonl(path)]
    elif suffix == ".json":
        rows = _json_rows(path)
    else:
        loaded, source = load_hub_rows(str(path))
        rows = _numbered(loaded, source)
    if not rows:
        raise KlueInputError(path, None, "holds no records")
    return rows


def _numbered(rows: Any, source: str) -> list[Row]:
    out = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise KlueInputError(source, f"#{i}", "each row must be a mapping of columns")
        out.append((f"#{i}", row))
    if not out:
        raise KlueInputError(source, None, "holds no records")
    return out


def _object(obj: Any, path: Path, line: int) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise KlueInputError(path, line, "each line must be a JSON object")
    return obj


def _json_rows(path: Path) -> list[Row]:
    text = read_text(path)
    stripped = text.lstrip()
    if stripped.startswith("{"):  # JSON Lines under a .json name (what Dataset.to_json writes)
        return [(n, _object(obj, path, n)) for n, obj in iter_jsonl(path)]
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise KlueInputError(path, e.lineno, f"invalid JSON: {e.msg}") from None
    if not isinstance(data, list):
        raise KlueInputError(path, None, "a .json table is a list of objects (or JSON Lines)")
    rows = []
    for i, obj in enumerate(data):
        if not isinstance(obj, dict):
            raise KlueInputError(path, f"#{i}", "must be a JSON object")
        rows.append((f"#{i}", obj))
    return rows


def _delimited(path: Path, delimiter: str) -> Iterator[Row]:
    text = read_text(path)
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise KlueInputError(path, 1, "the first line must name the columns")
    # csv's own quoting rules for .csv; a .tsv is read as plain tab-separated fields (NSMC-style files
    # hold unbalanced quotes inside the text).
    quoting = csv.QUOTE_MINIMAL if delimiter == "," else csv.QUOTE_NONE
    reader = csv.reader(lines, delimiter=delimiter, quoting=quoting)
    header = next(reader)
    if len(set(header)) != len(header):
        raise KlueInputError(path, 1, f"repeated column names in the header: {header}")
    for fields in reader:
        line = reader.line_num
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue  # blank lines carry no record
        if len(fields) != len(header):
            raise KlueInputError(
                path, line, f"has {len(fields)} fields but the header names {len(header)} columns"
            )
        yield line, dict(zip(header, fields, strict=True))
