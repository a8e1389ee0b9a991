"""KLUE-MRC reader: one record per question, with its context and gold answers.

Official file: ``{"data": [{title, news_category?, source?, paragraphs: [{context, qas: [{question,
guid, question_type?, is_impossible, answers: [{text, answer_start}], plausible_answers?}]}]}]}``.

Answer policy (the same for both formats, so an answer is never silently moved or dropped):

* answerable question: at least one answer, and every answer must be non-empty text found at its
  offset, ``context[answer_start:answer_start + len(text)] == text``; else an error naming the guid;
* unanswerable question: ``answers`` must be empty in the official file (an error otherwise);
* plausible answers of unanswerable questions are kept as given and NOT validated: in v1 their offsets
  are off by up to 20 characters. They are for reference only and never a training target.

Hub rows (one per question): ``{title, context, question, guid, is_impossible, question_type,
answers: {answer_start: [...], text: [...]}, news_category, source}``. The hub loader stripped
``context``, ``question`` and each answer ``text`` without shifting ``answer_start``, and put the
plausible answers of an unanswerable question into ``answers``. So for an unanswerable hub row the
answers become ``plausible_answers`` and ``answers`` is ``[]``; for an answerable one each answer is
looked up at its offset and, failing that, at the nearest place within ``HUB_OFFSET_SLACK`` characters
of it, and its ``start`` is set to where the text really is; an answer found nowhere near is an error.

With ``labeled=False`` the gold is not read: ``answers`` and ``plausible_answers`` are ``[]``,
``is_impossible`` is False and ``question_type`` is None (type 3 would give the gold away).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mtl.data import common
from mtl.data.records import Answer, MrcRecord
from mtl.errors import KlueInputError

HUB_OFFSET_SLACK = 20  # characters; covers whitespace the hub loader stripped from context and text


def read(path: str | Path, *, labeled: bool = True, split: str = "dev") -> list[MrcRecord]:
    """Read MRC records from an official file, a hub export or a ``hub:`` spec."""
    return common.read_task(
        path,
        task="mrc",
        official_json=_from_official,
        is_official_doc=lambda doc: isinstance(doc, Mapping) and "data" in doc,
        from_hub_rows=from_hub_rows,
        labeled=labeled,
        split=split,
    )


def _answer_list(items: Any, key: str, path: str | Path, where: str) -> list[Answer]:
    if not isinstance(items, list):
        raise KlueInputError(path, where, f"{key!r} must be a list of {{text, answer_start}}")
    out: list[Answer] = []
    for j, item in enumerate(items):
        obj = common.as_mapping(item, path, where, f"{key}[{j}]")
        out.append(
            Answer(
                text=common.get_str(obj, "text", path, where),
                start=common.get_int(obj, "answer_start", path, where),
            )
        )
    return out


def _check_exact(answers: list[Answer], context: str, path: str | Path, where: str) -> None:
    if not answers:
        raise KlueInputError(path, where, "answerable question (is_impossible false) has no answers")
    for a in answers:
        if not a["text"]:
            raise KlueInputError(path, where, "answer text is empty")
        found = context[a["start"] : a["start"] + len(a["text"])] if a["start"] >= 0 else ""
        if found != a["text"]:
            raise KlueInputError(
                path,
                where,
                f"answer {a['text']!r} is not at answer_start {a['start']} (context has {found!r} there)",
            )


def _question(
    qa: Mapping[str, Any], title: str, context: str, path: Path, where: str, labeled: bool
) -> MrcRecord:
    record = MrcRecord(
        guid=common.get_str(qa, "guid", path, where),
        title=title,
        context=context,
        question=common.get_str(qa, "question", path, where),
        answers=[],
        is_impossible=False,
        plausible_answers=[],
        question_type=None,
    )
    if not labeled:
        return record
    record["is_impossible"] = common.get_bool(qa, "is_impossible", path, where)
    record["question_type"] = common.get_optional_int(qa, "question_type", path, where)
    answers = _answer_list(common.get_list(qa, "answers", path, where), "answers", path, where)
    if record["is_impossible"]:
        if answers:
            raise KlueInputError(
                path, where, f"unanswerable question (is_impossible true) has {len(answers)} answers"
            )
        record["plausible_answers"] = _answer_list(
            qa.get("plausible_answers", []), "plausible_answers", path, where
        )
    else:
        _check_exact(answers, context, path, where)
        record["answers"] = answers
    return record


def _from_official(data: Any, path: Path, labeled: bool) -> list[MrcRecord]:
    articles = common.get_list(data, "data", path, None)
    guids = common.GuidSet(path)
    out: list[MrcRecord] = []
    for a, article in enumerate(articles):
        at = f"data[{a}]"
        article = common.as_mapping(article, path, at)
        title = common.get_str(article, "title", path, at)
        for p, paragraph in enumerate(common.get_list(article, "paragraphs", path, at)):
            at_p = f"{at}.paragraphs[{p}]"
            paragraph = common.as_mapping(paragraph, path, at_p)
            context = common.get_str(paragraph, "context", path, at_p)
            for q, qa in enumerate(common.get_list(paragraph, "qas", path, at_p)):
                qa = common.as_mapping(qa, path, f"{at_p}.qas[{q}]")
                guid = qa.get("guid")
                where = guid if isinstance(guid, str) and guid else f"{at_p}.qas[{q}]"
                record = _question(qa, title, context, path, where, labeled)
                guids.add(record["guid"], f"{at_p}.qas[{q}]")
                out.append(record)
    return common.require_records(out, path)


def _relocate(answer: Answer, context: str, source: str, where: str) -> Answer:
    """Find a hub answer at its offset or at the nearest place within the slack."""
    text, start = answer["text"], answer["start"]
    if not text:
        raise KlueInputError(source, where, "answer text is empty")
    if start >= 0 and context[start : start + len(text)] == text:
        return answer
    lo = max(0, start - HUB_OFFSET_SLACK)
    window = context[lo : start + HUB_OFFSET_SLACK + len(text)]
    hits = []
    at = window.find(text)
    while at != -1:
        hits.append(lo + at)
        at = window.find(text, at + 1)
    if not hits:
        raise KlueInputError(
            source,
            where,
            f"answer {text!r} is not within {HUB_OFFSET_SLACK} characters of answer_start {start}",
        )
    return Answer(text=text, start=min(hits, key=lambda h: abs(h - start)))


def _hub_answers(row: Mapping[str, Any], source: str, where: str) -> list[Answer]:
    if "answers" not in row:
        raise KlueInputError(source, where, "missing key 'answers'")
    spans = common.as_mapping(row["answers"], source, where, "'answers'")
    starts = common.get_list(spans, "answer_start", source, where)
    texts = common.get_str_list(spans, "text", source, where)
    if len(starts) != len(texts):
        raise KlueInputError(
            source, where, f"answers has {len(starts)} answer_start values for {len(texts)} texts"
        )
    for s in starts:
        if not common.is_int(s):
            raise KlueInputError(source, where, f"answers.answer_start values must be integers, got {s!r}")
    return [Answer(text=t, start=s) for t, s in zip(texts, starts, strict=True)]


def from_hub_rows(
    rows: Iterable[Mapping[str, Any]], *, source: str, labeled: bool = True, split: str = "dev"
) -> list[MrcRecord]:
    """Turn hub-schema rows (one per question) into records; ``source`` names the input in errors."""
    guids = common.GuidSet(source)
    out: list[MrcRecord] = []
    for i, row in enumerate(common.as_row_list(rows)):
        where = common.locate(row, i, source)
        context = common.get_str(row, "context", source, where)
        record = MrcRecord(
            guid=common.get_str(row, "guid", source, where),
            title=common.get_str(row, "title", source, where),
            context=context,
            question=common.get_str(row, "question", source, where),
            answers=[],
            is_impossible=False,
            plausible_answers=[],
            question_type=None,
        )
        guids.add(record["guid"], f"#{i}")
        if labeled:
            record["is_impossible"] = common.get_bool(row, "is_impossible", source, where)
            record["question_type"] = common.get_optional_int(row, "question_type", source, where)
            answers = _hub_answers(row, source, where)
            if record["is_impossible"]:
                record["plausible_answers"] = answers
            elif not answers:
                raise KlueInputError(
                    source, where, "answerable question (is_impossible false) has no answers"
                )
            else:
                record["answers"] = [_relocate(a, context, source, where) for a in answers]
        out.append(record)
    return common.require_records(out, source)
