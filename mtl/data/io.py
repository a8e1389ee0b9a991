"""File reading shared by the readers: UTF-8 text, JSON, JSON Lines and KLUE TSV blocks.

Nothing here knows a KLUE task; it only turns bytes into Python objects and turns every way of
failing (missing, empty, not UTF-8, bad JSON) into a :class:`KlueInputError` naming the file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mtl.errors import KlueInputError


def read_text(path: str | Path) -> str:
    """Read a whole UTF-8 text file; missing, empty or non-UTF-8 files are input errors."""
    p = Path(path)
    if not p.exists():
        raise KlueInputError(p, None, "file not found")
    if p.is_dir():
        raise KlueInputError(p, None, "is a folder, expected a file")
    raw = p.read_bytes()
    if not raw.strip():
        raise KlueInputError(p, None, "file is empty")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise KlueInputError(p, line, f"not valid UTF-8 (byte {e.start})") from None
    return text.removeprefix("\ufeff")


def read_json(path: str | Path) -> Any:
    """Parse a JSON document, reporting the line of a syntax error or truncation."""
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise KlueInputError(path, e.lineno, f"invalid JSON: {e.msg} (column {e.colno})") from None


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, Any]]:
    """Yield ``(line_number, object)`` for each non-blank line of a JSON Lines file."""
    text = read_text(path)
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield lineno, json.loads(line)
        except json.JSONDecodeError as e:
            raise KlueInputError(path, lineno, f"invalid JSON: {e.msg} (column {e.colno})") from None


def is_jsonl(path: str | Path) -> bool:
    """True when the file looks like JSON Lines rather than one JSON document."""
    p = Path(path)
    if p.suffix in (".jsonl", ".ndjson"):
        return True
    if p.suffix != ".json":
        return False
    text = read_text(p).lstrip()
    if not text.startswith("{"):
        return False
    first = text.split("\n", 1)[0].strip()
    try:
        json.loads(first)
    except json.JSONDecodeError:
        return False
    # One object on the first line followed by more lines of objects.
    return "\n" in text.strip()


def write_jsonl(path: str | Path, rows: list[dict[str, Any]]) -> None:
    """Write rows as UTF-8 JSON Lines (Korean kept readable)."""
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
