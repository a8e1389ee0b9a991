"""KLUE-STS samples: invented sentence families scored by how much of the meaning a pair shares.

Each family has a base sentence, a close paraphrase (scores 4-5), a partial paraphrase that keeps the
topic but changes a detail (about 3), and a sentence on the same topic with a different point
(1-2.5). Pairing a base with another family's base gives unrelated pairs (0-1). Scores are the
mean of seven simulated annotators, as in the release.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from mtl.samples.generators.common import dump_json, rng_for


@dataclass(frozen=True)
class Family:
    source: str  # the release's "<domain>-<method>" source names
    base: str
    close: str
    partial: str
    related: str


FAMILIES: tuple[Family, ...] = (
    Family(
        "airbnb-rtt",
        "숙소가 지하철역과 가까워서 어디든 다니기 편했어요.",
        "숙소에서 지하철역이 가까워 이동하기가 편리했습니다.",
        "숙소가 버스 정류장과 가까워서 다니기는 괜찮았어요.",
        "숙소 근처 지하철역에는 엘리베이터가 없었어요.",
    ),
    Family(
        "airbnb-sampled",
        "침구가 깨끗하고 욕실에 수건이 넉넉하게 있었어요.",
        "이불이 깔끔했고 욕실에는 수건이 충분히 준비되어 있었어요.",
        "침구는 깨끗했지만 욕실 수건은 조금 부족했어요.",
        "욕실 온수가 잘 나오지 않아서 불편했어요.",
    ),
    Family(
        "policy-rtt",
        "정부는 내년부터 어린이 통학 버스에 안전 장치 설치를 의무화한다.",
        "내년부터 어린이 통학 버스는 반드시 안전 장치를 달아야 한다.",
        "정부는 내년부터 어린이 통학 버스 운전자 교육을 강화한다.",
        "어린이 통학 버스 사고는 지난해보다 줄어들었다.",
    ),
    Family(
        "policy-sampled",
        "농촌 지역 청년 창업자에게 최대 삼천만 원의 정착 자금을 지원합니다.",
        "농촌에서 창업하는 청년은 정착 자금을 최대 삼천만 원까지 받을 수 있습니다.",
        "도시 지역 청년 창업자에게 사무실 임대료 일부를 지원합니다.",
        "농촌 지역의 청년 인구는 해마다 줄고 있습니다.",
    ),
    Family(
        "paraKQC-para",
        "내일 오전 회의 시간을 한 시간 늦출 수 있을까요?",
        "내일 아침 회의를 한 시간 뒤로 미뤄도 될까요?",
        "내일 오후 회의 장소를 바꿀 수 있을까요?",
        "내일 회의에서는 무엇을 논의하나요?",
    ),
    Family(
        "paraKQC-sampled",
        "거실 에어컨 온도를 이십삼 도로 맞춰 줘.",
        "거실 에어컨을 이십삼 도에 맞춰 줄래?",
        "안방 에어컨 온도를 이십오 도로 올려 줘.",
        "거실 에어컨 필터는 언제 청소해야 해?",
    ),
    Family(
        "airbnb-rtt",
        "호스트가 맛집 목록을 미리 보내 주어서 여행 준비에 큰 도움이 되었어요.",
        "호스트가 미리 알려 준 맛집 목록 덕분에 여행 준비가 수월했어요.",
        "호스트가 관광지 지도를 보내 주었지만 맛집 정보는 없었어요.",
        "호스트와는 체크아웃할 때 한 번 만났어요.",
    ),
    Family(
        "policy-rtt",
        "올해부터 전기차 충전 요금 할인 혜택이 단계적으로 줄어든다.",
        "전기차 충전 요금 할인은 올해부터 차츰 축소된다.",
        "올해부터 수소차 충전소가 전국에 단계적으로 늘어난다.",
        "전기차 판매량은 지난해 처음으로 십만 대를 넘었다.",
    ),
    Family(
        "paraKQC-para",
        "이번 주 토요일에 비가 올 확률이 얼마나 되나요?",
        "이번 토요일에 비 올 가능성은 어느 정도인가요?",
        "이번 주 일요일 최저 기온은 몇 도인가요?",
        "토요일에 우산을 챙겨야 할까요?",
    ),
    Family(
        "airbnb-sampled",
        "창밖으로 바다가 보여서 아침마다 기분이 좋았어요.",
        "창문 너머로 바다가 보여 매일 아침 기분이 상쾌했어요.",
        "창밖으로 산이 보여서 경치는 괜찮았어요.",
        "바닷가까지 걸어가려면 이십 분 정도 걸려요.",
    ),
    Family(
        "policy-sampled",
        "공공 도서관 열람실 운영 시간을 밤 열한 시까지 연장합니다.",
        "공공 도서관 열람실은 앞으로 밤 열한 시까지 문을 엽니다.",
        "공공 도서관 열람실 좌석을 온라인으로 예약할 수 있습니다.",
        "공공 도서관에 새로 들어온 책은 모두 삼천 권입니다.",
    ),
    Family(
        "paraKQC-sampled",
        "휴대폰 화면 밝기를 조금만 낮춰 줘.",
        "휴대폰 화면을 약간 어둡게 해 줘.",
        "휴대폰 알림 소리를 조금만 낮춰 줘.",
        "휴대폰 배터리가 몇 퍼센트 남았어?",
    ),
)

TRAIN_FAMILIES = 8  # 8 families x 4 pairs = 32 train pairs
# Annotator score ranges per pair kind: every annotator draws an integer in [lo, hi].
SCORE_RANGES: dict[str, tuple[int, int]] = {
    "close": (4, 5),
    "partial": (2, 4),
    "related": (1, 2),
    "unrelated": (0, 1),
}
ANNOTATORS = 7


def _labels(rng: random.Random, kind: str) -> tuple[dict, dict]:
    lo, hi = SCORE_RANGES[kind]
    scores = [rng.randint(lo, hi) for _ in range(ANNOTATORS)]
    real = sum(scores) / ANNOTATORS
    labels = {"label": round(real, 1), "real-label": real, "binary-label": int(real >= 3.0)}
    agreement = ":".join(str(scores.count(v)) for v in range(6))
    annotators = [f"{n:02d}" for n in sorted(rng.sample(range(1, 20), ANNOTATORS))]
    return labels, {"agreement": agreement, "annotators": annotators, "annotations": scores}


def records(split: str) -> list[dict]:
    """STS records of ``split``: four pairs per family (close, partial, related, unrelated)."""
    rng = rng_for("sts", split)
    families = FAMILIES[:TRAIN_FAMILIES] if split == "train" else FAMILIES[TRAIN_FAMILIES:]
    pairs: list[tuple[str, str, str, str]] = []
    for i, family in enumerate(families):
        other = families[(i + 1) % len(families)]
        pairs.append((family.source, family.base, family.close, "close"))
        pairs.append((family.source, family.base, family.partial, "partial"))
        pairs.append((family.source, family.base, family.related, "related"))
        pairs.append((family.source, family.base, other.related, "unrelated"))
    rng.shuffle(pairs)
    out = []
    for index, (source, first, second, kind) in enumerate(pairs):
        if rng.random() < 0.5:  # either order: similarity is symmetric
            first, second = second, first
        labels, annotations = _labels(rng, kind)
        out.append(
            {
                "guid": f"klue-sts-v1_{split}_{index:05d}",
                "source": source,
                "sentence1": first,
                "sentence2": second,
                "labels": labels,
                "annotations": annotations,
            }
        )
    return out


def render(split: str) -> str:
    """The official KLUE-STS JSON file of ``split``."""
    return dump_json(records(split))
