"""What every KLUE reader shares: picking the format of a path, field checks, label mapping.

Format detection (:func:`read_task`), in this order:

* ``hub:<repo>/<config>/<split>``: the Hugging Face hub, through :mod:`mtl.data.hub`;
* a folder, ``.parquet`` or ``.arrow``: a local export with the hub schema;
* ``.jsonl`` / ``.ndjson``: JSON Lines rows with the hub schema (as ``Dataset.to_json`` writes them);
* ``.json``: JSON Lines rows if the file holds several top-level documents, one per line; otherwise one
  JSON document. For YNAT/NLI/STS/RE/WoS a top-level list is the official release file; for MRC an
  object with ``data`` is. Any other document is hub rows (a list of rows, or one row object);
* anything else (``.tsv``): the official release file of a TSV task (NER, DP), or JSON for the rest.

Records in error messages are named by guid, by ``#<index>`` (0-based position in the file) when the
record has no usable guid, or by line number for TSV files.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from mtl.data import hub
from mtl.data.io import iter_jsonl, read_text
from mtl.errors import KlueInputError

Where = str | int | None  # a guid or "#index" for JSON records, a line number for TSV rows
R = TypeVar("R")

_HUB_SUFFIXES = (".parquet", ".arrow")
_JSONL_SUFFIXES = (".jsonl", ".ndjson")


# ----------------------------------------------------------------------------------------- fields
def as_mapping(obj: Any, path: str | Path, where: Where, what: str = "record") -> Mapping[str, Any]:
    """Return ``obj`` if it is a JSON object, else raise naming what was expected."""
    if not isinstance(obj, Mapping):
        raise KlueInputError(path, where, f"{what} must be a JSON object, got {type(obj).__name__}")
    return obj


def locate(obj: Any, index: int, path: str | Path) -> str:
    """Name a JSON record for messages: its guid when it has a string one, else ``#index``."""
    as_mapping(obj, path, f"#{index}")
    guid = obj.get("guid")
    return guid if isinstance(guid, str) and guid else f"#{index}"


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def get_str(obj: Mapping[str, Any], key: str, path: str | Path, where: Where) -> str:
    """A required string field."""
    if key not in obj:
        raise KlueInputError(path, where, f"missing key {key!r}")
    value = obj[key]
    if not isinstance(value, str):
        raise KlueInputError(path, where, f"{key!r} must be a string, got {_type_name(value)}")
    return value


def get_int(obj: Mapping[str, Any], key: str, path: str | Path, where: Where) -> int:
    """A required integer field (a JSON boolean is not accepted as an integer)."""
    if key not in obj:
        raise KlueInputError(path, where, f"missing key {key!r}")
    value = obj[key]
    if not is_int(value):
        raise KlueInputError(path, where, f"{key!r} must be an integer, got {_type_name(value)}")
    return value


def get_float(obj: Mapping[str, Any], key: str, path: str | Path, where: Where) -> float:
    """A required number field, returned as float."""
    if key not in obj:
        raise KlueInputError(path, where, f"missing key {key!r}")
    value = obj[key]
    if not is_int(value) and not isinstance(value, float):
        raise KlueInputError(path, where, f"{key!r} must be a number, got {_type_name(value)}")
    return float(value)


def get_bool(obj: Mapping[str, Any], key: str, path: str | Path, where: Where) -> bool:
    """A required boolean field."""
    if key not in obj:
        raise KlueInputError(path, where, f"missing key {key!r}")
    value = obj[key]
    if not isinstance(value, bool):
        raise KlueInputError(path, where, f"{key!r} must be true or false, got {_type_name(value)}")
    return value


def get_list(obj: Mapping[str, Any], key: str, path: str | Path, where: Where) -> list[Any]:
    """A required list field."""
    if key not in obj:
        raise KlueInputError(path, where, f"missing key {key!r}")
    value = obj[key]
    if not isinstance(value, list):
        raise KlueInputError(path, where, f"{key!r} must be a list, got {_type_name(value)}")
    return value


def get_str_list(obj: Mapping[str, Any], key: str, path: str | Path, where: Where) -> list[str]:
    """A required list of strings."""
    values = get_list(obj, key, path, where)
    for i, value in enumerate(values):
        if not isinstance(value, str):
            raise KlueInputError(path, where, f"{key}[{i}] must be a string, got {_type_name(value)}")
    return values


def get_optional_int(obj: Mapping[str, Any], key: str, path: str | Path, where: Where) -> int | None:
    """An optional integer field: absent or null gives None."""
    if obj.get(key) is None:
        return None
    return get_int(obj, key, path, where)


def is_int(value: Any) -> bool:
    """True for a JSON integer; ``bool`` is an ``int`` subclass in Python but not a KLUE integer."""
    return isinstance(value, int) and not isinstance(value, bool)


# ----------------------------------------------------------------------------------------- labels
def label_from_name(
    obj: Mapping[str, Any], key: str, labels: tuple[str, ...], path: str | Path, where: Where
) -> int:
    """Map the label string of an official file to its id in ``labels`` (the hub order)."""
    name = get_str(obj, key, path, where)
    try:
        return labels.index(name)
    except ValueError:
        raise KlueInputError(path, where, f"unknown {key} {name!r}") from None


