"""WoS samples: invented task-oriented dialogues with cumulative belief states, plus their ontology.

A dialogue visits one or two domains. Each domain has a fixed sequence of steps (search, extra
conditions, booking); each step is a user utterance, the slots it sets and a system reply. A user
turn's state is everything set so far, written ``domain-slot-value``. Conditions are phrased
consistently ("상관없어요" -> dontcare, "...가능한 곳" -> yes, "...안 되는 곳" -> no) and values appear
verbatim in the dialogue, so a small model can learn them.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from mtl.samples.generators.common import attach, dump_json, particle, rng_for

# The 45 domain-slots of the KLUE WoS ontology (schema names, in the release's order).
SLOTS: tuple[str, ...] = (
    "관광-경치 좋은", "관광-교육적", "관광-도보 가능", "관광-문화 예술", "관광-역사적", "관광-이름", "관광-종류",
    "관광-주차 가능", "관광-지역", "숙소-가격대", "숙소-도보 가능", "숙소-수영장 유무", "숙소-스파 유무",
    "숙소-예약 기간", "숙소-예약 명수", "숙소-예약 요일", "숙소-이름", "숙소-인터넷 가능", "숙소-조식 가능",
    "숙소-종류", "숙소-주차 가능", "숙소-지역", "숙소-헬스장 유무", "숙소-흡연 가능", "식당-가격대", "식당-도보 가능",
    "식당-야외석 유무", "식당-예약 명수", "식당-예약 시간", "식당-예약 요일", "식당-이름", "식당-인터넷 가능",
    "식당-종류", "식당-주류 판매", "식당-주차 가능", "식당-지역", "식당-흡연 가능", "지하철-도착지", "지하철-출발 시간",
    "지하철-출발지", "택시-도착 시간", "택시-도착지", "택시-종류", "택시-출발 시간", "택시-출발지",
)  # fmt: skip
# Slots whose only values are yes/no (besides none/dontcare).
BOOLEAN_SLOTS: frozenset[str] = frozenset(
    slot
    for slot in SLOTS
    if slot.endswith(("가능", "유무", "좋은", "교육적", "문화 예술", "역사적", "주류 판매"))
)

REGIONS = ("서울 동쪽", "서울 서쪽", "서울 남쪽", "서울 북쪽", "서울 중앙")
DAYS = ("월요일", "화요일", "수요일", "목요일", "금요일", "토요일", "일요일")
PRICE_PHRASES = {
    "저렴": "가격은 저렴했으면 좋겠어요.",
    "적당": "가격은 적당한 곳으로 부탁해요.",
    "비싼": "조금 비싼 곳이어도 괜찮아요.",
    "dontcare": "가격대는 아무래도 상관없어요.",
}
LODGING_NAMES = {
    "호텔": ("하늘정원", "달빛마루"),
    "게스트 하우스": ("솔바람", "별채움"),
    "호스텔": ("구름다리",),
    "모텔": ("푸른언덕",),
}
RESTAURANTS = {
    "한식당": ("소반", "고운밥상"),
    "양식당": ("라온 키친", "올리브 식탁"),
    "일식당": ("하루 초밥", "모리 우동"),
    "중식당": ("홍매반점", "용궁각"),
    "분식집": ("맛나 분식", "꼬마김밥"),
}
ATTRACTIONS = {
    "박물관": ("한빛 역사 박물관", "바다 생물 박물관"),
    "공원": ("솔숲 공원", "달맞이 공원"),
    "놀이공원": ("꿈나라 랜드",),
    "동물원": ("초록 동물원",),
    "쇼핑": ("별빛 쇼핑 거리",),
}
STATIONS = ("푸른숲역", "달빛역", "한강나루역", "새터역", "은행골역", "꽃마을역")
TAXI_KINDS = {
    "고급": "고급 택시로 불러 주세요.",
    "에코": "에코 택시면 좋겠어요.",
    "dontcare": "택시 종류는 아무래도 상관없어요.",
}
# (slot, value) -> the user's way of asking for it.
CONDITIONS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "숙소": (
        ("주차 가능", "yes", "차를 가져가서 주차가 가능한 곳이면 좋겠어요."),
        ("인터넷 가능", "yes", "와이파이도 꼭 돼야 해요."),
        ("조식 가능", "yes", "아침 식사가 나오는 곳으로 부탁해요."),
        ("흡연 가능", "no", "담배 냄새가 싫어서 흡연이 안 되는 곳이면 좋겠어요."),
        ("수영장 유무", "yes", "수영장이 있는 곳을 원해요."),
    ),
    "식당": (
        ("주류 판매", "yes", "술도 함께 마실 수 있는 곳이면 좋겠어요."),
        ("야외석 유무", "yes", "바깥 자리가 있는 곳이면 더 좋고요."),
        ("주차 가능", "yes", "차를 가져가서 주차가 가능한 곳이면 좋겠어요."),
        ("흡연 가능", "no", "아이와 함께 가니까 흡연이 안 되는 곳이어야 해요."),
    ),
    "관광": (
        ("경치 좋은", "yes", "경치가 좋은 곳이면 좋겠어요."),
        ("교육적", "yes", "아이들에게 교육적인 곳이면 더 좋고요."),
        ("역사적", "yes", "역사적인 의미가 있는 곳이면 좋겠어요."),
        ("주차 가능", "yes", "차를 가져가서 주차가 가능한 곳이면 좋겠어요."),
    ),
}


@dataclass
class Dialogue:
    """The state of one dialogue being generated: its turns and what has been agreed so far."""

    rng: random.Random
    turns: list[dict] = field(default_factory=list)
    state: dict[str, str] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)  # domain -> the place the system proposed
    domains: list[str] = field(default_factory=list)

    def say(self, user: str, system: str, **updates: str) -> None:
        """Add a user turn (with its cumulative state) and the system's reply."""
        self.state.update(updates)
        order = {slot: i for i, slot in enumerate(SLOTS)}
        items = sorted(self.state.items(), key=lambda item: order[item[0]])
        self.turns.append(
            {"role": "user", "text": user, "state": [f"{slot}-{value}" for slot, value in items]}
        )
        self.turns.append({"role": "sys", "text": system})

    def user_turns(self) -> int:
        return sum(turn["role"] == "user" for turn in self.turns)


