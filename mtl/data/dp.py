"""KLUE-DP reader: sentences split into eojeols (words), each with its head and relation.

Official file (TSV): five ``## `` comment lines, then per sentence a header
``## <guid>\\t<raw sentence>``, one row ``INDEX WORD_FORM LEMMA POS HEAD DEPREL`` per word and a blank
line. INDEX must run 1..n in order, HEAD must be an integer in 0..n (0 = root) and DEPREL one of
:data:`mtl.data.labels.DP_DEPRELS`; each violation is an error naming its line. The reader does not
require exactly one root. With ``labeled=False`` a row may stop after POS, and HEAD/DEPREL are ignored.

Truncation: the last sentence of a file with no blank line after it may be a cut-off byte prefix, so
its word count must equal the word count of its header sentence (true of every dev sentence; the
words themselves differ from the header in 7 dev sentences, so only the count is compared). A cut
inside the last row shows up as a missing field, a bad number or an unknown DEPREL; the one cut that
cannot be seen is a DEPREL that ends exactly where a shorter valid label ends (``NP`` of ``NP_SBJ``).

Hub rows: ``{sentence, index, word_form, lemma, pos, head, deprel}`` (lists, ``deprel`` strings). They
carry no guid: record ``i`` gets ``dp-<i>``, whichever split it is read as.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mtl.data import common
from mtl.data.labels import DP_DEPRELS
from mtl.data.records import DpRecord
from mtl.errors import KlueInputError

_DEPREL_IDS = {name: i for i, name in enumerate(DP_DEPRELS)}
_LABELED_FIELDS = 6
_UNLABELED_FIELDS = 4  # INDEX WORD_FORM LEMMA POS


def read(path: str | Path, *, labeled: bool = True, split: str = "dev") -> list[DpRecord]:
    """Read DP records from an official TSV file, a hub export or a ``hub:`` spec."""
    return common.read_task(
        path, task="dp", official_tsv=_from_tsv, from_hub_rows=from_hub_rows, labeled=labeled, split=split
    )


def _int_field(value: str, name: str, path: Path, lineno: int) -> int:
    try:
        return int(value)
    except ValueError:
        raise KlueInputError(path, lineno, f"{name} must be an integer, got {value!r}") from None


def _from_tsv(path: Path, labeled: bool) -> list[DpRecord]:
    allowed = (_LABELED_FIELDS,) if labeled else (_UNLABELED_FIELDS, _LABELED_FIELDS)
    out: list[DpRecord] = []
    for sent in common.read_tsv_sentences(path):
        words: list[str] = []
        lemmas: list[str] = []
        pos: list[str] = []
        heads: list[tuple[int, int]] = []  # (head, line) until n is known
        deprels: list[int] = []
        for lineno, row in sent.rows:
            fields = row.split("\t")
            if len(fields) not in allowed:
                want = " or ".join(map(str, allowed))
                raise KlueInputError(
                    path,
                    lineno,
                    f"expected {want} tab-separated fields (INDEX WORD_FORM LEMMA POS HEAD DEPREL), got {len(fields)}",
                )
            index = _int_field(fields[0], "INDEX", path, lineno)
            if index != len(words) + 1:
                raise KlueInputError(path, lineno, f"INDEX {index} out of order: expected {len(words) + 1}")
            if not fields[1]:
                raise KlueInputError(path, lineno, "WORD_FORM is empty")
            words.append(fields[1])
            lemmas.append(fields[2])
            pos.append(fields[3])
            if labeled:
                heads.append((_int_field(fields[4], "HEAD", path, lineno), lineno))
                deprel = _DEPREL_IDS.get(fields[5])
                if deprel is None:
                    raise KlueInputError(path, lineno, f"unknown DEPREL {fields[5]!r}")
                deprels.append(deprel)
        if not sent.terminated and len(sent.sentence.split()) != len(words):
            raise KlueInputError(
                path,
                sent.rows[-1][0],
                f"sentence {sent.guid!r} is cut off at the end of the file: {len(words)} word rows for a header "
                f"sentence of {len(sent.sentence.split())} words; the file looks truncated",
            )
        for head, lineno in heads:
            if not 0 <= head <= len(words):
                raise KlueInputError(path, lineno, f"HEAD {head} is out of range 0..{len(words)}")
        out.append(
            DpRecord(
                guid=sent.guid,
                sentence=sent.sentence,
                words=words,
                lemmas=lemmas,
                pos=pos,
                heads=[h for h, _ in heads] if labeled else None,
                deprels=deprels if labeled else None,
            )
        )
    return out


def from_hub_rows(
    rows: Iterable[Mapping[str, Any]], *, source: str, labeled: bool = True, split: str = "dev"
) -> list[DpRecord]:
    """Turn hub-schema rows into records with guids ``dp-<index>`` (the same for any split, so predict and score agree)."""
    out: list[DpRecord] = []
    for i, row in enumerate(common.as_row_list(rows)):
        where = f"#{i}"
        row = common.as_mapping(row, source, where)
        words = common.get_str_list(row, "word_form", source, where)
        n = len(words)
        index = _same_length(row, "index", n, source, where)
        if index != list(range(1, n + 1)):
            raise KlueInputError(source, where, f"index must run 1..{n} in order")
        lemmas = _same_length(row, "lemma", n, source, where, strings=True)
        pos = _same_length(row, "pos", n, source, where, strings=True)
        heads: list[int] | None = None
        deprels: list[int] | None = None
        if labeled:
            heads = _same_length(row, "head", n, source, where)
            for j, head in enumerate(heads):
                if not common.is_int(head) or not 0 <= head <= n:
                    raise KlueInputError(source, where, f"head[{j}] = {head!r} is not a word index 0..{n}")
            deprels = []
            for j, name in enumerate(_same_length(row, "deprel", n, source, where, strings=True)):
                if name not in _DEPREL_IDS:
                    raise KlueInputError(source, where, f"deprel[{j}] {name!r} is not a known DEPREL")
                deprels.append(_DEPREL_IDS[name])
        out.append(
            DpRecord(
                guid=f"dp-{i}",
                sentence=common.get_str(row, "sentence", source, where),
                words=words,
                lemmas=lemmas,
                pos=pos,
                heads=heads,
                deprels=deprels,
            )
        )
    return common.require_records(out, source)


def _same_length(
    row: Mapping[str, Any], key: str, n: int, source: str, where: str, *, strings: bool = False
) -> list[Any]:
    values = (
        common.get_str_list(row, key, source, where) if strings else common.get_list(row, key, source, where)
    )
    if len(values) != n:
        raise KlueInputError(source, where, f"{key} has {len(values)} items for {n} words")
    return list(values)
