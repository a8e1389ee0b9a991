"""WoS model side: slot schema, dialogue inputs, value targets, decoding, overfit, real dev data.

The dialogues and the small ontology are invented for these tests. Real-data tests need KLUE_DATA_DIR.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support import overfit

from mtl.batching.featurize import featurize
from mtl.config import TaskConfig
from mtl.data.io import write_jsonl
from mtl.data.labels import WOS_GATES
from mtl.errors import KlueInputError
from mtl.evaluation.score_file import score
from mtl.modeling.tokenizer import build_offline_tokenizer
from mtl.samples import SAMPLES_DIR, sample_path
from mtl.tasks.wos import WosTask, parse_time, slot_schema

NONE, DONTCARE, YES, NO, VALUE = (WOS_GATES.index(g) for g in ("none", "dontcare", "yes", "no", "value"))
CLS, SEP = 0, 2

NAMES = ["모리 우동", "바다향기", *(f"골목식당{i}호" for i in range(20))]  # 22 names: an open slot
ONTOLOGY = {
    "식당-이름": ["none", "dontcare", *NAMES],
    "식당-예약 시간": ["none", "dontcare", "18:30", "12:00", "09:15"],
    "식당-지역": ["none", "dontcare", "서울 동쪽", "서울 서쪽"],
    "식당-예약 명수": ["none", "dontcare", "1", "2", "3", "4"],
    "식당-주차 가능": ["none", "dontcare", "yes", "no"],
}
# sorted slot order: 식당-예약 명수, 식당-예약 시간, 식당-이름, 식당-주차 가능, 식당-지역
PEOPLE, TIME_SLOT, NAME, PARKING, AREA = range(5)


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return build_offline_tokenizer()


@pytest.fixture(scope="module")
def ontology_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("wos") / "ontology.json"
    path.write_text(json.dumps(ONTOLOGY, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.fixture
def make_task(tokenizer, ontology_path):
    def make(max_length: int = 256, **settings: Any) -> WosTask:
        task = WosTask()
        task.setup(TaskConfig(max_length=max_length, ontology=str(ontology_path), **settings), tokenizer)
        return task

    return make


def user(text: str, *state: str) -> dict[str, Any]:
    return {"role": "user", "text": text, "state": list(state)}


def sys_(text: str) -> dict[str, Any]:
    return {"role": "sys", "text": text, "state": None}


def dialogue(guid: str, *turns: dict[str, Any]) -> dict[str, Any]:
    return {"guid": guid, "domains": ["식당"], "dialogue": list(turns)}


def features_of(task: WosTask, records: list[dict[str, Any]]) -> dict[str, list[Any]]:
    batch = {key: [r[key] for r in records] for key in ("guid", "domains", "dialogue")}
    return task.featurize(batch, list(range(len(records))))


def joined(record: dict[str, Any]) -> str:
    """The dialogue string the token offsets index into."""
    return "\n".join(t["text"] for t in record["dialogue"])


def span_text(record: dict[str, Any], feats: dict[str, list[Any]], row: int, slot: int) -> str:
    start, end = feats["span_starts"][row][slot], feats["span_ends"][row][slot]
    return joined(record)[feats["token_starts"][row][start] : feats["token_ends"][row][end]]


def oracle_outputs(feats: Any) -> list[dict[str, np.ndarray]]:
    """What a perfect head predicts: the feature's own targets."""
    columns = ("gate_labels", "span_starts", "span_ends", "value_labels")
    rows = zip(*(feats[c][:] for c in columns), strict=True)
    return [
        {
            "gate": np.asarray(g),
            "span_start": np.asarray(s),
            "span_end": np.asarray(e),
            "value": np.asarray(v),
        }
        for g, s, e, v in rows
    ]


