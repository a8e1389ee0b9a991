"""Readers: official-format fixtures (invented sentences), every malformed case, hub-schema round trips."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mtl.data import dp, mrc, ner, nli, sts, wos, ynat
from mtl.data import re as re_reader
from mtl.errors import KlueInputError
from mtl.tasks import TASKS, get_task


# ------------------------------------------------------------------------------------ helpers
def write_json(tmp_path: Path, obj: Any, name: str = "input.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def write_text(tmp_path: Path, text: str, name: str) -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def raises_at(fn: Callable[[], Any], path: Path | str, *fragments: str) -> KlueInputError:
    """Assert ``fn`` raises KlueInputError whose message names ``path`` and holds every fragment."""
    with pytest.raises(KlueInputError) as info:
        fn()
    message = str(info.value)
    assert str(path) in message, message
    for fragment in fragments:
        assert fragment in message, message
    return info.value


# ----------------------------------------------------------------------------------- fixtures
YNAT_OFFICIAL = [
    {
        "guid": "ynat-t-0",
        "title": "손흥민 두 골 폭발",
        "predefined_news_category": "스포츠",
        "label": "스포츠",
        "annotations": {"annotators": ["01"], "annotations": {"first-scope": ["스포츠"]}},
        "url": "https://example.com/1",
        "date": "2020.01.01. 오전 9:00",
    },
    {"guid": "ynat-t-1", "title": "새 스마트폰 출시", "label": "IT과학"},
    {"guid": "ynat-t-2", "title": "국회 본회의 개최", "label": "정치"},
]
YNAT_HUB = [
    {
        "guid": "ynat-t-0",
        "title": "손흥민 두 골 폭발",
        "label": 5,
        "url": "https://example.com/1",
        "date": "d",
    },
    {"guid": "ynat-t-1", "title": "새 스마트폰 출시", "label": 0, "url": None, "date": None},
    {"guid": "ynat-t-2", "title": "국회 본회의 개최", "label": 6, "url": None, "date": None},
]
YNAT_EXPECTED = [
    {"guid": "ynat-t-0", "title": "손흥민 두 골 폭발", "label": 5},
    {"guid": "ynat-t-1", "title": "새 스마트폰 출시", "label": 0},
    {"guid": "ynat-t-2", "title": "국회 본회의 개최", "label": 6},
]

NLI_OFFICIAL = [
    {
        "guid": "nli-t-0",
        "source": "test",
        "premise": "나는 사과를 먹었다.",
        "hypothesis": "나는 과일을 먹었다.",
        "gold_label": "entailment",
        "author": "entailment",
        "label2": "entailment",
    },
    {
        "guid": "nli-t-1",
        "genre": "test2",
        "premise": "비가 온다.",
        "hypothesis": "날씨가 맑다.",
        "gold_label": "contradiction",
    },
    {
        "guid": "nli-t-2",
        "source": "test",
        "premise": "그는 학생이다.",
        "hypothesis": "그는 대학생이다.",
        "gold_label": "neutral",
    },
]
NLI_HUB = [
    {
        "guid": "nli-t-0",
        "source": "test",
        "premise": "나는 사과를 먹었다.",
        "hypothesis": "나는 과일을 먹었다.",
        "label": 0,
    },
    {"guid": "nli-t-1", "source": "test2", "premise": "비가 온다.", "hypothesis": "날씨가 맑다.", "label": 2},
    {
        "guid": "nli-t-2",
        "source": "test",
        "premise": "그는 학생이다.",
        "hypothesis": "그는 대학생이다.",
        "label": 1,
    },
]
NLI_EXPECTED = [
    {
        "guid": "nli-t-0",
        "source": "test",
        "premise": "나는 사과를 먹었다.",
        "hypothesis": "나는 과일을 먹었다.",
        "label": 0,
    },
    {"guid": "nli-t-1", "source": "test2", "premise": "비가 온다.", "hypothesis": "날씨가 맑다.", "label": 2},
    {
        "guid": "nli-t-2",
        "source": "test",
        "premise": "그는 학생이다.",
        "hypothesis": "그는 대학생이다.",
        "label": 1,
    },
]

STS_HUB = [
    {
        "guid": "sts-t-0",
        "source": "test-rtt",
        "sentence1": "오늘 날씨가 좋네요.",
        "sentence2": "오늘은 날씨가 좋습니다.",
        # 4.375 (a mean of 8 votes) survives Dataset.to_json, which keeps only 10 significant digits
        "labels": {"label": 4.4, "real-label": 4.375, "binary-label": 1},
    },
    {
        "guid": "sts-t-1",
        "source": "test-sampled",
        "sentence1": "고양이가 잔다.",
        "sentence2": "주식이 올랐다.",
        "labels": {"label": 0.0, "real-label": 0.0, "binary-label": 0},
    },
]
STS_OFFICIAL = [
    {**STS_HUB[0], "annotations": {"agreement": "0:0:0:0:2:5", "annotators": ["01"], "annotations": [4]}},
    STS_HUB[1],
]
STS_EXPECTED = [
    {
        "guid": "sts-t-0",
        "source": "test-rtt",
        "sentence1": "오늘 날씨가 좋네요.",
        "sentence2": "오늘은 날씨가 좋습니다.",
        "score": 4.375,
        "label": 4.4,
        "binary": 1,
    },
    {
        "guid": "sts-t-1",
        "source": "test-sampled",
        "sentence1": "고양이가 잔다.",
        "sentence2": "주식이 올랐다.",
        "score": 0.0,
        "label": 0.0,
        "binary": 0,
    },
]

RE_OFFICIAL = [
    {
        "guid": "re-t-0",
        "sentence": "이순신은 조선의 장군이다.",
        "subject_entity": {"word": "이순신", "start_idx": 0, "end_idx": 2, "type": "PER"},
        "object_entity": {"word": "조선", "start_idx": 5, "end_idx": 6, "type": "ORG"},
        "label": "per:employee_of",
        "source": "test",
    },
    {
        "guid": "re-t-1",
        "sentence": "삼성전자는 1969년에 세워졌다.",
        "subject_entity": {"word": "삼성전자", "start_idx": 0, "end_idx": 3, "type": "ORG"},
        "object_entity": {"word": "1969년", "start_idx": 6, "end_idx": 10, "type": "DAT"},
        "label": "org:founded",
        "source": "test",
    },
]
RE_HUB = [{**RE_OFFICIAL[0], "label": 18}, {**RE_OFFICIAL[1], "label": 2}]
RE_EXPECTED = [
    {
        "guid": "re-t-0",
        "sentence": "이순신은 조선의 장군이다.",
        "subject": {"word": "이순신", "start": 0, "end": 2, "type": "PER"},
        "object": {"word": "조선", "start": 5, "end": 6, "type": "ORG"},
        "label": 18,
        "source": "test",
    },
    {
        "guid": "re-t-1",
        "sentence": "삼성전자는 1969년에 세워졌다.",
        "subject": {"word": "삼성전자", "start": 0, "end": 3, "type": "ORG"},
        "object": {"word": "1969년", "start": 6, "end": 10, "type": "DAT"},
        "label": 2,
        "source": "test",
    },
]

MRC_CONTEXT_1 = "세종대왕은 1443년에 훈민정음을 창제하였다."
MRC_CONTEXT_2 = "내일은 전국에 비가 내리겠습니다."
MRC_OFFICIAL = {
    "version": "test",
    "data": [
        {
            "title": "훈민정음",
            "paragraphs": [
                {
                    "context": MRC_CONTEXT_1,
                    "qas": [
                        {
                            "question": "훈민정음이 창제된 해는?",
                            "guid": "mrc-t-1",
                            "answers": [
                                {"text": "1443년", "answer_start": 6},
                                {"text": "1443", "answer_start": 6},
                            ],
                            "question_type": 1,
                            "is_impossible": False,
                        },
                        {
                            "question": "훈민정음을 반포한 사람은?",
                            "guid": "mrc-t-2",
                            "answers": [],
                            # deliberately off (the text is at 0): plausible offsets are kept, not checked
                            "plausible_answers": [{"text": "세종대왕", "answer_start": 3}],
                            "question_type": 3,
                            "is_impossible": True,
                        },
                    ],
                }
            ],
        },
        {
            "title": "날씨",
            "news_category": "사회",
            "source": "test",
            "paragraphs": [
                {
                    "context": MRC_CONTEXT_2,
                    "qas": [
                        {
                            "question": "비가 오는 날은?",
                            "guid": "mrc-t-3",
                            "answers": [{"text": "내일", "answer_start": 0}],
                            "question_type": 2,
                            "is_impossible": False,
                        }
                    ],
                }
            ],
        },
    ],
}
MRC_HUB = [
    {
        "title": "훈민정음",
        "context": MRC_CONTEXT_1,
        "news_category": None,
        "source": None,
        "guid": "mrc-t-1",
        "is_impossible": False,
        "question_type": 1,
        "question": "훈민정음이 창제된 해는?",
        "answers": {"answer_start": [6, 6], "text": ["1443년", "1443"]},
    },
    {
        "title": "훈민정음",
        "context": MRC_CONTEXT_1,
        "news_category": None,
        "source": None,
        "guid": "mrc-t-2",
        "is_impossible": True,
        "question_type": 3,
        "question": "훈민정음을 반포한 사람은?",
        "answers": {"answer_start": [3], "text": ["세종대왕"]},  # the hub puts plausible answers here
    },
    {
        "title": "날씨",
        "context": MRC_CONTEXT_2,
        "news_category": "사회",
        "source": "test",
        "guid": "mrc-t-3",
        "is_impossible": False,
        "question_type": 2,
        "question": "비가 오는 날은?",
        "answers": {"answer_start": [0], "text": ["내일"]},
    },
]
MRC_EXPECTED = [
    {
        "guid": "mrc-t-1",
        "title": "훈민정음",
        "context": MRC_CONTEXT_1,
        "question": "훈민정음이 창제된 해는?",
        "answers": [{"text": "1443년", "start": 6}, {"text": "1443", "start": 6}],
        "is_impossible": False,
        "plausible_answers": [],
        "question_type": 1,
    },
    {
        "guid": "mrc-t-2",
        "title": "훈민정음",
        "context": MRC_CONTEXT_1,
        "question": "훈민정음을 반포한 사람은?",
        "answers": [],
        "is_impossible": True,
        "plausible_answers": [{"text": "세종대왕", "start": 3}],
        "question_type": 3,
    },
    {
        "guid": "mrc-t-3",
        "title": "날씨",
        "context": MRC_CONTEXT_2,
        "question": "비가 오는 날은?",
        "answers": [{"text": "내일", "start": 0}],
        "is_impossible": False,
        "plausible_answers": [],
        "question_type": 2,
    },
]

_WOS_STATE_1 = ["식당-지역-강남", "식당-종류-한식당"]
_WOS_STATE_2 = [*_WOS_STATE_1, "택시-출발 시간-12-30"]  # a value may hold "-": split("-", 2)
WOS_OFFICIAL = [
    {
        "guid": "wos-t-0",
        "domains": ["식당", "택시"],
        "dialogue": [
            {"role": "user", "text": "강남에 있는 한식당을 찾아주세요.", "state": _WOS_STATE_1},
            {"role": "sys", "text": "한식당 '소반'을 추천합니다."},
            {"role": "user", "text": "12-30분에 출발하는 택시도 불러주세요.", "state": _WOS_STATE_2},
            {"role": "sys", "text": "예약되었습니다."},
        ],
    },
    {
        "guid": "wos-t-1",
        "domains": ["관광"],
        "dialogue": [
            {"role": "user", "text": "아무 데나 괜찮아요.", "state": ["관광-종류-dontcare"]},
            {"role": "sys", "text": "네."},
        ],
    },
]
WOS_HUB = [
    {**d, "dialogue": [{**t, "state": t.get("state", [])} for t in d["dialogue"]]} for d in WOS_OFFICIAL
]
WOS_EXPECTED = [
    {
        "guid": "wos-t-0",
        "domains": ["식당", "택시"],
        "dialogue": [
            {"role": "user", "text": "강남에 있는 한식당을 찾아주세요.", "state": _WOS_STATE_1},
            {"role": "sys", "text": "한식당 '소반'을 추천합니다.", "state": None},
            {"role": "user", "text": "12-30분에 출발하는 택시도 불러주세요.", "state": _WOS_STATE_2},
            {"role": "sys", "text": "예약되었습니다.", "state": None},
        ],
    },
    {
        "guid": "wos-t-1",
        "domains": ["관광"],
        "dialogue": [
            {"role": "user", "text": "아무 데나 괜찮아요.", "state": ["관광-종류-dontcare"]},
            {"role": "sys", "text": "네.", "state": None},
        ],
    },
]

# NER: the release's five comment lines (the fifth holds a real tab), then the sentences.
NER_HEAD = "## 토큰, 레이블 구분자 : \\t\n## 토큰 구분자 : \\n\n## 문장 구분자 : \\n\\n\n## 주석 : ##\n## 컬럼명 : CHAR\tNE_TAG\n"
NER_SENTENCES = [
    (
        "klue-ner-v1_dev_00000-test",
        "<철수:PS>가 왔다",
        ["철\tB-PS", "수\tI-PS", "가\tO", " \tO", "왔\tO", "다\tO"],
    ),
    (
        "klue-ner-v1_dev_00001-test",
        '"봄" <12:30:TI>',
        ['"\tO', "봄\tO", '"\tO', " \tO", "1\tB-TI", "2\tI-TI", ":\tI-TI", "3\tI-TI", "0\tI-TI"],
    ),
]
# line numbers in ner_tsv(NER_SENTENCES): header 6, rows 7-12, blank 13, header 14, rows 15-23
NER_HUB = [
    {"sentence": "<철수:PS>가 왔다", "tokens": list("철수가 왔다"), "ner_tags": [6, 7, 12, 12, 12, 12]},
    {
        "sentence": '"봄" <12:30:TI>',
        "tokens": list('"봄" 12:30'),
        "ner_tags": [12, 12, 12, 12, 10, 11, 11, 11, 11],
    },
]
NER_EXPECTED = [
    {"guid": "klue-ner-v1_dev_00000-test", "text": "철수가 왔다", "tags": [6, 7, 12, 12, 12, 12]},
    {
        "guid": "klue-ner-v1_dev_00001-test",
        "text": '"봄" 12:30',
        "tags": [12, 12, 12, 12, 10, 11, 11, 11, 11],
    },
]

DP_HEAD = (
    "## 토큰, 레이블 구분자 : \\t\n## 토큰 구분자 : \\n\n## 문장 구분자 : \\n\\n\n## 주석 : ##\n"
    "## 칼럼명 : INDEX\tWORD_FORM\tLEMMA\tPOS\tHEAD\tDEPREL\n"
)
DP_SENTENCES = [
    (
        "klue-dp-v1_dev_00000_test",
        "철수가 밥을 먹었다.",
        [
            "1\t철수가\t철수 가\tNNP+JKS\t3\tNP_SBJ",
            "2\t밥을\t밥 을\tNNG+JKO\t3\tNP_OBJ",
            "3\t먹었다.\t먹 었 다 .\tVV+EP+EF+SF\t0\tVP",
        ],
    ),
    ("klue-dp-v1_dev_00001_test", "아주 좋다", ["1\t아주\t아주\tMAG\t2\tAP", "2\t좋다\t좋 다\tVA+EF\t0\tVP"]),
]
# line numbers in dp_tsv(DP_SENTENCES): header 6, rows 7-9, blank 10, header 11, rows 12-13
DP_HUB = [
    {
        "sentence": "철수가 밥을 먹었다.",
        "index": [1, 2, 3],
        "word_form": ["철수가", "밥을", "먹었다."],
        "lemma": ["철수 가", "밥 을", "먹 었 다 ."],
        "pos": ["NNP+JKS", "NNG+JKO", "VV+EP+EF+SF"],
        "head": [3, 3, 0],
        "deprel": ["NP_SBJ", "NP_OBJ", "VP"],
    },
    {
        "sentence": "아주 좋다",
        "index": [1, 2],
        "word_form": ["아주", "좋다"],
        "lemma": ["아주", "좋 다"],
        "pos": ["MAG", "VA+EF"],
        "head": [2, 0],
        "deprel": ["AP", "VP"],
    },
]
DP_EXPECTED = [
    {
        "guid": "klue-dp-v1_dev_00000_test",
        "sentence": "철수가 밥을 먹었다.",
        "words": ["철수가", "밥을", "먹었다."],
        "lemmas": ["철수 가", "밥 을", "먹 었 다 ."],
        "pos": ["NNP+JKS", "NNG+JKO", "VV+EP+EF+SF"],
        "heads": [3, 3, 0],
        "deprels": [3, 5, 2],
    },
    {
        "guid": "klue-dp-v1_dev_00001_test",
        "sentence": "아주 좋다",
        "words": ["아주", "좋다"],
        "lemmas": ["아주", "좋 다"],
        "pos": ["MAG", "VA+EF"],
        "heads": [2, 0],
        "deprels": [6, 2],
    },
]


def tsv(head: str, sentences: list[tuple[str, str, list[str]]], tail: str = "\n\n") -> str:
    """Release-style TSV: comment lines, ``## guid<TAB>sentence`` blocks split by blank lines, ``tail``."""
    blocks = ["\n".join([f"## {guid}\t{sentence}", *rows]) for guid, sentence, rows in sentences]
    return head + "\n\n".join(blocks) + tail


