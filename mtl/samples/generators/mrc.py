"""KLUE-MRC samples: invented news paragraphs with four questions each, in the official nested JSON.

Two article kinds (a company launch, a local festival) each ask the same four kinds of question:
two paraphrases (type 1), one that links two sentences (type 2) and one unanswerable (type 3,
``answers: []`` plus ``plausible_answers``), so a quarter of the questions have no answer. Duration
answers list two gold forms at the same offset ("6개월간" and "6개월"), as the release often does.
The first paragraph of each split is padded with filler sentences so that its last answers lie
beyond 512 tokens: it exercises the windowing of long contexts.
"""

from __future__ import annotations

import random

from mtl.samples.generators.common import SpanText, attach, dump_json, particle, pick, rng_for

ORGS = ("한빛전자", "누리소프트", "다온제약", "미르항공", "가람출판사", "한결건설", "솔내테크", "바름바이오")
FIELDS = ("반도체", "배터리", "의료 기기", "로봇", "게임")
PRODUCTS = ("누리 X1", "하늘빛 노트", "온새미 칩", "별가람 2", "도담 프로", "미리내 7", "가온 큐브", "나래 3")
CITIES = ("춘천", "여수", "전주", "포항", "청주", "강릉", "목포", "원주", "군산", "순천")
FESTIVALS = ("별빛 축제", "국화 축제", "거리 음악 축제", "먹거리 축제", "연날리기 축제", "등불 축제")
VENUES = ("시민공원", "해변 광장", "종합운동장", "문화예술회관 앞마당", "호수공원")
FILLER = (
    " 이날 발표장에는 취재진과 관계자 등 2백여 명이 모여 큰 관심을 보였다.",
    " 행사는 사회자의 인사말과 함께 오전 10시 정각에 시작되었다.",
    " 참석자들은 발표가 끝난 뒤에도 한참 동안 자리를 떠나지 않았다.",
    " 현장에서는 간단한 다과와 기념품이 함께 제공되었다.",
    " 일부 참석자는 행사 모습을 휴대폰으로 찍어 누리집에 올리기도 했다.",
    " 지역 방송국은 이날 행사를 저녁 뉴스에서 자세히 다뤘다.",
    " 주최 측은 비가 올 경우를 대비해 천막 스무 개를 미리 설치했다.",
    " 행사장 입구에는 안내 요원 열두 명이 배치되어 길을 안내했다.",
    " 인근 상인들은 모처럼 손님이 늘었다며 반가운 기색을 보였다.",
    " 교통 혼잡을 막기 위해 경찰이 주변 도로에서 차량을 안내했다.",
    " 행사가 끝난 뒤에는 자원봉사자들이 남아 주변을 깨끗이 정리했다.",
    " 내년 행사는 규모를 조금 더 키워 열릴 예정이라고 한다.",
    " 발표를 맡은 연구소장은 준비 과정에서 겪은 어려움을 솔직하게 털어놓았다.",
    " 그는 시험 제품이 처음에는 자주 멈춰 밤을 새우는 날이 많았다고 말했다.",
    " 회사는 초기 물량을 넉넉히 준비하기 위해 생산 설비를 새로 들였다.",
    " 새 설비는 기존 설비보다 전기를 3분의 1가량 덜 쓰는 것으로 알려졌다.",
    " 협력 업체 스무 곳도 부품 공급 계획을 다시 짜느라 분주한 모습이다.",
    " 회사는 제품 설명서를 다섯 개 나라 말로 옮기는 작업도 마쳤다.",
    " 고객 상담 창구는 평일 오전 9시부터 오후 6시까지 운영된다.",
    " 회사는 구입 후 2년 동안 무상으로 수리를 해 주기로 했다.",
    " 일부 전문가는 가격이 다소 높게 책정될 수 있다는 우려를 내놓았다.",
    " 회사는 이에 대해 아직 가격은 정해지지 않았다고 설명했다.",
)
TRAIN_PARAGRAPHS = 8  # x 4 questions = 32
DEV_PARAGRAPHS = 4  # x 4 questions = 16


def _answer(text: SpanText, name: str, cut: str = "") -> dict:
    """The answer recorded under ``name``; ``cut`` drops a suffix ("간") for a second, shorter gold form."""
    start, value = text.spans[name]
    return {"text": value.removesuffix(cut) if cut else value, "answer_start": start}


