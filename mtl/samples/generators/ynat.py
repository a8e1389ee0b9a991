"""YNAT samples: invented news headlines, seven per topic, each built around its topic's keywords."""

from __future__ import annotations

import random

from mtl.data.labels import YNAT_LABELS
from mtl.samples.generators.common import dump_json, rng_for

# Seven headlines per topic; five go to train and two to dev. Each topic keeps its own vocabulary
# (반도체/인공지능, 환율/수출, 경찰/법원, ...) so a small model can learn the topic from the words.
HEADLINES: dict[str, tuple[str, ...]] = {
    "IT과학": (
        "한빛전자, 인공지능 반도체 시제품 첫 공개",
        "누리소프트 스마트폰 앱 보안 취약점 긴급 수정",
        "새솔대 연구진, 달 탐사 로봇 주행 시험 성공",
        "차세대 인공지능 번역기 정확도 두 배로 높여",
        "우주 망원경으로 찾은 새 행성…물 흔적 확인",
        "가정용 로봇 청소기에 인공지능 음성 인식 탑재",
        "반도체 설계 자동화 프로그램 국내 연구진이 개발",
    ),
    "경제": (
        "원·달러 환율 석 달 만에 1,300원 아래로",
        "수출 실적 넉 달 연속 증가…반도체가 견인",
        "소비자 물가 상승률 2%대로 내려와",
        "기준금리 동결에 대출 금리 하락세 주춤",
        "중소기업 수출 지원 예산 3천억 원 늘린다",
        "코스피 외국인 매수에 사흘째 상승 마감",
        "아파트 거래량 줄고 전셋값 소폭 하락",
    ),
    "사회": (
        "경찰, 새벽 음주운전 특별 단속 한 달간 실시",
        "지방법원, 보이스피싱 조직원에 징역 4년 선고",
        "초등학교 등굣길 교통안전 점검 나선 구청",
        "소방 당국 “공장 화재 원인 전기 합선 추정”",
        "폭염 속 야외 노동자 쉼터 운영 확대",
        "경찰, 전세 사기 혐의 일당 12명 검거",
        "법원 “층간소음 보복은 손해배상 책임 있다”",
    ),
    "생활문화": (
        "봄꽃 축제 주말 개막…가족 단위 나들이객 북적",
        "국립 미술관 조선 백자 특별전 다음 달 개막",
        "주말 날씨 맑고 포근…일교차 커 건강 유의",
        "신간 소설 ‘바람의 정원’ 출간 한 달 만에 10쇄",
        "전통 시장 먹거리 골목 야시장으로 새 단장",
        "겨울 축제 눈썰매장 개장…입장료 무료",
        "주말 날씨 전국에 비…산간 지역은 눈",
    ),
    "세계": (
        "美 대통령, 유럽 순방 마치고 귀국",
        "유엔 총회서 기후 위기 공동 대응 결의안 채택",
        "日 총리 “이웃 나라와 관계 개선 노력”",
        "中 외교부 “무역 분쟁 대화로 풀어야”",
        "유럽연합, 탄소 국경세 단계적 도입 합의",
        "美 중앙은행 금리 동결…“물가 더 지켜볼 것”",
        "유엔 “아프리카 식량 위기 심각”…긴급 지원 호소",
    ),
    "스포츠": (
        "프로야구 한빛 이글스, 9회 역전승으로 3연승",
        "축구 대표팀 평가전 2-0 완승…새 공격수 데뷔골",
        "여자배구 정규리그 1위 확정…챔피언전 직행",
        "프로야구 개막전 매진…관중 2만 명 몰려",
        "축구 대표팀 감독 “월드컵 예선 총력전”",
        "양궁 국가대표 선발전서 고교생 깜짝 1위",
        "여자배구 대표팀 올림픽 예선 첫 경기 승리",
    ),
    "정치": (
        "국회 본회의서 추경 예산안 통과",
        "여야 원내대표 회동…법안 처리 일정 합의",
        "국회 상임위, 지방 교육 예산 놓고 공방",
        "與 “민생 법안 이달 안 처리”…野 “졸속 반대”",
        "지방선거 후보 등록 마감…평균 경쟁률 2.1대 1",
        "국무총리 “부처 간 협업 강화” 주문",
        "여야 대표 선거제 개편 논의 착수",
    ),
}
TRAIN_PER_TOPIC = 5
_URL = "https://news.example.com/klue-mtl/ynat/{split}/{index:05d}"


def _date(rng: random.Random) -> str:
    """A date in the release's style, e.g. "2019.03.05. 오후 2:17"."""
    half, hour = rng.choice(("오전", "오후")), rng.randint(1, 12)
    return f"{rng.randint(2016, 2020)}.{rng.randint(1, 12):02d}.{rng.randint(1, 28):02d}. {half} {hour}:{rng.randint(0, 59):02d}"


def records(split: str) -> list[dict]:
    """YNAT records of ``split`` in the official key order."""
    rng = rng_for("ynat", split)
    chosen: list[tuple[str, str]] = []
    for topic in YNAT_LABELS:
        titles = list(HEADLINES[topic])
        part = titles[:TRAIN_PER_TOPIC] if split == "train" else titles[TRAIN_PER_TOPIC:]
        chosen.extend((title, topic) for title in part)
    rng.shuffle(chosen)
    out = []
    for index, (title, topic) in enumerate(chosen):
        out.append(
            {
                "guid": f"ynat-v1_{split}_{index:05d}",
                "title": title,
                "predefined_news_category": topic,
                "label": topic,
                "url": _URL.format(split=split, index=index),
                "date": _date(rng),
            }
        )
    return out


def render(split: str) -> str:
    """The official YNAT JSON file of ``split``."""
    return dump_json(records(split))