def _time(rng: random.Random) -> str:
    return f"{rng.randint(9, 21):02d}:{rng.choice((0, 10, 20, 30, 40, 50)):02d}"


def _condition(d: Dialogue, domain: str) -> None:
    slot, value, text = d.rng.choice(CONDITIONS[domain])
    name = d.names[domain]
    d.say(text, f"네, {attach(name, '은')} 그 조건에 맞는 곳이에요.", **{f"{domain}-{slot}": value})


def _lodging(d: Dialogue, steps: int) -> None:
    rng = d.rng
    region, kind = rng.choice(REGIONS), rng.choice(tuple(LODGING_NAMES))
    price = rng.choice(tuple(PRICE_PHRASES))
    name = f"{rng.choice(LODGING_NAMES[kind])} {kind}"
    d.names["숙소"] = name
    d.say(
        f"{region}에 있는 {attach(kind, '을')} 찾고 있어요. {PRICE_PHRASES[price]}",
        f"{region}에는 {attach(name, '이')} 있어요. 평점은 {rng.randint(3, 4)}.{rng.randint(0, 9)}점이에요.",
        **{"숙소-지역": region, "숙소-종류": kind, "숙소-가격대": price},
    )
    if steps >= 2:
        _condition(d, "숙소")
    if steps >= 3:
        day, nights, people = rng.choice(DAYS), str(rng.randint(1, 5)), str(rng.randint(1, 6))
        d.say(
            f"그럼 {name}{particle(name, '으로')} {day}부터 {nights}일 동안 {people}명 예약해 주세요.",
            f"예약을 마쳤습니다. 예약 번호는 {rng.choice('ABCDEFGH')}{rng.randint(1000, 9999)}입니다.",
            **{"숙소-이름": name, "숙소-예약 요일": day, "숙소-예약 기간": nights, "숙소-예약 명수": people},
        )


def _restaurant(d: Dialogue, steps: int) -> None:
    rng = d.rng
    region, kind = rng.choice(REGIONS), rng.choice(tuple(RESTAURANTS))
    price = rng.choice(tuple(PRICE_PHRASES))
    name = rng.choice(RESTAURANTS[kind])
    d.names["식당"] = name
    d.say(
        f"{region}에서 {attach(kind, '을')} 찾고 있어요. {PRICE_PHRASES[price]}",
        f"{attach(name, '은')} 어떠세요? {region}에 있는 {kind}이에요.",
        **{"식당-지역": region, "식당-종류": kind, "식당-가격대": price},
    )
    if steps >= 2:
        _condition(d, "식당")
    if steps >= 3:
        day, time, people = rng.choice(DAYS), _time(rng), str(rng.randint(2, 8))
        d.say(
            f"좋아요. {name}에 {day} {time}에 {people}명으로 예약해 주세요.",
            f"예약을 마쳤습니다. 예약 번호는 {rng.choice('JKLMNPQR')}{rng.randint(1000, 9999)}입니다.",
            **{"식당-이름": name, "식당-예약 요일": day, "식당-예약 시간": time, "식당-예약 명수": people},
        )


def _attraction(d: Dialogue, steps: int) -> None:
    rng = d.rng
    kind = rng.choice(tuple(ATTRACTIONS))
    name = rng.choice(ATTRACTIONS[kind])
    d.names["관광"] = name
    if rng.random() < 0.3:
        d.say(
            f"{attach(kind, '을')} 하나 추천해 주세요. 지역은 아무래도 상관없어요.",
            f"{attach(name, '을')} 추천드려요. 많은 분이 찾는 곳이에요.",
            **{"관광-종류": kind, "관광-지역": "dontcare"},
        )
    else:
        region = rng.choice(REGIONS)
        d.say(
            f"{region}에 있는 {attach(kind, '을')} 추천해 주세요.",
            f"{region}에 있는 {attach(name, '을')} 추천드려요.",
            **{"관광-종류": kind, "관광-지역": region},
        )
    if steps >= 2:
        _condition(d, "관광")
    if steps >= 3:
        d.say(
            f"그럼 {name} 입장료랑 운영 시간 좀 알려 주세요.",
            f"입장료는 {rng.choice((3000, 5000, 8000))}원이고 오전 9시부터 오후 6시까지 열어요.",
            **{"관광-이름": name},
        )