def ner_tsv(sentences: list[tuple[str, str, list[str]]] = NER_SENTENCES, tail: str = "\n\n") -> str:
    return tsv(NER_HEAD, sentences, tail)


def dp_tsv(sentences: list[tuple[str, str, list[str]]] = DP_SENTENCES, tail: str = "\n\n") -> str:
    return tsv(DP_HEAD, sentences, tail)


def with_rows(sentences: list[tuple[str, str, list[str]]], index: int, rows: list[str]) -> list[Any]:
    out = list(sentences)
    guid, sentence, _ = out[index]
    out[index] = (guid, sentence, rows)
    return out


# --------------------------------------------------------------------------- happy paths
@pytest.mark.parametrize(
    ("reader", "official", "expected"),
    [
        (ynat, YNAT_OFFICIAL, YNAT_EXPECTED),
        (nli, NLI_OFFICIAL, NLI_EXPECTED),
        (sts, STS_OFFICIAL, STS_EXPECTED),
        (re_reader, RE_OFFICIAL, RE_EXPECTED),
        (mrc, MRC_OFFICIAL, MRC_EXPECTED),
        (wos, WOS_OFFICIAL, WOS_EXPECTED),
    ],
    ids=["ynat", "nli", "sts", "re", "mrc", "wos"],
)
def test_official_json_gives_expected_records(tmp_path, reader, official, expected):
    assert reader.read(write_json(tmp_path, official)) == expected


