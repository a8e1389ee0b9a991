"""The plain records every reader produces, whatever the source format.

These TypedDicts are the contract between readers (files -> records), featurizers
(records -> token ids) and scoring (records -> gold units). Label fields hold ids in the order of
:mod:`mtl.data.labels`. ``label`` fields are ``None`` when the input carries no gold (``labeled=False``).
"""

from __future__ import annotations

from typing import TypedDict


class YnatRecord(TypedDict):
    guid: str
    title: str
    label: int | None


class NliRecord(TypedDict):
    guid: str
    source: str  # official train says "genre", dev says "source": both land here
    premise: str
    hypothesis: str
    label: int | None


class StsRecord(TypedDict):
    guid: str
    source: str
    sentence1: str
    sentence2: str
    score: float | None  # "real-label": the regression target and the Pearson gold
    label: float | None  # rounded to one decimal
    binary: int | None  # 1 iff real-label >= 3.0


class NerRecord(TypedDict):
    guid: str  # official guid, or "ner-<index>" for hub rows (any split)
    text: str  # the plain sentence: one entry per character, spaces included
    tags: list[int] | None  # one NER_LABELS id per character of text


class Entity(TypedDict):
    word: str
    start: int  # character offset into the sentence
    end: int  # INCLUSIVE, as in KLUE: sentence[start:end + 1] == word
    type: str


class ReRecord(TypedDict):
    guid: str
    sentence: str
    subject: Entity
    object: Entity
    label: int | None
    source: str


class DpRecord(TypedDict):
    guid: str  # official guid, or "dp-<index>" for hub rows (any split)
    sentence: str
    words: list[str]  # eojeols
    lemmas: list[str]
    pos: list[str]  # "+"-joined morpheme tags per word, e.g. "NNG+JKS"
    heads: list[int] | None  # 1-based head per word, 0 = root
    deprels: list[int] | None  # DP_DEPRELS ids


class Answer(TypedDict):
    text: str
    start: int


class MrcRecord(TypedDict):
    guid: str
    title: str
    context: str
    question: str
    answers: list[Answer]  # every acceptable gold answer; [] when unanswerable
    is_impossible: bool
    plausible_answers: list[Answer]  # kept for reference only; never a training target
    question_type: int | None


class WosTurn(TypedDict):
    role: str  # "user" | "sys"
    text: str
    state: list[str] | None  # cumulative "domain-slot-value" items; None on system turns


class WosRecord(TypedDict):
    guid: str
    domains: list[str]
    dialogue: list[WosTurn]