BOOKING = dialogue(
    "d0",
    user("서울 동쪽에 있는 식당을 찾아요. 두 명이 갈 거예요.", "식당-지역-서울 동쪽", "식당-예약 명수-2"),
    sys_("모리우동이라는 곳이 있어요. 주차도 됩니다."),
    user(
        "모리 우동으로 저녁 6시 반에 예약해 주세요. 주차는 상관없어요.",
        "식당-지역-서울 동쪽",
        "식당-예약 명수-2",
        "식당-이름-모리 우동",
        "식당-예약 시간-18:30",
        "식당-주차 가능-dontcare",
    ),
    sys_("예약되었습니다. 더 필요하신 게 있나요?"),
    user(
        "모리 우동 말고 바다향기에 자리가 있나요? 주차는 꼭 돼야 해요.",
        "식당-지역-서울 동쪽",
        "식당-예약 명수-2",
        "식당-이름-바다향기",
        "식당-예약 시간-18:30",
        "식당-주차 가능-yes",
    ),
)


# -- slot schema -----------------------------------------------------------------------------------
def test_slot_schema_sorts_slots_and_classifies_them():
    res = slot_schema(ONTOLOGY)
    assert res["slots"] == ["식당-예약 명수", "식당-예약 시간", "식당-이름", "식당-주차 가능", "식당-지역"]
    assert res["kinds"] == ["categorical", "time", "open", "open", "categorical"]
    assert res["values"][PEOPLE] == ["1", "2", "3", "4"]
    assert res["values"][AREA] == ["서울 동쪽", "서울 서쪽"]
    assert res["values"][PARKING] == []  # yes/no are gates


def test_head_args_and_resources_come_from_the_ontology(make_task):
    task = make_task(max_answer_length=12)
    assert task.head_kind == "slot_gate"
    assert task.head_args() == {
        "num_slots": 5,
        "num_gates": 5,
        "value_sizes": [4, 0, 0, 0, 2],
        "max_value_length": 12,
    }
    assert json.loads(json.dumps(task.resources, ensure_ascii=False)) == task.resources


def test_without_an_ontology_nor_a_train_file_the_error_names_the_key(tokenizer):
    with pytest.raises(KlueInputError, match="tasks.wos.ontology"):
        WosTask().setup(TaskConfig(max_length=64), tokenizer)


def test_a_missing_ontology_file_names_the_key(tokenizer, tmp_path):
    with pytest.raises(KlueInputError, match=r"tasks\.wos\.ontology.*file not found"):
        WosTask().setup(TaskConfig(max_length=64, ontology=str(tmp_path / "ontology.json")), tokenizer)


def test_without_an_ontology_the_schema_comes_from_the_training_states(tokenizer, tmp_path):
    """Not the bundled sample ontology: only slots of the train file; rarely seen slots are spans."""
    train = tmp_path / "wos_train.json"
    train.write_text(json.dumps([BOOKING], ensure_ascii=False), encoding="utf-8")
    task = WosTask()
    task.setup(TaskConfig(max_length=256, train=str(train)), tokenizer)
    seen = {i.rsplit("-", 1)[0] for t in BOOKING["dialogue"] for i in t["state"] or ()}
    assert task.resources["slots"] == sorted(seen)
    # a handful of mentions cannot show a closed set: every slot is read from the text
    assert set(task.resources["kinds"]) <= {"open", "time"}
    # a restaurant name never seen in training is still a span target and decodes to itself
    unseen = json.loads(json.dumps(BOOKING, ensure_ascii=False).replace("바다향기", "해물나라"))
    feats = features_of(task, [unseen])
    preds = task.decode([unseen], feats, oracle_outputs(feats))
    assert "식당-이름-해물나라" in preds[-1]["state"]


def test_a_derived_slot_seen_often_per_value_is_categorical():
    from mtl.tasks.wos import derived_schema

    schema = derived_schema({"숙소-가격대": {"저렴": 30, "비쌈": 25}, "식당-이름": {"모리 우동": 3}})
    assert schema["slots"] == ["숙소-가격대", "식당-이름"]
    assert schema["kinds"] == ["categorical", "open"]