def _company(rng: random.Random, long: bool) -> tuple[dict, list[dict]]:
    org, field, product = rng.choice(ORGS), rng.choice(FIELDS), rng.choice(PRODUCTS)
    city, city2 = pick(rng, CITIES, 2)
    year, month, day = rng.randint(1995, 2015), rng.randint(1, 12), rng.randint(1, 28)
    months, people = rng.randint(3, 18), rng.randint(12, 90)
    text = SpanText()
    text.add(f"{attach(org, '은')} {year}년 ").add(city, "city").add(f"에서 설립된 {field} 기업이다.")
    text.add(
        f" 이 회사는 {month}월 {day}일 새로운 {field} 제품인 ‘{product}’{particle(product, '을')} 공개했다."
    )
    text.add(" 개발에는 ").add(f"{months}개월간", "duration").add(" 연구원 ").add(f"{people}명", "people")
    text.add("이 참여했다.")
    if long:
        text.add("".join(FILLER))
    text.add(f" {org} 관계자는 “{attach(product, '은')} 다음 달부터 ").add(city2, "city2")
    text.add("에서 먼저 판매할 예정”이라고 밝혔다.")
    text.add(" 업계는 이번 제품이 회사의 실적 개선에 도움이 될 것으로 보고 있다.")
    questions = [
        (f"{attach(org, '이')} 처음 세워진 도시는?", 1, [_answer(text, "city")], []),
        (
            f"{product} 개발에 걸린 기간은?",
            1,
            [_answer(text, "duration"), _answer(text, "duration", cut="간")],
            [],
        ),
        (f"{month}월 {day}일에 공개된 제품이 가장 먼저 팔릴 지역은?", 2, [_answer(text, "city2")], []),
        (f"{product} 개발에 참여한 디자이너는 몇 명인가?", 3, [], [_answer(text, "people")]),
    ]
    article = {
        "title": f"{org}, 새 {field} 제품 ‘{product}’ 공개",
        "news_category": "경제",
        "source": rng.choice(("acrofan", "hankyung")),
    }
    return article | {"context": text.text}, questions


def _festival(rng: random.Random, long: bool) -> tuple[dict, list[dict]]:
    city, festival, venue = rng.choice(CITIES), rng.choice(FESTIVALS), rng.choice(VENUES)
    edition, month, day = rng.randint(2, 30), rng.randint(3, 11), rng.randint(1, 25)
    days, teams, fee, age = (
        rng.randint(2, 9),
        rng.randint(10, 60),
        rng.choice((3000, 5000, 7000)),
        rng.choice((7, 10, 12)),
    )
    name = f"{city} {festival}"
    text = SpanText()
    text.add(f"{city}시는 제{edition}회 {attach(name, '을')} {month}월 {day}일부터 ")
    text.add(f"{days}일간", "duration").add(" ").add(venue, "venue").add("에서 연다고 밝혔다.")
    text.add(" 올해 축제에는 ").add(f"{teams}개 팀", "teams").add("이 참가해 다양한 공연을 펼친다.")
    if long:
        text.add("".join(FILLER))
    text.add(f" 입장료는 {fee}원이며 ").add(f"{age}세 이하", "age").add(" 어린이는 무료로 들어갈 수 있다.")
    text.add(" 시는 축제 기간 동안 임시 주차장과 셔틀버스를 운영한다.")
    questions = [
        (f"{attach(name, '이')} 열리는 장소는?", 1, [_answer(text, "venue")], []),
        (f"{name}의 개최 기간은?", 1, [_answer(text, "duration"), _answer(text, "duration", cut="간")], []),
        ("입장료를 내지 않아도 되는 어린이의 나이는?", 2, [_answer(text, "age")], []),
        (f"{name}에 지난해 다녀간 관람객 수는?", 3, [], [_answer(text, "teams")]),
    ]
    article = {"title": f"{name} {month}월 개막", "news_category": "생활문화", "source": "hankyung"}
    return article | {"context": text.text}, questions


def document(split: str) -> dict:
    """The MRC file of ``split``: ``{"data": [article, ...]}``, one paragraph per article."""
    rng = rng_for("mrc", split)
    count = TRAIN_PARAGRAPHS if split == "train" else DEV_PARAGRAPHS
    data = []
    index = 0
    for i in range(count):
        make = _company if i % 2 == 0 else _festival
        article, questions = make(rng, long=(i == 0))
        qas = []
        for question, kind, answers, plausible in questions:
            qa = {"question": question, "answers": answers}
            if plausible:
                qa["plausible_answers"] = plausible
            qa |= {
                "question_type": kind,
                "is_impossible": kind == 3,
                "guid": f"klue-mrc-v1_{split}_{index:05d}",
            }
            qas.append(qa)
            index += 1
        context = article.pop("context")
        data.append(article | {"paragraphs": [{"context": context, "qas": qas}]})
    return {"data": data}


def render(split: str) -> str:
    """The official KLUE-MRC JSON file of ``split``."""
    return dump_json(document(split))
