"""KLUE-DP samples: invented sentences from seven sentence patterns, as the official TSV.

Every pattern fixes the dependency tree (head and DEPREL per eojeol); word lists fill it. Each
eojeol is written with its morphemes (LEMMA, space-joined) and their tags (POS, "+"-joined), as in
the release: ``먹었다.  먹 었 다 .  VV+EP+EF+SF``.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from mtl.samples.generators.common import particle, rng_for

HEADER = (
    "## 토큰, 레이블 구분자 : \\t\n"
    "## 토큰 구분자 : \\n\n"
    "## 문장 구분자 : \\n\\n\n"
    "## 주석 : ##\n"
    "## 칼럼명 : INDEX\tWORD_FORM\tLEMMA\tPOS\tHEAD\tDEPREL\n"
)

Word = tuple[str, str, str]  # (word form, lemma, pos)
Row = tuple[str, str, str, int, str]  # (word form, lemma, pos, head, deprel)

_PARTICLE_TAGS = {
    "이": "JKS",
    "은": "JX",
    "을": "JKO",
    "과": "JC",
    "의": "JKG",
    "에서": "JKB",
    "에": "JKB",
    "으로": "JKB",
}


def eojeol(word: str, pos: str, josa: str | None = None) -> Word:
    """An eojeol of one word, optionally followed by a particle (whose allomorph follows the noun's last sound)."""
    if josa is None:
        return word, word, pos
    form = josa if josa in ("의", "에서", "에") else particle(word, josa)
    return word + form, f"{word} {form}", f"{pos}+{_PARTICLE_TAGS[josa]}"


NAMES = ("민서", "도윤", "하린", "지호", "서우", "예준", "수아", "건우", "나은", "시온")
PLACES = ("도서관", "시장", "공원", "카페", "학교", "병원")
# Transitive past-tense predicates with objects that suit them.
TRANSITIVE: tuple[tuple[Word, tuple[str, ...]], ...] = (
    (("읽었다.", "읽 었 다 .", "VV+EP+EF+SF"), ("책", "신문", "편지")),
    (("먹었다.", "먹 었 다 .", "VV+EP+EF+SF"), ("빵", "사과", "김밥")),
    (("샀다.", "사 았 다 .", "VV+EP+EF+SF"), ("우산", "가방", "공책")),
    (("찾았다.", "찾 았 다 .", "VV+EP+EF+SF"), ("지갑", "열쇠", "모자")),
)
ADJECTIVES: tuple[Word, ...] = (
    ("좋았다.", "좋 았 다 .", "VA+EP+EF+SF"),
    ("조용했다.", "조용 하 였 다 .", "XR+XSA+EP+EF+SF"),
    ("따뜻했다.", "따뜻 하 였 다 .", "XR+XSA+EP+EF+SF"),
    ("넓었다.", "넓 었 다 .", "VA+EP+EF+SF"),
)
ROOMS = ("방", "식당", "교실", "거실", "강당")
ADVERBS = ("정말", "아주", "무척", "꽤", "천천히", "조용히")
DETERMINERS = ("그", "이", "저")
FOODS = ("사과", "배", "귤", "빵", "우유", "떡")
RELATIVE_VERBS: tuple[Word, ...] = (
    ("산", "사 ㄴ", "VV+ETM"),
    ("고른", "고르 ㄴ", "VV+ETM"),
    ("받은", "받 은", "VV+ETM"),
)
TIMES = ("저녁", "오후", "아침", "밤")
ARRIVALS: tuple[Word, ...] = (
    ("돌아왔다.", "돌아오 았 다 .", "VV+EP+EF+SF"),
    ("웃었다.", "웃 었 다 .", "VV+EP+EF+SF"),
    ("떠났다.", "떠나 았 다 .", "VV+EP+EF+SF"),
)
GROUPS = (("학교", "학생"), ("회사", "직원"), ("동아리", "회원"), ("마을", "주민"))
WEATHER: tuple[tuple[str, Word], ...] = (
    ("비", ("와서", "오 아서", "VV+EC")),
    ("눈", ("와서", "오 아서", "VV+EC")),
    ("바람", ("불어서", "불 어서", "VV+EC")),
)
EVENTS = ("경기", "행사", "공연", "소풍", "수업")
OUTCOMES: tuple[Word, ...] = (
    ("취소되었다.", "취소 되 었 다 .", "NNG+XSV+EP+EF+SF"),
    ("미뤄졌다.", "미루 어 지 었 다 .", "VV+EC+VX+EP+EF+SF"),
)
JOBS = ("가수", "교사", "의사", "기자")
ROLES = ("대표", "반장", "주장", "위원장")
CHOSEN: tuple[Word, ...] = (
    ("뽑혔다.", "뽑히 었 다 .", "VV+EP+EF+SF"),
    ("선출되었다.", "선출 되 었 다 .", "NNG+XSV+EP+EF+SF"),
)
DAYS = ("어제", "오늘", "그날")


def _simple_clause(rng: random.Random) -> list[Row]:
    """민서가 도서관에서 책을 읽었다."""
    verb, objects = rng.choice(TRANSITIVE)
    return [
        (*eojeol(rng.choice(NAMES), "NNP", "이"), 4, "NP_SBJ"),
        (*eojeol(rng.choice(PLACES), "NNG", "에서"), 4, "NP_AJT"),
        (*eojeol(rng.choice(objects), "NNG", "을"), 4, "NP_OBJ"),
        (*verb, 0, "VP"),
    ]


def _description(rng: random.Random) -> list[Row]:
    """그 방은 정말 조용했다."""
    determiner = rng.choice(DETERMINERS)
    return [
        (determiner, determiner, "MMD", 2, "DP"),
        (*eojeol(rng.choice(ROOMS), "NNG", "은"), 4, "NP_SBJ"),
        (*eojeol(rng.choice(ADVERBS[:4]), "MAG"), 4, "AP"),
        (*rng.choice(ADJECTIVES), 0, "VP"),
    ]


def _relative_clause(rng: random.Random) -> list[Row]:
    """사과와 배를 산 도윤이 저녁에 돌아왔다."""
    first, second = rng.sample(FOODS, 2)
    return [
        (*eojeol(first, "NNG", "과"), 2, "NP_CNJ"),
        (*eojeol(second, "NNG", "을"), 3, "NP_OBJ"),
        (*rng.choice(RELATIVE_VERBS), 4, "VP_MOD"),
        (*eojeol(rng.choice(NAMES), "NNP", "이"), 6, "NP_SBJ"),
        (*eojeol(rng.choice(TIMES), "NNG", "에"), 6, "NP_AJT"),
        (*rng.choice(ARRIVALS), 0, "VP"),
    ]


def _copula(rng: random.Random) -> list[Row]:
    """하린은 우리 학교의 학생이다."""
    group, member = rng.choice(GROUPS)
    return [
        (*eojeol(rng.choice(NAMES), "NNP", "은"), 4, "NP_SBJ"),
        ("우리", "우리", "NP", 3, "NP"),
        (*eojeol(group, "NNG", "의"), 4, "NP_MOD"),
        (f"{member}이다.", f"{member} 이 다 .", "NNG+VCP+EF+SF", 0, "VNP"),
    ]


def _connective(rng: random.Random) -> list[Row]:
    """비가 와서 경기가 취소되었다."""
    weather, verb = rng.choice(WEATHER)
    return [
        (*eojeol(weather, "NNG", "이"), 2, "NP_SBJ"),
        (*verb, 4, "VP_AJT"),
        (*eojeol(rng.choice(EVENTS), "NNG", "이"), 4, "NP_SBJ"),
        (*rng.choice(OUTCOMES), 0, "VP"),
    ]


def _complement(rng: random.Random) -> list[Row]:
    """가수인 지호가 대표로 뽑혔다."""
    job = rng.choice(JOBS)
    return [
        (f"{job}인", f"{job} 이 ㄴ", "NNG+VCP+ETM", 2, "VNP_MOD"),
        (*eojeol(rng.choice(NAMES), "NNP", "이"), 4, "NP_SBJ"),
        (*eojeol(rng.choice(ROLES), "NNG", "으로"), 4, "NP_CMP"),
        (*rng.choice(CHOSEN), 0, "VP"),
    ]


def _adverbial(rng: random.Random) -> list[Row]:
    """어제 서우가 천천히 편지를 읽었다."""
    verb, objects = rng.choice(TRANSITIVE)
    return [
        (*eojeol(rng.choice(DAYS), "NNG"), 5, "NP_AJT"),
        (*eojeol(rng.choice(NAMES), "NNP", "이"), 5, "NP_SBJ"),
        (*eojeol(rng.choice(ADVERBS[4:]), "MAG"), 5, "AP"),
        (*eojeol(rng.choice(objects), "NNG", "을"), 5, "NP_OBJ"),
        (*verb, 0, "VP"),
    ]


PATTERNS: tuple[Callable[..., list[Row]], ...] = (
    _simple_clause, _description, _relative_clause, _copula, _connective, _complement, _adverbial,
)  # fmt: skip
SOURCES = ("wikitree", "wikipedia", "airbnb", "policy", "paraKQC")
TRAIN_SENTENCES = 32
DEV_SENTENCES = 16


def sentences(split: str) -> list[tuple[str, str, list[Row]]]:
    """``(guid, sentence, rows)`` for every sentence of ``split``."""
    rng = rng_for("dp", split)
    count = TRAIN_SENTENCES if split == "train" else DEV_SENTENCES
    out: list[tuple[str, str, list[Row]]] = []
    # Dev never repeats a train sentence, so dev scores measure more than memorisation.
    seen = set() if split == "train" else {sentence for _, sentence, _ in sentences("train")}
    attempt = 0
    while len(out) < count:
        rows = PATTERNS[attempt % len(PATTERNS)](rng)
        attempt += 1
        sentence = " ".join(row[0] for row in rows)
        if sentence in seen:
            continue
        seen.add(sentence)
        guid = f"klue-dp-v1_{split}_{len(out):05d}_{SOURCES[len(out) % len(SOURCES)]}"
        out.append((guid, sentence, rows))
    return out


def render(split: str) -> str:
    """The official DP TSV: 5 header lines, then per sentence a ``##`` line, word rows, a blank line."""
    blocks = [HEADER]
    for guid, sentence, rows in sentences(split):
        lines = [f"## {guid}\t{sentence}"]
        lines += [
            f"{i}\t{form}\t{lemma}\t{pos}\t{head}\t{rel}"
            for i, (form, lemma, pos, head, rel) in enumerate(rows, 1)
        ]
        blocks.append("\n".join(lines) + "\n\n")
    return "".join(blocks)