def test_a_checkpoint_decodes_without_the_ontology_file(make_task, tokenizer, tmp_path):
    task = make_task()
    feats = features_of(task, [BOOKING])
    saved = json.loads(json.dumps(task.resources, ensure_ascii=False))
    restored = WosTask()
    restored.setup(TaskConfig(max_length=256, ontology=str(tmp_path / "gone.json")), tokenizer, saved)
    assert restored.head_args() == task.head_args()
    preds = restored.decode([BOOKING], feats, oracle_outputs(feats))
    assert [set(p["state"]) for p in preds] == [set(t["state"]) for t in BOOKING["dialogue"][::2]]


@pytest.mark.parametrize(
    "content",
    ['["not", "a", "mapping"]', '{"식당이름": ["none"]}', '{"식당-이름": "모리 우동"}', "{}"],
)
def test_a_malformed_ontology_is_an_input_error(tokenizer, tmp_path, content):
    path = tmp_path / "ontology.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(KlueInputError, match="ontology.json"):
        WosTask().setup(TaskConfig(max_length=64, ontology=str(path)), tokenizer)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12시 55분에 갈게요", "12:55"),
        ("1시22분", "01:22"),
        ("오후 1시 40분이요", "13:40"),
        ("밤 11시", "23:00"),
        ("저녁 6시 반", "18:30"),
        ("다섯시 출발", "05:00"),
        ("열두시 반", "12:30"),
        ("18:00", "18:00"),
        ("9 : 05", "09:05"),
        ("세 시간 걸려요", None),
        ("3시간 뒤에요", None),
        ("예약해 주세요", None),
    ],
)
def test_parse_time(text, expected):
    assert parse_time(text) == expected


# -- featurization ---------------------------------------------------------------------------------
def test_one_feature_per_user_turn_with_the_dialogue_so_far(make_task):
    task = make_task()
    feats = features_of(task, [BOOKING])
    assert feats["example_index"] == [0, 0, 0]
    assert feats["turn"] == [0, 2, 4]
    text = joined(BOOKING)
    for row, turn in enumerate(feats["turn"]):
        ids, mask = feats["input_ids"][row], feats["span_mask"][row]
        assert ids[0] == CLS and ids[-1] == SEP
        assert ids.count(SEP) == turn + 1  # one [SEP] after each turn so far
        assert [i in (CLS, SEP) for i in ids] == [m == 0 for m in mask]
        # the text tokens spell the turns so far, in order (the offline tokenizer has one per character)
        pieces = [
            text[s:e]
            for s, e, m in zip(feats["token_starts"][row], feats["token_ends"][row], mask, strict=True)
            if m
        ]
        prefix = "\n".join(t["text"] for t in BOOKING["dialogue"][: turn + 1])
        assert "".join(pieces) == prefix.replace(" ", "").replace("\n", "")


def test_targets_gate_span_and_categorical_value(make_task):
    task = make_task()
    feats = features_of(task, [BOOKING])
    first, second, third = 0, 1, 2
    assert feats["gate_labels"][first] == [VALUE, NONE, NONE, NONE, VALUE]
    assert feats["value_labels"][first] == [1, -100, -100, -100, 0]  # "2" of 1..4, 서울 동쪽
    assert feats["span_starts"][first] == [-100] * 5
    assert feats["gate_labels"][second] == [VALUE, VALUE, VALUE, DONTCARE, VALUE]
    assert span_text(BOOKING, feats, second, TIME_SLOT) == "저녁 6시 반"
    assert span_text(BOOKING, feats, second, NAME) == "모리 우동"
    assert feats["value_labels"][second][TIME_SLOT] == -100  # a time slot is a span, not a choice
    assert feats["gate_labels"][third] == [VALUE, VALUE, VALUE, YES, VALUE]
    assert feats["span_starts"][third][PARKING] == -100
    assert span_text(BOOKING, feats, third, NAME) == "바다향기"