def _taxi(d: Dialogue, steps: int) -> None:
    rng = d.rng
    places = [name for domain, name in d.names.items() if domain in ("숙소", "관광", "식당")]
    origin = places[-1] if places else rng.choice(STATIONS)
    destination = rng.choice([s for s in STATIONS if s != origin])
    d.say(
        f"{origin}에서 {destination}까지 택시를 타고 가고 싶어요.",
        "출발 시간을 알려 주시겠어요?",
        **{"택시-출발지": origin, "택시-도착지": destination},
    )
    if steps >= 2:
        time, kind = _time(rng), rng.choice(tuple(TAXI_KINDS))
        d.say(
            f"{time}에 출발할게요. {TAXI_KINDS[kind]}",
            f"택시를 예약했어요. 차량 번호는 {rng.randint(10, 99)}가 {rng.randint(1000, 9999)}입니다.",
            **{"택시-출발 시간": time, "택시-종류": kind},
        )


def _subway(d: Dialogue, steps: int) -> None:
    rng = d.rng
    origin, destination = rng.sample(STATIONS, 2)
    d.say(
        f"{origin}에서 {destination}까지 지하철로 가려고 해요.",
        "몇 시쯤 출발하실 건가요?",
        **{"지하철-출발지": origin, "지하철-도착지": destination},
    )
    if steps >= 2:
        time = _time(rng)
        d.say(
            f"{time}쯤 출발할 거예요.",
            f"{time}에 출발하면 {rng.randint(12, 40)}분 정도 걸려요.",
            **{"지하철-출발 시간": time},
        )


DOMAIN_STEPS: dict[str, tuple[Callable[[Dialogue, int], None], int]] = {
    "숙소": (_lodging, 3),
    "식당": (_restaurant, 3),
    "관광": (_attraction, 3),
    "택시": (_taxi, 2),
    "지하철": (_subway, 2),
}
PLANS: tuple[tuple[str, ...], ...] = (
    ("숙소",), ("식당",), ("관광",), ("숙소", "택시"), ("관광", "식당"),
    ("식당", "지하철"), ("관광", "택시"), ("숙소", "식당"), ("지하철", "숙소"),
)  # fmt: skip
CLOSINGS = (
    "덕분에 필요한 건 다 알아봤어요.",
    "이제 다 됐어요, 그럼 이만 끊을게요.",
    "네, 잘 알겠어요. 도움 주셔서 고마워요.",
)
TRAIN_DIALOGUES = 24
DEV_DIALOGUES = 12


def _dialogue(rng: random.Random, plan: tuple[str, ...]) -> Dialogue:
    d = Dialogue(rng=rng)
    for position, domain in enumerate(plan):
        run, most = DOMAIN_STEPS[domain]
        # The first domain goes further (2..all steps); a second one is often shorter.
        least = 2 if position == 0 else 1
        d.domains.append(domain)
        run(d, rng.randint(least, most))
    if d.user_turns() < 3 or (d.user_turns() < 6 and rng.random() < 0.5):
        d.say(rng.choice(CLOSINGS), "이용해 주셔서 고맙습니다. 편안한 하루 보내세요.")
    return d


def records(split: str) -> list[dict]:
    """WoS dialogues of ``split``: 3-6 user turns each, ending with a system turn."""
    rng = rng_for("wos", split)
    count = TRAIN_DIALOGUES if split == "train" else DEV_DIALOGUES
    out = []
    for index in range(count):
        d = _dialogue(rng, PLANS[(index + (0 if split == "train" else 4)) % len(PLANS)])
        out.append({"guid": f"wos-v1_{split}_{index:05d}", "domains": d.domains, "dialogue": d.turns})
    return out


def ontology() -> dict[str, list[str]]:
    """Every slot's values: "none", "dontcare", then the values the train and dev samples use."""
    used: dict[str, set[str]] = {slot: set() for slot in SLOTS}
    for split in ("train", "dev"):
        for dialogue in records(split):
            for turn in dialogue["dialogue"]:
                for item in turn.get("state", []):
                    domain, slot, value = item.split("-", 2)
                    used[f"{domain}-{slot}"].add(value)
    out = {}
    for slot in SLOTS:
        values = {"yes", "no"} if slot in BOOLEAN_SLOTS else set()
        values |= used[slot] - {"none", "dontcare"}
        out[slot] = ["none", "dontcare", *sorted(values)]
    return out


def render(split: str) -> str:
    """The official WoS JSON file of ``split``."""
    return dump_json(records(split))


def render_ontology() -> str:
    """``ontology.json`` for the samples (see :func:`ontology`)."""
    return dump_json(ontology())
