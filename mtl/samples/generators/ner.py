"""KLUE-NER samples: invented sentences with entity slots, written as the official character TSV.

A template such as ``"{PS:은} {DT}에 {LC}에서 열린 {OG} 행사에 참석했다."`` is filled from per-type
word lists; ``{PS:은}`` puts the right particle (은/는) after the entity, outside its span, as the
release does (``<경찰:OG>은``). Some entities contain spaces, which carry ``I-`` tags.
"""

from __future__ import annotations

import random
import re

from mtl.samples.generators.common import attach, rng_for, takes_particle

HEADER = (
    "## 토큰, 레이블 구분자 : \\t\n"
    "## 토큰 구분자 : \\n\n"
    "## 문장 구분자 : \\n\\n\n"
    "## 주석 : ##\n"
    "## 컬럼명 : CHAR\tNE_TAG\n"
)

ENTITIES: dict[str, tuple[str, ...]] = {
    "PS": (
        "김하람",
        "이도윤",
        "박서진",
        "최유나",
        "정민호",
        "강예준",
        "한소율",
        "윤태린",
        "오지환",
        "서나래",
    ),
    "LC": (
        "춘천",
        "여수 밤바다 공원",
        "전주",
        "포항 영일대",
        "청주",
        "강릉",
        "목포",
        "제주 서귀포",
        "원주",
        "군산",
    ),
    "OG": (
        "한빛전자",
        "새솔대학교",
        "누리소프트",
        "푸른바다은행",
        "다온제약",
        "미르항공",
        "가람출판사",
        "한결건설",
    ),
    "DT": (
        "지난해 3월",
        "2019년 5월 2일",
        "올해 여름",
        "다음 달 10일",
        "2021년",
        "지난 주말",
        "어제",
        "10월 9일",
    ),
    "TI": ("오후 3시", "새벽 2시 30분", "오전 10시", "밤 9시", "정오", "저녁 7시 반"),
    # Quantities come in kinds so that each template gets a sensible one; all are tagged QT.
    "QT.people": ("3만 명", "120명", "40여 명", "일곱 명", "15명"),
    "QT.times": ("두 차례", "세 번", "열 번", "다섯 번"),
    "QT.money": ("300억 원", "5천만 원", "20억 원"),
    "QT.distance": ("5㎞", "12㎞", "300m", "40㎞"),
}

TEMPLATES: tuple[tuple[str, str], ...] = (
    ("wikitree", "{PS:은} {DT} {LC}에서 열린 {OG} 행사에 참석했다."),
    ("wikitree", "{OG:은} {DT} {LC}에 새 연구소를 열고 직원 {QT.people:을} 뽑는다고 밝혔다."),
    ("wikitree", "{DT} {TI}쯤 {LC}의 한 상가에서 불이 나 {QT.people:이} 대피했다."),
    ("nsmc", "{PS} 배우 연기 때문에 {QT.times} 다시 봤어요"),
    ("wikipedia", "{PS:은} {LC}에서 태어나 {OG}에서 일했다."),
    ("wikitree", "{OG} 관계자는 {DT} {TI}부터 {LC} 일대에서 점검을 한다고 말했다."),
    ("nsmc", "{DT} {TI}에 본 영화 중 최고였다 {PS} 최고"),
    ("wikipedia", "{LC:은} {OG:이} 처음 문을 연 곳으로 알려져 있다."),
    ("wikitree", "{PS} 대표는 {DT} {OG} 주주총회에서 {QT.money}의 투자를 발표했다."),
    ("wikitree", "{LC}에서 {TI}에 출발한 버스는 {QT.distance} 남짓 달려 {LC}에 도착했다."),
)
TRAIN_SENTENCES = 32
DEV_SENTENCES = 16
_SLOT = re.compile(r"\{((PS|LC|OG|DT|TI|QT)(?:\.[a-z]+)?)(?::([^}]+))?\}")


def _sentence(rng: random.Random, template: str) -> tuple[str, list[tuple[str, str]]]:
    """Fill ``template``: the annotated sentence and its (character, tag) rows."""
    annotated: list[str] = []
    rows: list[tuple[str, str]] = []
    used: set[str] = set()

    def plain(text: str) -> None:
        annotated.append(text)
        rows.extend((char, "O") for char in text)

    position = 0
    for match in _SLOT.finditer(template):
        plain(template[position : match.start()])
        pool, kind, josa = match.group(1), match.group(2), match.group(3)
        value = rng.choice([v for v in ENTITIES[pool] if v not in used and (not josa or takes_particle(v))])
        used.add(value)
        annotated.append(f"<{value}:{kind}>")
        rows.extend((char, ("B-" if i == 0 else "I-") + kind) for i, char in enumerate(value))
        if josa:
            plain(attach(value, josa)[len(value) :])
        position = match.end()
    plain(template[position:])
    return "".join(annotated), rows


def sentences(split: str) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """``(guid, annotated sentence, rows)`` for every sentence of ``split``."""
    rng = rng_for("ner", split)
    count = TRAIN_SENTENCES if split == "train" else DEV_SENTENCES
    out = []
    # Dev never repeats a train sentence, so dev scores measure more than memorisation.
    seen = set() if split == "train" else {annotated for _, annotated, _ in sentences("train")}
    index = 0
    while len(out) < count:
        source, template = TEMPLATES[(index + (0 if split == "train" else 5)) % len(TEMPLATES)]
        annotated, rows = _sentence(rng, template)
        index += 1
        if annotated in seen:
            continue
        seen.add(annotated)
        out.append((f"klue-ner-v1_{split}_{len(out):05d}-{source}", annotated, rows))
    return out


def render(split: str) -> str:
    """The official NER TSV: 5 header lines, then per sentence a ``##`` line, char rows, a blank line."""
    blocks = [HEADER]
    for guid, annotated, rows in sentences(split):
        lines = [f"## {guid}\t{annotated}"] + [f"{char}\t{tag}" for char, tag in rows]
        blocks.append("\n".join(lines) + "\n\n")
    return "".join(blocks)