def test_span_target_is_the_most_recent_occurrence(make_task):
    record = dialogue(
        "d1",
        user("바다향기 좋아요?", "식당-이름-바다향기"),
        sys_("네, 바다향기는 평이 좋아요."),
        user("그럼 바다향기로 할게요.", "식당-이름-바다향기"),
    )
    task = make_task()
    feats = features_of(task, [record])
    text = joined(record)
    starts = [feats["token_starts"][row][feats["span_starts"][row][NAME]] for row in range(2)]
    assert starts == [0, text.rindex("바다향기")]
    assert [span_text(record, feats, row, NAME) for row in range(2)] == ["바다향기", "바다향기"]


def test_value_written_without_its_spaces_is_found_and_decoded_in_the_ontology_spelling(make_task):
    record = dialogue("d2", sys_("모리우동 어떠세요?"), user("거기로 할게요.", "식당-이름-모리 우동"))
    task = make_task()
    feats = features_of(task, [record])
    assert span_text(record, feats, 0, NAME) == "모리우동"
    (pred,) = task.decode([record], feats, oracle_outputs(feats))
    assert pred == {"guid": "d2", "turn": 1, "state": ["식당-이름-모리 우동"]}


def test_values_that_cannot_be_recovered_keep_the_gate_but_no_value_target(make_task):
    record = dialogue(
        "d3",
        user(
            "어디든 좋은 곳으로 다섯 명 예약해 주세요.",
            "식당-이름-하늘정원",
            "식당-예약 명수-5",
            "식당-예약 시간-20:00",
        ),
    )
    task = make_task()
    feats = features_of(task, [record])
    assert feats["gate_labels"][0] == [VALUE, VALUE, VALUE, NONE, NONE]
    assert feats["value_labels"][0][PEOPLE] == -100  # "5" is not among the ontology's 1..4
    assert feats["span_starts"][0][NAME] == -100 and feats["span_starts"][0][TIME_SLOT] == -100


def test_left_truncation_keeps_the_current_turn_and_drops_old_values(make_task):
    record = dialogue(
        "d4",
        user("바다향기에 가고 싶어요.", "식당-이름-바다향기"),
        sys_("바다향기는 저녁에만 문을 열어요. 점심 영업은 하지 않습니다. 다른 곳도 찾아 드릴까요?"),
        user("아니요, 거기로 저녁 6시 반에 예약해 주세요.", "식당-이름-바다향기", "식당-예약 시간-18:30"),
    )
    task = make_task(max_length=32)
    feats = features_of(task, [record])
    current = record["dialogue"][2]["text"]
    row = 1
    ids = feats["input_ids"][row]
    assert len(ids) == 32 and ids[0] == CLS and ids[-1] == SEP
    text = joined(record)
    kept = [s for s, m in zip(feats["token_starts"][row], feats["span_mask"][row], strict=True) if m]
    assert kept[-1] == len(text) - 1  # the current turn's last character is kept
    assert text.index(current) in kept  # and its first one
    assert ids.count(SEP) == 2  # the system turn is cut on the left, the first user turn is gone
    assert feats["span_starts"][row][NAME] == -100  # "바다향기" only occurred before the window
    assert span_text(record, feats, row, TIME_SLOT) == "저녁 6시 반"


def test_a_current_turn_longer_than_max_length_keeps_its_end(make_task):
    long_turn = "정말 " * 40 + "바다향기로 예약해 주세요."
    record = dialogue("d5", user(long_turn, "식당-이름-바다향기"))
    task = make_task(max_length=24)
    feats = features_of(task, [record])
    ids, mask = feats["input_ids"][0], feats["span_mask"][0]
    assert len(ids) == 24 and ids.count(SEP) == 1
    pieces = [
        long_turn[s:e]
        for s, e, m in zip(feats["token_starts"][0], feats["token_ends"][0], mask, strict=True)
        if m
    ]
    assert "".join(pieces) == long_turn.replace(" ", "")[-22:]
    assert span_text(record, feats, 0, NAME) == "바다향기"