def label_from_id(
    obj: Mapping[str, Any], key: str, labels: tuple[str, ...], path: str | Path, where: Where
) -> int:
    """Check a hub label id (already in hub order) lies in ``0..len(labels)-1``."""
    value = get_int(obj, key, path, where)
    if value == -1:
        # datasets writes -1 for a ClassLabel with no gold; only an unlabeled read may have that
        raise KlueInputError(path, where, f"{key!r} is -1 (no gold label) but a labeled read needs one")
    if not 0 <= value < len(labels):
        raise KlueInputError(path, where, f"{key!r} id {value} is out of range 0..{len(labels) - 1}")
    return value


# ------------------------------------------------------------------------------------------ guids
class GuidSet:
    """Remembers the guids of one file so a repeated one is an error naming both places."""

    def __init__(self, path: str | Path) -> None:
        self._path = path
        self._first: dict[str, Where] = {}

    def add(self, guid: str, where: Where) -> None:
        """Record ``guid`` found at ``where`` (a line, ``#index`` or a position); raise on a repeat."""
        if not guid:
            raise KlueInputError(self._path, where, "guid is empty")
        if guid in self._first:
            first = self._first[guid]
            at = f"line {first}" if isinstance(first, int) else f"record {first}"
            raise KlueInputError(self._path, where, f"duplicate guid {guid!r} (first seen at {at})")
        self._first[guid] = where


def require_records(records: list[R], path: str | Path) -> list[R]:
    """An input with no records at all is an error, never an empty dataset."""
    if not records:
        raise KlueInputError(path, None, "holds no records")
    return records


# -------------------------------------------------------------------------------------- dispatch
def is_hub_spec(path: str | Path) -> bool:
    """True for ``hub:<repo>/<config>/<split>`` (a string, never a Path to a local file)."""
    return isinstance(path, str) and path.startswith(hub.HUB_SPEC_PREFIX)


def load_json_source(path: Path) -> tuple[str, Any]:
    """Parse a JSON or JSON Lines file once: ``("doc", object)`` or ``("rows", [row, ...])``."""
    if path.suffix in _JSONL_SUFFIXES:
        return "rows", [row for _, row in iter_jsonl(path)]
    text = read_text(path)
    try:
        return "doc", json.loads(text)
    except json.JSONDecodeError as e:
        # "Extra data" after a complete first value is how JSON Lines looks to json.loads
        if e.msg == "Extra data" and text.lstrip().startswith("{"):
            return "rows", [row for _, row in iter_jsonl(path)]
        raise KlueInputError(path, e.lineno, f"invalid JSON: {e.msg} (column {e.colno})") from None


OfficialJson = Callable[[Any, Path, bool], list[Any]]
OfficialTsv = Callable[[Path, bool], list[Any]]
HubRows = Callable[..., list[Any]]


def read_task(
    path: str | Path,
    *,
    task: str,
    from_hub_rows: HubRows,
    labeled: bool,
    split: str,
    official_json: OfficialJson | None = None,
    official_tsv: OfficialTsv | None = None,
    is_official_doc: Callable[[Any], bool] = lambda doc: isinstance(doc, list),
) -> list[Any]:
    """Read ``path`` in whichever format it is in (see the module docstring) into task records.

    ``official_json`` parses an official JSON document (``is_official_doc`` says which documents are
    one); ``official_tsv`` parses an official TSV file; ``from_hub_rows`` turns hub-schema rows into
    records.
    """
    if is_hub_spec(path):
        config = hub.parse_hub_spec(str(path))[1]
        if config != task:
            raise KlueInputError(path, None, f"hub config {config!r} does not match task {task!r}")
        rows, source = hub.load_hub_rows(str(path))
        return from_hub_rows(rows, source=source, labeled=labeled, split=split)

    p = Path(path)
    if p.is_dir() or p.suffix in _HUB_SUFFIXES:
        rows, source = hub.load_hub_rows(str(p))
        return from_hub_rows(rows, source=source, labeled=labeled, split=split)
    if official_tsv is not None and p.suffix not in (".json", *_JSONL_SUFFIXES):
        return official_tsv(p, labeled)

    kind, data = load_json_source(p)
    if kind == "doc" and official_json is not None and is_official_doc(data):
        return official_json(data, p, labeled)
    if not isinstance(data, list | Mapping):
        raise KlueInputError(
            p, None, f"top-level JSON must be a list of records or an object, got {_type_name(data)}"
        )
    rows = data if isinstance(data, list) else [data]
    return from_hub_rows(rows, source=str(p), labeled=labeled, split=split)


