"""KLUE-NLI samples: invented premises, each with one hypothesis per label.

The labels follow one consistent recipe so that a small model can pick it up: an entailed hypothesis
restates part of the premise, a neutral one adds a fact the premise does not mention, and a
contradicting one negates or reverses it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from mtl.data.labels import NLI_LABELS
from mtl.samples.generators.common import attach, dump_json, rng_for


@dataclass(frozen=True)
class Scene:
    source: str
    premise: str
    entailment: str
    neutral: str
    contradiction: str


# {n}: a name, {p}: a place, {k}: a small number. Particles come from the slot's last syllable.
SCENES: tuple[Scene, ...] = (
    Scene(
        "wikitree",
        "{n:은} 주말마다 {p}의 강변에서 자전거를 탄다.",
        "{n:은} 자전거를 탄다.",
        "{n:은} 새 자전거를 사려고 돈을 모으고 있다.",
        "{n:은} 자전거를 탈 줄 모른다.",
    ),
    Scene(
        "airbnb",
        "숙소는 {p} 버스 터미널에서 걸어서 {k}분 거리에 있고 방이 넓어요.",
        "숙소의 방은 넓은 편이에요.",
        "숙소 주인이 매일 아침 직접 빵을 구워 줘요.",
        "숙소는 버스 터미널에서 아주 멀리 떨어져 있어요.",
    ),
    Scene(
        "policy",
        "{p} 시청은 다음 달부터 시내버스 요금을 {k}백 원 올리기로 했다.",
        "다음 달부터 {p}의 시내버스 요금이 오른다.",
        "시민 대부분이 버스 요금 인상에 찬성했다.",
        "다음 달부터 {p}의 시내버스 요금이 내려간다.",
    ),
    Scene(
        "NSMC",
        "배우들 연기는 훌륭했는데 이야기가 너무 길고 지루했다 {k}점 준다",
        "이 영화의 이야기는 지루했다.",
        "이 영화는 극장에서 크게 흥행했다.",
        "배우들의 연기가 형편없었다.",
    ),
    Scene(
        "wikinews",
        "{n:은} 어제 {p}에 있는 도서관에서 소설책 {k}권을 빌렸다.",
        "{n:은} 어제 도서관에 갔다.",
        "{n:은} 빌린 소설책을 하루 만에 모두 읽었다.",
        "{n:은} 어제 도서관에 가지 않았다.",
    ),
    Scene(
        "wikipedia",
        "{p}에는 조선 시대에 지어진 작은 향교가 지금도 남아 있다.",
        "{p}에는 오래된 향교가 있다.",
        "그 향교는 해마다 수많은 관광객이 찾는다.",
        "{p}에 있던 향교는 모두 사라졌다.",
    ),
    Scene(
        "airbnb",
        "체크인은 오후 {k}시부터 가능하고 주차는 건물 뒤편에 무료로 할 수 있어요.",
        "이 숙소는 무료로 주차할 수 있어요.",
        "건물 뒤편 주차장은 항상 자리가 넉넉해요.",
        "이 숙소는 주차 요금을 따로 받아요.",
    ),
    Scene(
        "policy",
        "정부는 올해 청년 {k}만 명에게 월세 지원금을 주기로 했다.",
        "정부가 올해 청년에게 월세를 지원한다.",
        "월세 지원금은 청년들에게 큰 인기를 끌었다.",
        "정부는 올해 청년 월세 지원을 중단했다.",
    ),
)

NAMES = ("김하람", "이도윤", "박서진", "최유나", "정민호", "강예준", "한소율", "윤태린", "오지환", "서나래")
PLACES = ("춘천", "여수", "전주", "포항", "청주", "강릉", "목포", "원주", "군산", "순천")
TRAIN_SCENES = 12  # each scene gives 3 examples (one per label): 36 train
DEV_SCENES = 5  # 15 dev


def _fill(template: str, name: str, place: str, k: int) -> str:
    text = template.replace("{p}", place).replace("{k}", str(k)).replace("{n}", name)
    for pair in ("은", "이", "을"):
        text = text.replace("{n:" + pair + "}", attach(name, pair))
    return text


def _votes(rng: random.Random, gold: str) -> list[str]:
    """Five annotator labels: the author and four validators, gold always the clear majority."""
    votes = [gold] * 5
    if rng.random() < 0.3:
        votes[rng.randint(1, 4)] = rng.choice([label for label in NLI_LABELS if label != gold])
    return votes


def records(split: str) -> list[dict]:
    """NLI records of ``split``; train names its source key ``genre``, dev ``source`` (as in the release)."""
    rng = rng_for("nli", split)
    count = TRAIN_SCENES if split == "train" else DEV_SCENES
    # Train walks the scenes in order (then wraps with new fillers); dev starts elsewhere and uses
    # fillers that train does not, so dev premises are unseen but built the same way.
    offset = 0 if split == "train" else 3
    names = NAMES[:6] if split == "train" else NAMES[6:]
    places = PLACES[:6] if split == "train" else PLACES[6:]
    source_key = "genre" if split == "train" else "source"
    out: list[dict] = []
    for i in range(count):
        scene = SCENES[(i + offset) % len(SCENES)]
        name, place, k = rng.choice(names), rng.choice(places), rng.randint(2, 9)
        premise = _fill(scene.premise, name, place, k)
        for label in NLI_LABELS:
            votes = _votes(rng, label)
            out.append(
                {
                    "guid": "",
                    source_key: scene.source,
                    "premise": premise,
                    "hypothesis": _fill(getattr(scene, label), name, place, k),
                    "gold_label": label,
                    "author": votes[0],
                    "label2": votes[1],
                    "label3": votes[2],
                    "label4": votes[3],
                    "label5": votes[4],
                }
            )
    for index, record in enumerate(out):
        record["guid"] = f"klue-nli-v1_{split}_{index:05d}"
    return out


def render(split: str) -> str:
    """The official KLUE-NLI JSON file of ``split``."""
    return dump_json(records(split))