def test_unlabeled_dialogues_get_no_targets_and_every_user_turn_is_predicted(make_task):
    task = make_task()
    record = {
        "guid": "u0",
        "domains": [],
        "dialogue": [{**t, "state": None} for t in BOOKING["dialogue"]],
    }
    feats = featurize(task, [record], progress=False)
    assert set(feats.column_names) == {
        "example_index", "turn", "input_ids", "span_mask", "token_starts", "token_ends",
    }  # fmt: skip
    outputs = [
        {"gate": np.zeros(5, int), "span_start": np.zeros(5, int), "span_end": np.zeros(5, int), "value": np.zeros(5, int)}
        for _ in range(len(feats))
    ]  # fmt: skip
    preds = task.decode([record], feats, outputs)
    assert preds == [{"guid": "u0", "turn": t, "state": []} for t in (0, 2, 4)]


def test_featurize_through_datasets_matches_the_direct_call(make_task):
    task = make_task()
    direct = features_of(task, [BOOKING])
    feats = featurize(task, [BOOKING], progress=False)
    for column in ("input_ids", "span_mask", "gate_labels", "span_starts", "value_labels", "token_starts"):
        assert feats[column][:] == direct[column]


# -- decoding ---------------------------------------------------------------------------------------
def test_decode_reads_gates_values_and_spans(make_task):
    task = make_task()
    feats = features_of(task, [BOOKING])
    row = 1
    starts, ends = feats["span_starts"][row], feats["span_ends"][row]
    out = {
        "gate": np.array([VALUE, VALUE, VALUE, NO, VALUE]),
        "span_start": np.array([0, starts[TIME_SLOT], starts[NAME], 5, 0]),
        "span_end": np.array([0, ends[TIME_SLOT], ends[NAME], 3, 0]),
        "value": np.array([3, -100, -100, -100, 1]),
    }
    blank = {k: np.zeros(5, int) for k in out}
    preds = task.decode([BOOKING], feats, [blank, out, blank])
    assert set(preds[1]["state"]) == {
        "식당-예약 명수-4",
        "식당-예약 시간-18:30",  # "저녁 6시 반" normalised
        "식당-이름-모리 우동",
        "식당-주차 가능-no",
        "식당-지역-서울 서쪽",
    }
    assert preds[0]["state"] == [] and preds[2]["state"] == []


def test_decode_drops_empty_and_invalid_values(make_task):
    task = make_task()
    feats = features_of(task, [BOOKING])
    out = {
        "gate": np.array([VALUE, VALUE, VALUE, 7, VALUE]),  # 7: not a gate
        "span_start": np.array([0, 9, -100, 0, 0]),
        "span_end": np.array([0, 3, -100, 0, 0]),  # start > end, no span
        "value": np.array([-100, -100, -100, -100, 2]),  # 2: past 서울 서쪽
    }
    preds = task.decode([BOOKING], feats, [out, out, out])
    assert [p["state"] for p in preds] == [[], [], []]


def test_decode_of_random_outputs_is_always_well_formed(make_task):
    task = make_task()
    records = [
        BOOKING,
        dialogue("d6", sys_("안녕하세요."), user("안녕하세요.")),
        dialogue("d7", sys_("어서 오세요.")),
    ]
    feats = featurize(task, records, progress=False)
    rng = np.random.default_rng(0)
    for _ in range(20):
        outputs = [
            {
                "gate": rng.integers(0, 5, 5),
                "span_start": rng.integers(-100, 80, 5),
                "span_end": rng.integers(-100, 80, 5),
                "value": rng.integers(-100, 5, 5),
            }
            for _ in range(len(feats))
        ]
        preds = task.decode(records, feats, outputs)
        gold = task.gold_units(records)
        assert [task.key_of(p) for p in preds] == list(gold)
        assert all(task.check_prediction(p, gold[task.key_of(p)]) is None for p in preds)