def as_row_list(rows: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Materialise hub rows (a list, a generator or a ``datasets.Dataset``) once."""
    return rows if isinstance(rows, list) else list(rows)


# ------------------------------------------------------------------------------ JSON-list readers
@dataclass(frozen=True)
class Item:
    """Where one JSON record sits (for messages) and how its gold is read."""

    path: str | Path
    where: str  # the record's guid, or ``#index``
    labeled: bool  # False: the gold is not read (an input file to predict on)
    official: bool  # the release file (label names) rather than hub rows (label ids)

    def label(self, obj: Mapping[str, Any], key: str, labels: tuple[str, ...]) -> int | None:
        """The label id under ``key`` (a name in the release, an id on the hub); None when unlabeled."""
        if not self.labeled:
            return None
        label_of = label_from_name if self.official else label_from_id
        return label_of(obj, key, labels, self.path, self.where)


#: builds one record from a JSON object whose unique string ``guid`` the reader already checked
BuildRecord = Callable[[Mapping[str, Any], str, Item], R]


class JsonListReader(Generic[R]):
    """The reader of a task whose release file is a JSON list of records with a unique ``guid``
    (YNAT, NLI, STS, RE, WoS); hub rows have the same shape. The task's module gives the one thing
    that differs, how an object becomes a record (``build``), and exposes :meth:`read` and
    :meth:`from_hub_rows` as its own."""

    def __init__(self, task: str, build: BuildRecord[R]) -> None:
        self.task = task
        self.build = build

    def read(self, path: str | Path, *, labeled: bool = True, split: str = "dev") -> list[R]:
        """Read records from an official file, a hub export or a ``hub:`` spec (see the module docstring)."""
        return read_task(
            path,
            task=self.task,
            official_json=lambda data, p, lab: self.records(data, p, labeled=lab, official=True),
            from_hub_rows=self.from_hub_rows,
            labeled=labeled,
            split=split,
        )

    def from_hub_rows(
        self, rows: Iterable[Mapping[str, Any]], *, source: str, labeled: bool = True, split: str = "dev"
    ) -> list[R]:
        """Turn hub-schema rows (label ids) into records; ``source`` names the input in errors."""
        return self.records(as_row_list(rows), source, labeled=labeled, official=False)

    def records(self, items: list[Any], path: str | Path, *, labeled: bool, official: bool) -> list[R]:
        """One record per JSON object of ``items``: each an object with a string guid, no guid twice."""
        guids = GuidSet(path)
        out: list[R] = []
        for i, obj in enumerate(items):
            where = locate(obj, i, path)
            guid = get_str(obj, "guid", path, where)
            guids.add(guid, f"#{i}")
            out.append(self.build(obj, guid, Item(path, where, labeled, official)))
        return require_records(out, path)


# ------------------------------------------------------------------------------------ TSV blocks
class TsvSentence:
    """One ``## <guid>\\t<sentence>`` header and the rows under it, with their line numbers."""

    __slots__ = ("guid", "sentence", "header_line", "rows", "terminated")

    def __init__(self, guid: str, sentence: str, header_line: int) -> None:
        self.guid = guid
        self.sentence = sentence
        self.header_line = header_line
        self.rows: list[tuple[int, str]] = []
        # False only for a last sentence that the file ends inside of (no blank line, no next
        # header after it): a byte prefix of a file looks exactly like that
        self.terminated = False


def _sentence_header(line: str) -> tuple[str, str] | None:
    """``(guid, sentence)`` for ``## <guid>\\t<sentence>``; None for the release's comment lines.

    The comment lines start with ``## `` too, and the column-name one even holds a tab
    (``## 컬럼명 : CHAR\\tNE_TAG``); a guid never holds whitespace, a comment's first field does.
    """
    guid, tab, sentence = line[3:].partition("\t")
    if not tab or guid.split() != [guid]:
        return None
    return guid, sentence


def read_tsv_sentences(path: Path) -> list[TsvSentence]:
    """Split a KLUE NER/DP TSV file into sentences; rows stay unparsed text.

    Lines starting with ``## `` that are not sentence headers are the release's comment lines and are
    skipped; a blank line or the next header ends a sentence. A row before any header, or a header
    with no rows, is an error naming its line.
    """
    text = read_text(path)
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the newline that ends the last line, not a blank line
    sentences: list[TsvSentence] = []
    guids = GuidSet(path)
    current: TsvSentence | None = None
    for lineno, line in enumerate(lines, start=1):
        if not line:
            if current is not None:
                _close(current, path)
            current = None
        elif line.startswith("## "):
            header = _sentence_header(line)
            if header is None:
                continue
            if current is not None:
                _close(current, path)
            guids.add(header[0], lineno)
            current = TsvSentence(header[0], header[1], lineno)
            sentences.append(current)
        elif current is None:
            raise KlueInputError(
                path,
                lineno,
                "row outside a sentence: expected a '## <guid><TAB><sentence>' header line before it",
            )
        else:
            current.rows.append((lineno, line))
    if current is not None and not current.rows:
        raise KlueInputError(path, current.header_line, f"sentence {current.guid!r} has no rows")
    return require_records(sentences, path)


def _close(sentence: TsvSentence, path: Path) -> None:
    if not sentence.rows:
        raise KlueInputError(path, sentence.header_line, f"sentence {sentence.guid!r} has no rows")
    sentence.terminated = True
