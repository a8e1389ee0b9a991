"""KLUE-NER reader: sentences with one BIO tag per character (spaces included).

Official file (TSV): five ``## `` comment lines, then per sentence a header
``## <guid>\\t<annotated sentence>`` (entities marked ``<surface:TYPE>``), one ``char\\ttag`` row per
character (a space is its own row, ``" \\tO"``), and a blank line. Rows are split on the FIRST tab only:
the character may be ``"`` or any punctuation, so no CSV quoting applies. ``text`` is the characters
joined.

Truncation: a sentence closed by a blank line (or by the next header) is complete. The last sentence
of a file with no blank line after it may be a cut-off byte prefix (as in the hf_dummy files), so it
must spell exactly its header sentence with the ``<surface:TYPE>`` markup removed; otherwise the file
is reported as truncated at its last line. A cut inside the last row is caught by the row checks (no
tab, an unknown tag, or a broken UTF-8 character).

With ``labeled=False`` the tag column is optional (a row may be just the character) and ignored.

Hub rows: ``{sentence, tokens, ner_tags}`` (``tokens`` one character each, ``ner_tags`` ids in
:data:`mtl.data.labels.NER_LABELS` order). They carry no guid: record ``i`` gets ``ner-<i>``, whichever split it is read as.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mtl.data import common
from mtl.data.labels import NER_LABELS
from mtl.data.records import NerRecord
from mtl.errors import KlueInputError

_TAG_IDS = {name: i for i, name in enumerate(NER_LABELS)}
# a surface never holds "<" or ">", but may hold ":" (e.g. <12:30:TI>): the type at the end decides
_MARKUP = re.compile(r"<([^<>]*?):(DT|LC|OG|PS|QT|TI)>")


def read(path: str | Path, *, labeled: bool = True, split: str = "dev") -> list[NerRecord]:
    """Read NER records from an official TSV file, a hub export or a ``hub:`` spec."""
    return common.read_task(
        path, task="ner", official_tsv=_from_tsv, from_hub_rows=from_hub_rows, labeled=labeled, split=split
    )


def plain_sentence(annotated: str) -> str:
    """The header sentence without its ``<surface:TYPE>`` markup."""
    return _MARKUP.sub(r"\1", annotated)


def _from_tsv(path: Path, labeled: bool) -> list[NerRecord]:
    out: list[NerRecord] = []
    for sent in common.read_tsv_sentences(path):
        chars: list[str] = []
        tags: list[int] = []
        for lineno, row in sent.rows:
            columns = row.split("\t")
            if len(columns) > 2:  # caught on the first row: a DP file's rows have six columns
                raise KlueInputError(
                    path,
                    lineno,
                    f"row {row!r} has {len(columns)} columns; an NER row is <character><TAB><tag> "
                    "(is this a file of another task, e.g. DP's INDEX WORD_FORM LEMMA POS HEAD DEPREL?)",
                )
            char, tab, tag = row.partition("\t")
            if labeled and not tab:
                raise KlueInputError(
                    path, lineno, f"row {row!r} has no tab between the character and its tag"
                )
            if len(char) != 1:
                raise KlueInputError(
                    path, lineno, f"the character column must be exactly one character, got {char!r}"
                )
            chars.append(char)
            if not labeled:
                continue
            tag_id = _TAG_IDS.get(tag)
            if tag_id is None:
                raise KlueInputError(path, lineno, f"unknown NER tag {tag!r}")
            tags.append(tag_id)
        text = "".join(chars)
        if not sent.terminated and text != plain_sentence(sent.sentence):
            raise KlueInputError(
                path,
                sent.rows[-1][0],
                f"sentence {sent.guid!r} is cut off at the end of the file: its {len(text)} characters do not "
                f"spell its header sentence ({len(plain_sentence(sent.sentence))} characters); the file looks truncated",
            )
        out.append(NerRecord(guid=sent.guid, text=text, tags=tags if labeled else None))
    return out


def from_hub_rows(
    rows: Iterable[Mapping[str, Any]], *, source: str, labeled: bool = True, split: str = "dev"
) -> list[NerRecord]:
    """Turn hub-schema rows into records with guids ``ner-<index>`` (the same for any split, so predict and score agree)."""
    out: list[NerRecord] = []
    for i, row in enumerate(common.as_row_list(rows)):
        where = f"#{i}"
        row = common.as_mapping(row, source, where)
        tokens = common.get_str_list(row, "tokens", source, where)
        for j, token in enumerate(tokens):
            if len(token) != 1:
                raise KlueInputError(
                    source, where, f"tokens[{j}] must be exactly one character, got {token!r}"
                )
        tags: list[int] | None = None
        if labeled:
            tags = common.get_list(row, "ner_tags", source, where)
            if len(tags) != len(tokens):
                raise KlueInputError(source, where, f"{len(tags)} ner_tags for {len(tokens)} tokens")
            for j, tag in enumerate(tags):
                if not common.is_int(tag) or not 0 <= tag < len(NER_LABELS):
                    raise KlueInputError(
                        source, where, f"ner_tags[{j}] = {tag!r} is not a tag id 0..{len(NER_LABELS) - 1}"
                    )
        out.append(NerRecord(guid=f"ner-{i}", text="".join(tokens), tags=tags))
    return common.require_records(out, source)