# -- round trips ------------------------------------------------------------------------------------
def test_round_trip_of_hand_written_dialogues_scores_100(make_task):
    task = make_task()
    records = [
        BOOKING,
        dialogue(
            "d8",
            user("안녕하세요."),
            sys_("무엇을 도와드릴까요?"),
            user("서울 서쪽 식당이요.", "식당-지역-서울 서쪽"),
        ),
        dialogue(
            "d9",
            user(
                "오전 9시 15분에 세 명이요. 바다향기로요.",
                "식당-예약 시간-09:15",
                "식당-예약 명수-3",
                "식당-이름-바다향기",
            ),
        ),
    ]
    feats = featurize(task, records, progress=False)
    preds = task.decode(records, feats, oracle_outputs(feats))
    gold = task.gold_units(records)
    by_key = {task.key_of(p): p for p in preds}
    metrics = task.compute_metrics(list(gold.values()), [by_key[k] for k in gold])
    assert metrics == {"joint_goal_accuracy": pytest.approx(100.0), "slot_f1": pytest.approx(100.0)}


@pytest.mark.parametrize("split", ["train", "dev"])
def test_round_trip_of_bundled_samples_scores_100(tokenizer, split):
    task = WosTask()
    task.setup(TaskConfig(max_length=510, ontology=str(SAMPLES_DIR / "ontology.json")), tokenizer)
    records = task.read(sample_path("wos", split))
    feats = featurize(task, records, progress=False)
    preds = task.decode(records, feats, oracle_outputs(feats))
    gold = task.gold_units(records)
    by_key = {task.key_of(p): p for p in preds}
    metrics = task.compute_metrics(list(gold.values()), [by_key[k] for k in gold])
    assert metrics == {"joint_goal_accuracy": pytest.approx(100.0), "slot_f1": pytest.approx(100.0)}


# -- training ---------------------------------------------------------------------------------------
@pytest.mark.slow
def test_overfit_bundled_train_samples():
    records = WosTask().read(sample_path("wos", "train"))
    # Slow to converge: the slot_gate head starts its slot queries near zero (see the report), so the
    # gates need ~100 epochs of these 97 turns; 160 tokens keep every value of the samples in view.
    metrics, preds = overfit(
        "wos",
        records,
        steps=400,
        lr=2e-3,
        batch_size=16,
        max_length=160,
        ontology=str(SAMPLES_DIR / "ontology.json"),
    )
    assert len(preds) == len(WosTask().gold_units(records))
    assert metrics["joint_goal_accuracy"] >= 95.0, metrics


# -- real data --------------------------------------------------------------------------------------
def real_file(name: str) -> Path:
    root = os.environ.get("KLUE_DATA_DIR")
    if not root:
        pytest.skip("KLUE_DATA_DIR is not set (it names the folder with official/ KLUE files)")
    return Path(root) / "official" / name


@pytest.mark.realdata
def test_real_dev_featurizes_decodes_and_scores(tokenizer, tmp_path):
    gold_path = real_file("wos-v1_dev.subset.json")
    task = WosTask()
    task.setup(TaskConfig(max_length=510, ontology=str(real_file("ontology.json"))), tokenizer)
    assert len(task.resources["slots"]) == 45
    records = task.read(gold_path)
    feats = featurize(task, records, progress=False)
    gold = task.gold_units(records)
    assert len(feats) == len(gold)
    assert max(len(ids) for ids in feats["input_ids"]) <= 510

    # A perfect head: the ceiling of the design on real dev (documented in mtl/tasks/wos.py).
    oracle = task.decode(records, feats, oracle_outputs(feats))
    by_key = {task.key_of(p): p for p in oracle}
    ceiling = task.compute_metrics(list(gold.values()), [by_key[k] for k in gold])
    assert ceiling["joint_goal_accuracy"] >= 93.0 and ceiling["slot_f1"] >= 99.5, ceiling

    rng = np.random.default_rng(0)
    size = len(task.resources["slots"])
    outputs = [
        {
            "gate": rng.integers(0, 5, size),
            "span_start": rng.integers(0, len(ids), size),
            "span_end": rng.integers(0, len(ids), size),
            "value": rng.integers(0, 20, size),
        }
        for ids in feats["input_ids"]
    ]
    pred_path = tmp_path / "wos.jsonl"
    write_jsonl(pred_path, task.decode(records, feats, outputs))
    result = score("wos", gold_path, pred_path)
    assert result["n"] == len(gold)
    assert result["metrics"]["joint_goal_accuracy"] < 5.0