@pytest.mark.parametrize("tail", ["\n\n", "\n", ""], ids=["blank-line", "newline-only", "no-final-newline"])
def test_official_ner_tsv(tmp_path, tail):
    # a complete last sentence is fine whether or not a blank line (or any newline) follows it
    assert ner.read(write_text(tmp_path, ner_tsv(tail=tail), "ner.tsv")) == NER_EXPECTED


@pytest.mark.parametrize("tail", ["\n\n", "\n", ""], ids=["blank-line", "newline-only", "no-final-newline"])
def test_official_dp_tsv(tmp_path, tail):
    assert dp.read(write_text(tmp_path, dp_tsv(tail=tail), "dp.tsv")) == DP_EXPECTED


def test_tsv_crlf_line_ends(tmp_path):
    path = write_text(tmp_path, ner_tsv().replace("\n", "\r\n"), "ner.tsv")
    assert ner.read(path) == NER_EXPECTED


def test_ner_header_without_blank_line_before_it_starts_a_new_sentence(tmp_path):
    text = ner_tsv().replace("다\tO\n\n##", "다\tO\n##")
    assert ner.read(write_text(tmp_path, text, "ner.tsv")) == NER_EXPECTED


def test_nli_genre_and_source_both_become_source(tmp_path):
    records = nli.read(write_json(tmp_path, NLI_OFFICIAL))
    assert [r["source"] for r in records] == ["test", "test2", "test"]


