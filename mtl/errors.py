"""The one exception type that user-facing commands turn into `exit 2` with a short message.

Every reader, validator and config check raises :class:`KlueInputError` with the file and the
record (line number or guid) it is about, so the CLI can print one paragraph instead of a
traceback.
"""

from __future__ import annotations

from pathlib import Path


class KlueInputError(Exception):
    """Bad user input: a missing or malformed file, record, prediction or config value."""

    def __init__(
        self, path: str | Path | None, record: str | int | None, message: str, *, kind: str = "record"
    ) -> None:
        self.path = str(path) if path is not None else None
        self.record = record
        self.kind = kind
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = []
        if self.path:
            where.append(self.path)
        if self.record is not None:
            where.append(
                f"line {self.record}" if isinstance(self.record, int) else f"{self.kind} {self.record}"
            )
        prefix = ", ".join(where)
        return f"{prefix}: {self.message}" if prefix else self.message
