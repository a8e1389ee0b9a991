"""KLUE-RE samples: one invented sentence frame per relation, filled with typed entities.

Each frame marks the subject ``{S}`` and the object ``{O}`` (``{S:은}`` adds a particle outside
the span). Offsets are recorded while the sentence is built, with KLUE's inclusive end index:
``sentence[start_idx:end_idx + 1] == word``.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from mtl.samples.generators.common import SpanText, attach, dump_json, rng_for


@dataclass(frozen=True)
class Frame:
    label: str
    subject_type: str
    object_type: str
    text: str
    object_pool: str = ""  # word list of the object when it is not the type's own list


ENTITIES: dict[str, tuple[str, ...]] = {
    "PER": (
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
        "문가온",
        "배시우",
    ),
    "ORG": ("한빛전자", "누리소프트", "푸른바다은행", "다온제약", "미르항공", "가람출판사", "한결건설"),
    "SCHOOL": ("새솔대학교", "한별고등학교", "바른대학교", "솔빛예술고등학교"),
    "LOC": ("춘천", "여수", "전주", "포항", "청주", "강릉", "목포", "원주"),
    "DAT": ("1987년 4월 3일", "1992년", "2005년 11월", "1978년 6월 21일", "2011년", "1999년 2월"),
    "POH": ("소설가", "피아니스트", "외교관", "영화감독", "건축가", "성악가"),
    "NOH": ("1,200명", "340명", "5천여 명", "86명"),
}
# Organisations' short names, for org:alternate_names.
SHORT_NAMES: dict[str, str] = {
    "한빛전자": "한빛", "누리소프트": "누리", "푸른바다은행": "푸른은행",
    "다온제약": "다온", "미르항공": "미르", "가람출판사": "가람", "한결건설": "한결",
}  # fmt: skip

FRAMES: tuple[Frame, ...] = (
    Frame("org:founded", "ORG", "DAT", "{S:은} {O}에 설립되어 지금까지 같은 자리를 지키고 있다."),
    Frame("org:place_of_headquarters", "ORG", "LOC", "{S:은} 본사를 {O}에 두고 있다."),
    Frame("org:top_members/employees", "ORG", "PER", "{O:은} 지난달 {S}의 대표이사로 선임되었다."),
    Frame("org:alternate_names", "ORG", "ORG", "{S}(약칭 {O})는 올해 창립 기념식을 열었다."),
    Frame("org:number_of_employees/members", "ORG", "NOH", "{S}의 임직원 수는 {O}에 이른다."),
    Frame("per:date_of_birth", "PER", "DAT", "{S:은} {O}에 태어났다."),
    Frame("per:place_of_birth", "PER", "LOC", "{O}에서 태어난 {S:은} 어린 시절을 바닷가에서 보냈다."),
    Frame("per:employee_of", "PER", "ORG", "{S:은} {O}에서 연구원으로 일하고 있다."),
    Frame("per:schools_attended", "PER", "ORG", "{S:은} {O:을} 졸업한 뒤 곧바로 유학을 떠났다.", "SCHOOL"),
    Frame("per:spouse", "PER", "PER", "{S:은} 남편 {O:와} 함께 작은 서점을 운영한다."),
    Frame("per:parents", "PER", "PER", "{S:은} 아버지 {O}의 뒤를 이어 가업을 물려받았다."),
    Frame("per:title", "PER", "POH", "{O} {S:은} 이번 공연을 끝으로 잠시 활동을 쉰다."),
    Frame("per:origin", "PER", "LOC", "{O} 출신인 {S:은} 고향 이야기를 자주 꺼낸다."),
    Frame("no_relation", "PER", "ORG", "{S:은} 출장길에 우연히 {O}의 광고판을 보았다."),
    Frame("no_relation", "ORG", "LOC", "{S}의 직원들은 휴가철에 {O}{로} 여행을 떠났다."),
    Frame("no_relation", "PER", "PER", "{S:은} 기차에서 {O}의 옆자리에 앉았다."),
)
SOURCES = ("wikipedia", "wikitree", "policy_briefing")
# Each relation appears this many times in train (no_relation: once per frame, so three times x 2).
TRAIN_PER_FRAME = 2
DEV_PER_FRAME = 1
_SLOT = re.compile(r"\{([SO])(?::([^}]+))?\}|\{로\}")


def _entity(start: int, word: str, kind: str) -> dict:
    return {"word": word, "start_idx": start, "end_idx": start + len(word) - 1, "type": kind}


def _fill(rng: random.Random, frame: Frame) -> dict:
    subject = rng.choice(ENTITIES[frame.subject_type])
    if frame.label == "org:alternate_names":
        obj = SHORT_NAMES[subject]
    else:
        obj = rng.choice([w for w in ENTITIES[frame.object_pool or frame.object_type] if w != subject])
    words = {"S": subject, "O": obj}
    built = SpanText()
    position = 0
    previous = ""
    for match in _SLOT.finditer(frame.text):
        built.add(frame.text[position : match.start()])
        if match.group(0) == "{로}":  # particle after the preceding slot's word
            built.add(attach(previous, "로")[len(previous) :])
        else:
            role, josa = match.group(1), match.group(2)
            previous = words[role]
            built.add(previous, name=role)
            if josa:
                built.add(attach(previous, josa)[len(previous) :])
        position = match.end()
    built.add(frame.text[position:])
    (s_start, s_word), (o_start, o_word) = built.spans["S"], built.spans["O"]
    return {
        "sentence": built.text,
        "subject_entity": _entity(s_start, s_word, frame.subject_type),
        "object_entity": _entity(o_start, o_word, frame.object_type),
        "label": frame.label,
    }


def records(split: str) -> list[dict]:
    """RE records of ``split`` in the official key order."""
    rng = rng_for("re", split)
    per_frame = TRAIN_PER_FRAME if split == "train" else DEV_PER_FRAME
    filled: list[dict] = []
    # Dev never repeats a train sentence, so dev scores measure more than memorisation.
    seen = set() if split == "train" else {record["sentence"] for record in records("train")}
    for frame in FRAMES:
        made = 0
        while made < per_frame:
            record = _fill(rng, frame)
            if record["sentence"] in seen:
                continue
            seen.add(record["sentence"])
            filled.append(record)
            made += 1
    rng.shuffle(filled)
    return [
        {"guid": f"klue-re-v1_{split}_{index:05d}", **record, "source": rng.choice(SOURCES)}
        for index, record in enumerate(filled)
    ]


def render(split: str) -> str:
    """The official KLUE-RE JSON file of ``split``."""
    return dump_json(records(split))