def test_registry_reads_by_task_name(tmp_path):
    assert list(TASKS) == ["ynat", "nli", "sts", "ner", "re", "dp", "mrc", "wos"]
    assert get_task("ynat").read(write_json(tmp_path, YNAT_OFFICIAL)) == YNAT_EXPECTED
    assert get_task("ner").read(str(write_text(tmp_path, ner_tsv(), "n.tsv"))) == NER_EXPECTED


def test_read_records_unknown_task(tmp_path):
    with pytest.raises(KlueInputError, match="unknown task 'pos'"):
        get_task("pos").read(write_json(tmp_path, YNAT_OFFICIAL))


def test_task_modules_do_not_import_datasets():
    code = "import sys, mtl.data, mtl.data.ynat; print('datasets' in sys.modules, 'pyarrow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


# ------------------------------------------------------------------------------- unlabeled
def _strip(obj: Any, *keys: str) -> Any:
    return [{k: v for k, v in item.items() if k not in keys} for item in obj]


@pytest.mark.parametrize(
    ("reader", "official", "gold_keys", "expected_gold"),
    [
        (ynat, _strip(YNAT_OFFICIAL, "label"), ("label",), {"label": None}),
        (nli, _strip(NLI_OFFICIAL, "gold_label"), ("label",), {"label": None}),
        (
            sts,
            _strip(STS_OFFICIAL, "labels"),
            ("score", "label", "binary"),
            {"score": None, "label": None, "binary": None},
        ),
        (re_reader, _strip(RE_OFFICIAL, "label"), ("label",), {"label": None}),
    ],
    ids=["ynat", "nli", "sts", "re"],
)
def test_unlabeled_json_without_gold(tmp_path, reader, official, gold_keys, expected_gold):
    path = write_json(tmp_path, official)
    records = reader.read(path, labeled=False)
    assert [{k: r[k] for k in gold_keys} for r in records] == [expected_gold] * len(official)
    with pytest.raises(KlueInputError, match="missing key"):
        reader.read(path)  # the same file is an error when gold is required


def test_unlabeled_mrc_reads_no_gold(tmp_path):
    unlabeled = copy.deepcopy(MRC_OFFICIAL)
    for article in unlabeled["data"]:
        for qa in article["paragraphs"][0]["qas"]:
            for key in ("answers", "plausible_answers", "is_impossible", "question_type"):
                qa.pop(key, None)
    records = mrc.read(write_json(tmp_path, unlabeled), labeled=False)
    assert [r["guid"] for r in records] == ["mrc-t-1", "mrc-t-2", "mrc-t-3"]
    for r in records:
        assert (r["answers"], r["plausible_answers"], r["is_impossible"], r["question_type"]) == (
            [],
            [],
            False,
            None,
        )


def test_unlabeled_wos_user_state_absent(tmp_path):
    unlabeled = copy.deepcopy(WOS_OFFICIAL)
    for d in unlabeled:
        for turn in d["dialogue"]:
            turn.pop("state", None)
    path = write_json(tmp_path, unlabeled)
    records = wos.read(path, labeled=False)
    assert [t["state"] for t in records[0]["dialogue"]] == [None, None, None, None]
    raises_at(lambda: wos.read(path), path, "record wos-t-0", "user turn 0 has no 'state'")


def test_unlabeled_ner_rows_without_tags(tmp_path):
    sentences = [(g, s, [row.split("\t")[0] for row in rows]) for g, s, rows in NER_SENTENCES]
    path = write_text(tmp_path, ner_tsv(sentences), "ner.tsv")
    assert ner.read(path, labeled=False) == [{**r, "tags": None} for r in NER_EXPECTED]
    raises_at(lambda: ner.read(path), path, "line 7", "no tab")


def test_unlabeled_dp_rows_without_head_and_deprel(tmp_path):
    sentences = [(g, s, ["\t".join(row.split("\t")[:4]) for row in rows]) for g, s, rows in DP_SENTENCES]
    path = write_text(tmp_path, dp_tsv(sentences), "dp.tsv")
    assert dp.read(path, labeled=False) == [{**r, "heads": None, "deprels": None} for r in DP_EXPECTED]
    raises_at(lambda: dp.read(path), path, "line 7", "expected 6 tab-separated fields")


# ------------------------------------------------------------------- malformed: any file
@pytest.mark.parametrize("task", sorted(TASKS))
def test_missing_and_empty_files(tmp_path, task):
    missing = tmp_path / "nope.json"
    raises_at(lambda: get_task(task).read(missing), missing, "not found")
    empty = write_text(tmp_path, "  \n", "empty.tsv" if task in ("ner", "dp") else "empty.json")
    raises_at(lambda: get_task(task).read(empty), empty, "empty")


@pytest.mark.parametrize("task", ["ynat", "nli", "sts", "re", "mrc", "wos"])
def test_truncated_json(tmp_path, task):
    official = {"ynat": YNAT_OFFICIAL, "nli": NLI_OFFICIAL, "sts": STS_OFFICIAL, "re": RE_OFFICIAL}.get(
        task, MRC_OFFICIAL if task == "mrc" else WOS_OFFICIAL
    )
    text = json.dumps(official, ensure_ascii=False, indent=1)
    path = write_text(tmp_path, text[: len(text) // 2], "cut.json")
    raises_at(lambda: get_task(task).read(path), path, "line ", "invalid JSON")


@pytest.mark.parametrize("task", ["ynat", "ner"])
def test_non_utf8(tmp_path, task):
    path = tmp_path / ("bad.tsv" if task == "ner" else "bad.json")
    good = ner_tsv() if task == "ner" else json.dumps(YNAT_OFFICIAL, ensure_ascii=False, indent=1)
    path.write_bytes(good.encode("utf-8")[:40] + "\n한글".encode("euc-kr") + b"\n")
    raises_at(lambda: get_task(task).read(path), path, "not valid UTF-8")


@pytest.mark.parametrize("task", ["ynat", "nli", "sts", "re", "wos"])
def test_wrong_top_level_shape(tmp_path, task):
    path = write_json(tmp_path, 42)
    raises_at(lambda: get_task(task).read(path), path, "top-level JSON must be")
    path = write_json(tmp_path, ["not a record"], "list.json")
    raises_at(lambda: get_task(task).read(path), path, "record #0", "must be a JSON object")


@pytest.mark.parametrize("task", ["ynat", "nli", "sts", "re", "wos"])
def test_empty_list_is_an_error(tmp_path, task):
    path = write_json(tmp_path, [])
    raises_at(lambda: get_task(task).read(path), path, "holds no records")


def test_mrc_top_level_data_must_be_a_list(tmp_path):
    path = write_json(tmp_path, {"data": {"title": "x"}})
    raises_at(lambda: mrc.read(path), path, "'data' must be a list")


# --------------------------------------------------------------- malformed: JSON records
def _mutated(
    records: list[dict[str, Any]], index: int, change: Callable[[dict[str, Any]], None]
) -> list[Any]:
    out = copy.deepcopy(records)
    change(out[index])
    return out


def _set_path(obj: Any, dotted: str, value: Any) -> None:
    """Set ``obj["a"][2]["b"] = value`` for ``"a.2.b"`` (numbers index lists)."""
    *parents, last = dotted.split(".")
    for part in parents:
        obj = obj[int(part)] if isinstance(obj, list) else obj[part]
    if isinstance(obj, list):
        obj[int(last)] = value
    else:
        obj[last] = value


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda obj: _set_path(obj, key, value)


def _drop(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda obj: obj.pop(key)


JSON_ERRORS = [
    # (reader, base, index, change, record name, message fragment)
    (ynat, YNAT_OFFICIAL, 1, _drop("title"), "record ynat-t-1", "missing key 'title'"),
    (ynat, YNAT_OFFICIAL, 1, _set("title", 7), "record ynat-t-1", "'title' must be a string, got int"),
    (ynat, YNAT_OFFICIAL, 2, _set("label", "연예"), "record ynat-t-2", "unknown label '연예'"),
    (ynat, YNAT_OFFICIAL, 2, _set("label", 3), "record ynat-t-2", "'label' must be a string"),
    (
        ynat,
        YNAT_OFFICIAL,
        2,
        _set("guid", "ynat-t-0"),
        "record #2",
        "duplicate guid 'ynat-t-0' (first seen at record #0)",
    ),
    (ynat, YNAT_OFFICIAL, 1, _drop("guid"), "record #1", "missing key 'guid'"),
    (nli, NLI_OFFICIAL, 0, _set("gold_label", "-"), "record nli-t-0", "unknown gold_label '-'"),
    (nli, NLI_OFFICIAL, 2, _drop("premise"), "record nli-t-2", "missing key 'premise'"),
    (nli, NLI_OFFICIAL, 1, _drop("genre"), "record nli-t-1", "missing key 'source'"),
    (sts, STS_OFFICIAL, 0, _set("labels.binary-label", 2), "record sts-t-0", "must be 0 or 1"),
    (sts, STS_OFFICIAL, 0, _set("labels.real-label", 5.5), "record sts-t-0", "outside 0..5"),
    (sts, STS_OFFICIAL, 1, _set("labels.label", "3.0"), "record sts-t-1", "must be a number"),
    (sts, STS_OFFICIAL, 1, _set("labels", [1, 2]), "record sts-t-1", "'labels' must be a JSON object"),
    (sts, STS_OFFICIAL, 1, _drop("labels"), "record sts-t-1", "missing key 'labels'"),
    (re_reader, RE_OFFICIAL, 0, _set("subject_entity.end_idx", 3), "record re-t-0", "end_idx is inclusive"),
    (re_reader, RE_OFFICIAL, 1, _set("object_entity.end_idx", 40), "record re-t-1", "do not fit a sentence"),
    (re_reader, RE_OFFICIAL, 1, _set("object_entity.start_idx", True), "record re-t-1", "must be an integer"),
    (re_reader, RE_OFFICIAL, 1, _set("object_entity.type", "GPE"), "record re-t-1", "type 'GPE'"),
    (re_reader, RE_OFFICIAL, 0, _set("label", "per:hobby"), "record re-t-0", "unknown label 'per:hobby'"),
    (re_reader, RE_OFFICIAL, 0, _drop("object_entity"), "record re-t-0", "missing key 'object_entity'"),
    (
        wos,
        WOS_OFFICIAL,
        0,
        _set("dialogue.2.state", ["식당-지역"]),
        "record wos-t-0",
        "turn 2: state item '식당-지역'",
    ),
    (wos, WOS_OFFICIAL, 0, _set("dialogue.0.state", ["식당--강남"]), "record wos-t-0", "turn 0: state item"),
    (wos, WOS_OFFICIAL, 1, _set("dialogue.1.role", "bot"), "record wos-t-1", "turn 1: role 'bot'"),
    (
        wos,
        WOS_OFFICIAL,
        1,
        _set("dialogue.1.state", ["관광-종류-박물관"]),
        "record wos-t-1",
        "system turn carries",
    ),
    (wos, WOS_OFFICIAL, 1, _set("dialogue.0.state", None), "record wos-t-1", "user turn 0 has no 'state'"),
    (wos, WOS_OFFICIAL, 1, _set("dialogue", []), "record wos-t-1", "dialogue is empty"),
    (wos, WOS_OFFICIAL, 1, _set("domains", "관광"), "record wos-t-1", "'domains' must be a list"),
]


@pytest.mark.parametrize(("reader", "base", "index", "change", "where", "fragment"), JSON_ERRORS)
def test_malformed_json_record(tmp_path, reader, base, index, change, where, fragment):
    path = write_json(tmp_path, _mutated(base, index, change))
    raises_at(lambda: reader.read(path), path, where, fragment)


MRC_ERRORS = [
    # (data index, paragraph, qa index, dotted key in the qa, value, fragment)
    (0, 0, 0, "answers.0.answer_start", 7, "is not at answer_start 7"),
    (0, 0, 0, "answers.1.text", "", "answer text is empty"),
    (0, 0, 0, "answers", [], "answerable question (is_impossible false) has no answers"),
    (
        0,
        0,
        1,
        "answers",
        [{"text": "세종대왕", "answer_start": 0}],
        "unanswerable question (is_impossible true) has 1",
    ),
    (0, 0, 1, "is_impossible", "yes", "'is_impossible' must be true or false"),
    (1, 0, 0, "answers.0", {"text": "내일"}, "missing key 'answer_start'"),
    (1, 0, 0, "question_type", "2", "'question_type' must be an integer"),
]


@pytest.mark.parametrize(("a", "p", "q", "key", "value", "fragment"), MRC_ERRORS)
def test_malformed_mrc_question(tmp_path, a, p, q, key, value, fragment):
    data = copy.deepcopy(MRC_OFFICIAL)
    qa = data["data"][a]["paragraphs"][p]["qas"][q]
    _set_path(qa, key, value)
    path = write_json(tmp_path, data)
    raises_at(lambda: mrc.read(path), path, f"record {qa['guid']}", fragment)


def test_mrc_duplicate_guid_names_both_positions(tmp_path):
    data = copy.deepcopy(MRC_OFFICIAL)
    data["data"][1]["paragraphs"][0]["qas"][0]["guid"] = "mrc-t-1"
    path = write_json(tmp_path, data)
    raises_at(
        lambda: mrc.read(path),
        path,
        "record data[1].paragraphs[0].qas[0]",
        "duplicate guid 'mrc-t-1' (first seen at record data[0].paragraphs[0].qas[0])",
    )


def test_mrc_structure_errors_name_the_position(tmp_path):
    data = copy.deepcopy(MRC_OFFICIAL)
    del data["data"][1]["paragraphs"][0]["context"]
    path = write_json(tmp_path, data)
    raises_at(lambda: mrc.read(path), path, "record data[1].paragraphs[0]", "missing key 'context'")
    data = copy.deepcopy(MRC_OFFICIAL)
    del data["data"][1]["paragraphs"][0]["qas"][0]["guid"]
    path = write_json(tmp_path, data)
    raises_at(lambda: mrc.read(path), path, "record data[1].paragraphs[0].qas[0]", "missing key 'guid'")


# ------------------------------------------------------------------ malformed: TSV rows
NER_ERRORS = [
    # (sentence index, replacement rows, line, fragment)
    (0, ["철\tB-PS", "수I-PS", "가\tO"], 8, "no tab"),
    (0, ["철\tB-PS", "수\tB-XX"], 8, "unknown NER tag 'B-XX'"),
    (0, ["철수\tB-PS"], 7, "exactly one character, got '철수'"),
    (0, ["\tO"], 7, "exactly one character, got ''"),
    (0, ["철\tB-PS", "수\tI-PS\tO"], 8, "has 3 columns"),
]


@pytest.mark.parametrize(("index", "rows", "line", "fragment"), NER_ERRORS)
def test_malformed_ner_row(tmp_path, index, rows, line, fragment):
    path = write_text(tmp_path, ner_tsv(with_rows(NER_SENTENCES, index, rows)), "ner.tsv")
    raises_at(lambda: ner.read(path), path, f"line {line}", fragment)


def test_ner_row_splits_on_first_tab_only_and_keeps_quotes(tmp_path):
    # the quote characters of sentence 2 are ordinary characters: no CSV quoting
    assert ner.read(write_text(tmp_path, ner_tsv(), "ner.tsv"))[1]["text"] == '"봄" 12:30'


@pytest.mark.parametrize(
    ("cut_rows", "line", "fragment"),
    [
        # byte prefixes of sentence 2: the file ends inside it (no blank line, no newline)
        (['"\tO', "봄\tO", '"\tO', " \tO", "1\tB-TI"], 19, "cut off at the end of the file"),
        (['"\tO', "봄\tO", '"\tO', " \tO", "1\tB-"], 19, "unknown NER tag 'B-'"),
        (['"\tO', "봄\tO", '"\tO', " \tO", "1"], 19, "no tab"),
        (['"\tO', "봄\tO", '"\tO', " \tO", "1\t"], 19, "unknown NER tag ''"),
    ],
)
def test_ner_truncated_last_sentence(tmp_path, cut_rows, line, fragment):
    path = write_text(tmp_path, ner_tsv(with_rows(NER_SENTENCES, 1, cut_rows), tail=""), "ner.tsv")
    raises_at(lambda: ner.read(path), path, f"line {line}", fragment)


def test_ner_truncated_inside_a_character(tmp_path):
    raw = ner_tsv(tail="").encode("utf-8")
    path = tmp_path / "ner.tsv"
    path.write_bytes(raw[: raw.rindex("봄".encode()) + 1])  # ends inside the 3 UTF-8 bytes of 봄 (line 16)
    raises_at(lambda: ner.read(path), path, "line 16", "not valid UTF-8")


def test_ner_rows_and_headers_out_of_place(tmp_path):
    path = write_text(tmp_path, NER_HEAD + "철\tB-PS\n\n" + ner_tsv()[len(NER_HEAD) :], "ner.tsv")
    raises_at(lambda: ner.read(path), path, "line 6", "row outside a sentence")
    path = write_text(
        tmp_path, NER_HEAD + "## klue-ner-empty\t빈 문장\n\n" + ner_tsv()[len(NER_HEAD) :], "ner.tsv"
    )
    raises_at(lambda: ner.read(path), path, "line 6", "sentence 'klue-ner-empty' has no rows")
    dup = [NER_SENTENCES[0], (NER_SENTENCES[0][0], *NER_SENTENCES[1][1:])]
    path = write_text(tmp_path, ner_tsv(dup), "ner.tsv")
    raises_at(
        lambda: ner.read(path),
        path,
        "line 14",
        "duplicate guid 'klue-ner-v1_dev_00000-test' (first seen at line 6)",
    )
    path = write_text(tmp_path, NER_HEAD, "ner.tsv")
    raises_at(lambda: ner.read(path), path, "holds no records")


DP_ERRORS = [
    # (sentence index, replacement rows, line, fragment)
    (
        1,
        ["1\t아주\t아주\tMAG\t2\tAP", "3\t좋다\t좋 다\tVA+EF\t0\tVP"],
        13,
        "INDEX 3 out of order: expected 2",
    ),
    (
        1,
        ["1\t아주\t아주\tMAG\t2\tAP", "x\t좋다\t좋 다\tVA+EF\t0\tVP"],
        13,
        "INDEX must be an integer, got 'x'",
    ),
    (
        1,
        ["1\t아주\t아주\tMAG\troot\tAP", "2\t좋다\t좋 다\tVA+EF\t0\tVP"],
        12,
        "HEAD must be an integer, got 'root'",
    ),
    (1, ["1\t아주\t아주\tMAG\t3\tAP", "2\t좋다\t좋 다\tVA+EF\t0\tVP"], 12, "HEAD 3 is out of range 0..2"),
    (1, ["1\t아주\t아주\tMAG\t-1\tAP", "2\t좋다\t좋 다\tVA+EF\t0\tVP"], 12, "HEAD -1 is out of range 0..2"),
    (1, ["1\t아주\t아주\tMAG\t2\tAP", "2\t좋다\t좋 다\tVA+EF\t0\tVP_XX"], 13, "unknown DEPREL 'VP_XX'"),
    (1, ["1\t아주\t아주\tMAG\t2", "2\t좋다\t좋 다\tVA+EF\t0\tVP"], 12, "expected 6 tab-separated fields"),
    (1, ["1\t\t아주\tMAG\t2\tAP", "2\t좋다\t좋 다\tVA+EF\t0\tVP"], 12, "WORD_FORM is empty"),
]


@pytest.mark.parametrize(("index", "rows", "line", "fragment"), DP_ERRORS)
def test_malformed_dp_row(tmp_path, index, rows, line, fragment):
    path = write_text(tmp_path, dp_tsv(with_rows(DP_SENTENCES, index, rows)), "dp.tsv")
    raises_at(lambda: dp.read(path), path, f"line {line}", fragment)


def test_dp_does_not_require_exactly_one_root(tmp_path):
    rows = ["1\t아주\t아주\tMAG\t0\tAP", "2\t좋다\t좋 다\tVA+EF\t0\tVP"]
    records = dp.read(write_text(tmp_path, dp_tsv(with_rows(DP_SENTENCES, 1, rows)), "dp.tsv"))
    assert records[1]["heads"] == [0, 0]


@pytest.mark.parametrize(
    ("cut_rows", "line", "fragment"),
    [
        (
            ["1\t아주\t아주\tMAG\t2\tAP"],
            12,
            "cut off at the end of the file: 1 word rows for a header sentence of 2",
        ),
        (["1\t아주\t아주\tMAG\t2\tAP", "2\t좋다\t좋 다\tVA+"], 13, "expected 6 tab-separated fields"),
        (["1\t아주\t아주\tMAG\t2\tAP", "2\t좋다\t좋 다\tVA+EF\t0\tV"], 13, "unknown DEPREL 'V'"),
    ],
)
def test_dp_truncated_last_sentence(tmp_path, cut_rows, line, fragment):
    path = write_text(tmp_path, dp_tsv(with_rows(DP_SENTENCES, 1, cut_rows), tail=""), "dp.tsv")
    raises_at(lambda: dp.read(path), path, f"line {line}", fragment)


def test_dp_terminated_sentence_is_not_checked_against_its_header(tmp_path):
    # only a sentence the file ends inside can be a cut-off prefix; the release itself has sentences
    # whose header text differs from the words (7 in dev), which must still read
    sentences = [(DP_SENTENCES[0][0], "철수가  밥을 먹었다 !", DP_SENTENCES[0][2]), DP_SENTENCES[1]]
    records = dp.read(write_text(tmp_path, dp_tsv(sentences), "dp.tsv"))
    assert records[0]["words"] == ["철수가", "밥을", "먹었다."]


# ------------------------------------------------------------------- hub-schema round trips
@pytest.fixture(scope="module")
def datasets_module():
    datasets = pytest.importorskip(
        "datasets", reason="datasets is a declared dependency; needed for hub exports"
    )
    datasets.disable_progress_bars()
    return datasets


def _export(datasets: Any, rows: list[dict[str, Any]], fmt: str, tmp_path: Path) -> Path:
    ds = datasets.Dataset.from_list(rows)
    if fmt == "parquet":
        ds.to_parquet(str(tmp_path / "rows.parquet"))
        return tmp_path / "rows.parquet"
    if fmt in ("jsonl", "json"):
        ds.to_json(str(tmp_path / f"rows.{fmt}"), force_ascii=False)
        return tmp_path / f"rows.{fmt}"
    ds.save_to_disk(str(tmp_path / "saved"))
    if fmt == "disk":
        return tmp_path / "saved"
    return next((tmp_path / "saved").glob("*.arrow"))


HUB_CASES = {
    "ynat": (ynat, YNAT_HUB, YNAT_EXPECTED),
    "nli": (nli, NLI_HUB, NLI_EXPECTED),
    "sts": (sts, STS_HUB, STS_EXPECTED),
    "re": (re_reader, RE_HUB, RE_EXPECTED),
    "mrc": (mrc, MRC_HUB, MRC_EXPECTED),
    "wos": (wos, WOS_HUB, WOS_EXPECTED),
    "ner": (ner, NER_HUB, [{**r, "guid": f"ner-{i}"} for i, r in enumerate(NER_EXPECTED)]),
    "dp": (dp, DP_HUB, [{**r, "guid": f"dp-{i}"} for i, r in enumerate(DP_EXPECTED)]),
}


@pytest.mark.parametrize("fmt", ["parquet", "arrow", "disk", "jsonl", "json"])
@pytest.mark.parametrize("task", sorted(HUB_CASES))
def test_hub_export_round_trip(datasets_module, tmp_path, task, fmt):
    reader, rows, expected = HUB_CASES[task]
    path = _export(datasets_module, rows, fmt, tmp_path)
    assert reader.read(path, split="validation") == expected


@pytest.mark.parametrize("task", sorted(HUB_CASES))
def test_from_hub_rows_accepts_plain_dicts(task):
    reader, rows, expected = HUB_CASES[task]
    assert reader.from_hub_rows(iter(copy.deepcopy(rows)), source="mem", split="validation") == expected


def test_hub_ner_and_dp_guids_are_positions_whatever_the_split():
    """predict reads a file as "test", score as "dev": both must name record i the same."""
    for split in ("train", "dev", "test"):
        assert [r["guid"] for r in ner.from_hub_rows(NER_HUB, source="mem", split=split)] == [
            "ner-0",
            "ner-1",
        ]
        assert [r["guid"] for r in dp.from_hub_rows(DP_HUB, source="mem", split=split)] == ["dp-0", "dp-1"]


HUB_ERRORS = [
    # (reader, rows, index, dotted key, value, record, fragment)
    (ynat, YNAT_HUB, 1, "label", 7, "record ynat-t-1", "id 7 is out of range 0..6"),
    (ynat, YNAT_HUB, 1, "label", -1, "record ynat-t-1", "-1 (no gold label)"),
    (ynat, YNAT_HUB, 1, "label", "IT과학", "record ynat-t-1", "'label' must be an integer"),
    (nli, NLI_HUB, 0, "label", 3, "record nli-t-0", "out of range 0..2"),
    (re_reader, RE_HUB, 0, "label", 30, "record re-t-0", "out of range 0..29"),
    (ner, NER_HUB, 1, "ner_tags.0", 13, "record #1", "ner_tags[0] = 13"),
    (ner, NER_HUB, 1, "ner_tags", [12], "record #1", "1 ner_tags for 9 tokens"),
    (ner, NER_HUB, 0, "tokens.3", "  ", "record #0", "tokens[3] must be exactly one character"),
    (dp, DP_HUB, 0, "head.1", 4, "record #0", "head[1] = 4 is not a word index 0..3"),
    (dp, DP_HUB, 0, "deprel.1", "OBJ", "record #0", "deprel[1] 'OBJ'"),
    (dp, DP_HUB, 0, "index", [1, 3, 2], "record #0", "index must run 1..3"),
    (dp, DP_HUB, 1, "lemma", ["아주"], "record #1", "lemma has 1 items for 2 words"),
    (mrc, MRC_HUB, 0, "answers.answer_start", [6], "record mrc-t-1", "1 answer_start values for 2 texts"),
    (
        mrc,
        MRC_HUB,
        2,
        "answers.answer_start",
        [30],
        "record mrc-t-3",
        "not within 20 characters of answer_start 30",
    ),
    (mrc, MRC_HUB, 2, "answers", {"answer_start": [], "text": []}, "record mrc-t-3", "has no answers"),
    (
        wos,
        WOS_HUB,
        0,
        "dialogue.1.state",
        ["식당-이름-소반"],
        "record wos-t-0",
        "turn 1: a system turn carries",
    ),
]


@pytest.mark.parametrize(("reader", "rows", "index", "key", "value", "where", "fragment"), HUB_ERRORS)
def test_malformed_hub_row(tmp_path, reader, rows, index, key, value, where, fragment):
    bad = copy.deepcopy(rows)
    _set_path(bad[index], key, value)
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in bad) + "\n", encoding="utf-8")
    raises_at(lambda: reader.read(path), path, where, fragment)


def test_hub_unlabeled_rows_may_carry_minus_one():
    rows = [{**r, "label": -1} for r in YNAT_HUB]
    assert [r["label"] for r in ynat.from_hub_rows(rows, source="mem", labeled=False)] == [None, None, None]


def test_hub_mrc_answer_shifted_by_stripping_is_relocated():
    # HF strips answer text and context but keeps answer_start: " 1443년" at 5 becomes "1443년" at 5
    row = {**MRC_HUB[0], "answers": {"answer_start": [5], "text": ["1443년"]}}
    (record,) = mrc.from_hub_rows([row], source="mem")
    assert record["answers"] == [{"text": "1443년", "start": 6}]


def test_hub_jsonl_bad_line_is_named(tmp_path):
    path = write_text(tmp_path, json.dumps(YNAT_HUB[0], ensure_ascii=False) + '\n{"guid": \n', "rows.jsonl")
    raises_at(lambda: ynat.read(path), path, "line 2", "invalid JSON")


def test_single_row_json_object_is_a_hub_row(tmp_path):
    assert ynat.read(write_json(tmp_path, YNAT_HUB[0])) == YNAT_EXPECTED[:1]


def test_dataset_dict_folder_needs_a_split(datasets_module, tmp_path):
    dd = datasets_module.DatasetDict({"validation": datasets_module.Dataset.from_list(YNAT_HUB)})
    dd.save_to_disk(str(tmp_path / "dd"))
    raises_at(lambda: ynat.read(tmp_path / "dd"), tmp_path / "dd", "DatasetDict with splits (validation)")
    assert ynat.read(tmp_path / "dd" / "validation") == YNAT_EXPECTED


def test_unreadable_exports(tmp_path):
    for name in ("bad.parquet", "bad.arrow"):
        path = write_text(tmp_path, "not columnar data\n", name)
        raises_at(lambda path=path: ynat.read(path), path, "not a readable")
    (tmp_path / "folder").mkdir()
    raises_at(lambda: ynat.read(tmp_path / "folder"), tmp_path / "folder", "save_to_disk")


def test_hub_spec_loads_through_datasets(datasets_module, monkeypatch):
    calls = []

    def fake_load_dataset(repo, config, split):
        calls.append((repo, config, split))
        return datasets_module.Dataset.from_list(NER_HUB)

    monkeypatch.setattr(datasets_module, "load_dataset", fake_load_dataset)
    records = ner.read("hub:klue/klue/ner/validation", split="validation")
    assert calls == [("klue/klue", "ner", "validation")]
    assert records == HUB_CASES["ner"][2]


def test_hub_spec_without_network_is_an_input_error(datasets_module, monkeypatch):
    def offline(*args, **kwargs):
        raise ConnectionError("no route to huggingface.co")

    monkeypatch.setattr(datasets_module, "load_dataset", offline)
    raises_at(
        lambda: ynat.read("hub:klue/klue/ynat/validation"),
        "hub:klue/klue/ynat/validation",
        "could not load",
        "no route",
    )


def test_hub_spec_must_match_the_task_and_be_well_formed():
    raises_at(
        lambda: ner.read("hub:klue/klue/ynat/validation"),
        "hub:klue/klue/ynat/validation",
        "does not match task 'ner'",
    )
    raises_at(lambda: ynat.read("hub:klue/ynat"), "hub:klue/ynat", "hub:<repo>/<config>/<split>")


# ------------------------------------------------------------------------ files of another task
SAMPLES = Path(__file__).parent.parent / "mtl" / "samples"


@pytest.mark.parametrize("labeled", [True, False])
def test_a_json_file_of_another_task_is_named_as_that_task(labeled: bool) -> None:
    path = SAMPLES / "nli_dev.json"
    error = raises_at(lambda: ynat.read(path, labeled=labeled), path, "missing key 'title'")
    assert "looks like NLI data" in str(error) and "--task nli" in str(error), error
    path = SAMPLES / "sts_dev.json"
    error = raises_at(lambda: nli.read(path, labeled=labeled), path, "looks like STS data")


@pytest.mark.parametrize("labeled", [True, False])
def test_a_dp_tsv_read_as_ner_fails_on_its_first_row(labeled: bool) -> None:
    path = SAMPLES / "dp_dev.tsv"
    lines = path.read_text(encoding="utf-8").splitlines()
    first_row = next(i for i, line in enumerate(lines, start=1) if line and not line.startswith("## "))
    error = raises_at(lambda: ner.read(path, labeled=labeled), path, "6 columns", "DP")
    assert error.record == first_row
