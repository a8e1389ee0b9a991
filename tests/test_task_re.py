"""KLUE-RE model side: entity markers, featurization, truncation around the entities, decoding.

The sentences are invented for these tests. Real-data tests need KLUE_DATA_DIR.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support import overfit

from mtl.batching.featurize import featurize
from mtl.batching.prepare import add_task_tokens, setup_task
from mtl.config import EncoderConfig, RunConfig, TaskConfig
from mtl.data.io import write_jsonl
from mtl.data.labels import RE_ENTITY_TYPES, RE_LABELS
from mtl.evaluation.score_file import score
from mtl.modeling.tokenizer import build_offline_tokenizer
from mtl.samples import sample_path
from mtl.tasks.re import MARKERS, ReTask, keep_positions, mark_entities


def make_task(**settings: Any) -> ReTask:
    tokenizer = build_offline_tokenizer()
    cfg = RunConfig(
        encoder=EncoderConfig(tokenizer="offline", random_init=True), tasks={"re": TaskConfig(**settings)}
    )
    task = setup_task("re", cfg, tokenizer)
    add_task_tokens(tokenizer, [task])
    return task  # type: ignore[return-value]


def entity(sentence: str, word: str, etype: str, occurrence: int = 0) -> dict[str, Any]:
    start = -1
    for _ in range(occurrence + 1):
        start = sentence.index(word, start + 1)
    return {"word": word, "start": start, "end": start + len(word) - 1, "type": etype}


def record(guid: str, sentence: str, subj: tuple, obj: tuple, label: int | None = 0) -> dict[str, Any]:
    return {
        "guid": guid,
        "sentence": sentence,
        "subject": entity(sentence, *subj),
        "object": entity(sentence, *obj),
        "label": label,
        "source": "test",
    }


BIRTH = RE_LABELS.index("per:place_of_birth")
RECORDS = [
    record("r0", "강하늘은 목포에서 태어나 서울에서 자랐다.", ("강하늘", "PER"), ("목포", "LOC"), BIRTH),
    # the object comes first in the text
    record(
        "r1",
        "한솔전자의 대표는 박나래이다.",
        ("박나래", "PER"),
        ("한솔전자", "ORG"),
        RE_LABELS.index("per:employee_of"),
    ),
    record(
        "r2",
        "누리제약은 1999년에 세워졌다.",
        ("누리제약", "ORG"),
        ("1999년", "DAT"),
        RE_LABELS.index("org:founded"),
    ),
]


def tokens_between(task: ReTask, ids: list[int], opener: int) -> str:
    """The text the tokenizer sees between an opening marker at ``opener`` and its closer."""
    closers = {task.tokenizer.convert_tokens_to_ids(m) for m in ("[/SUBJ]", "[/OBJ]")}
    end = opener + 1
    while ids[end] not in closers:
        end += 1
    return task.tokenizer.decode(ids[opener + 1 : end]).replace(" ", "")


# -- markers -------------------------------------------------------------------------------------
def test_marker_tokens_cover_every_role_and_type_and_are_single_tokens():
    assert len(MARKERS) == 2 * len(RE_ENTITY_TYPES) + 2
    assert "[SUBJ:PER]" in MARKERS and "[OBJ:NOH]" in MARKERS and "[/SUBJ]" in MARKERS and "[/OBJ]" in MARKERS
    task = make_task()
    assert task.special_tokens == MARKERS
    for marker in MARKERS:
        ids = task.tokenizer(f"가{marker}나", add_special_tokens=False)["input_ids"]
        assert len(ids) == 3 and ids[1] == task.tokenizer.convert_tokens_to_ids(marker)


def test_featurize_without_markers_in_the_tokenizer_is_a_clear_error():
    tokenizer = build_offline_tokenizer()
    cfg = RunConfig(encoder=EncoderConfig(tokenizer="offline", random_init=True), tasks={"re": TaskConfig()})
    task = setup_task("re", cfg, tokenizer)
    with pytest.raises(ValueError, match="add_task_tokens"):
        task.featurize({k: [v] for k, v in RECORDS[0].items()}, [0])


def test_mark_entities_follows_the_text_order():
    r0, r1 = RECORDS[0], RECORDS[1]
    assert mark_entities(r0["sentence"], r0["subject"], r0["object"]) == (
        "[SUBJ:PER]강하늘[/SUBJ]은 [OBJ:LOC]목포[/OBJ]에서 태어나 서울에서 자랐다."
    )
    assert mark_entities(r1["sentence"], r1["subject"], r1["object"]) == (
        "[OBJ:ORG]한솔전자[/OBJ]의 대표는 [SUBJ:PER]박나래[/SUBJ]이다."
    )


@pytest.mark.parametrize(
    ("subject", "obj", "expected"),
    [
        # object inside the subject: nested
        ((0, 3, "ORG"), (2, 3, "ORG"), "[SUBJ:ORG]한솔[OBJ:ORG]전자[/OBJ][/SUBJ]가 컸다"),
        # subject inside the object, same start: the longer span opens first
        ((0, 1, "ORG"), (0, 3, "ORG"), "[OBJ:ORG][SUBJ:ORG]한솔[/SUBJ]전자[/OBJ]가 컸다"),
        # identical spans: the subject is the outer one
        ((0, 3, "ORG"), (0, 3, "ORG"), "[SUBJ:ORG][OBJ:ORG]한솔전자[/OBJ][/SUBJ]가 컸다"),
        # partly overlapping spans: crossing markers, still every marker once
        ((0, 2, "ORG"), (2, 4, "ORG"), "[SUBJ:ORG]한솔[OBJ:ORG]전[/SUBJ]자가[/OBJ] 컸다"),
        # adjacent spans: the first closes before the second opens
        ((0, 1, "ORG"), (2, 3, "ORG"), "[SUBJ:ORG]한솔[/SUBJ][OBJ:ORG]전자[/OBJ]가 컸다"),
        # entity at the very end of the sentence (the baseline's IndexError case)
        ((6, 7, "POH"), (0, 3, "ORG"), "[OBJ:ORG]한솔전자[/OBJ]가 [SUBJ:POH]컸다[/SUBJ]"),
    ],
)
def test_mark_entities_overlapping_and_edge_spans(subject, obj, expected):
    sentence = "한솔전자가 컸다"
    s = {"start": subject[0], "end": subject[1], "type": subject[2]}
    o = {"start": obj[0], "end": obj[1], "type": obj[2]}
    assert mark_entities(sentence, s, o) == expected


def test_overlapping_spans_featurize_and_point_at_their_openers():
    task = make_task()
    sentence = "한솔전자가 컸다"
    rec = {
        "guid": "n",
        "sentence": sentence,
        "subject": {"word": "한솔전자", "start": 0, "end": 3, "type": "ORG"},
        "object": {"word": "전자", "start": 2, "end": 3, "type": "ORG"},
        "label": 0,
        "source": "t",
    }
    feats = featurize(task, [rec], progress=False)
    row = feats[0]
    tokens = task.tokenizer.convert_ids_to_tokens(row["input_ids"])
    assert tokens[row["subject_index"]] == "[SUBJ:ORG]"
    assert tokens[row["object_index"]] == "[OBJ:ORG]"
    assert tokens_between(task, row["input_ids"], row["object_index"]) == "전자"


# -- featurization -------------------------------------------------------------------------------
def test_features_point_at_the_typed_openers_and_carry_labels():
    task = make_task()
    feats = featurize(task, RECORDS, progress=False)
    assert len(feats) == len(RECORDS)
    assert feats["example_index"] == [0, 1, 2]
    assert feats["labels"] == [r["label"] for r in RECORDS]
    for row, rec in zip(feats, RECORDS, strict=True):
        tokens = task.tokenizer.convert_ids_to_tokens(row["input_ids"])
        assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
        assert tokens[row["subject_index"]] == f"[SUBJ:{rec['subject']['type']}]"
        assert tokens[row["object_index"]] == f"[OBJ:{rec['object']['type']}]"
        assert tokens_between(task, row["input_ids"], row["subject_index"]) == rec["subject"]["word"]
        assert tokens_between(task, row["input_ids"], row["object_index"]) == rec["object"]["word"]
        assert sum(t in MARKERS for t in tokens) == 4


def test_unlabeled_records_give_no_label_column():
    task = make_task()
    feats = featurize(task, [{**r, "label": None} for r in RECORDS], progress=False)
    assert "labels" not in feats.column_names
    assert len(feats) == len(RECORDS)


def test_features_collate_into_the_head_batch():
    from mtl.batching.collate import collate

    task = make_task()
    feats = featurize(task, RECORDS, progress=False)
    batch = collate(
        feats[:], pad_token_id=task.tokenizer.pad_token_id, token_fields=task.token_fields,
        item_fields=task.item_fields, pad_values=task.pad_values, skip_fields=task.meta_fields,
    )  # fmt: skip
    assert batch["subject_index"].tolist() == feats["subject_index"]
    assert batch["object_index"].tolist() == feats["object_index"]
    assert batch["labels"].tolist() == feats["labels"]
    assert task.head_kind == "entity_marker" and task.head_args() == {"num_labels": 30}


def long_record(filler: str, gap: str) -> dict[str, Any]:
    sentence = filler + "윤서진은 " + gap + "여수에서 태어났다. " + filler
    return record("long", sentence, ("윤서진", "PER"), ("여수", "LOC", 0), BIRTH)


def test_long_sentence_keeps_both_entities_in_a_window_around_them():
    task = make_task()  # max_length 256, the baseline value
    filler = "아주 오래전 바닷가 마을에는 작은 등대가 하나 있었다. " * 12  # ~370 characters each side
    rec = long_record(filler, "")
    row = featurize(task, [rec], progress=False)[0]
    ids = row["input_ids"]
    assert len(ids) == 256
    tokens = task.tokenizer.convert_ids_to_tokens(ids)
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
    assert sum(t in MARKERS for t in tokens) == 4
    assert tokens_between(task, ids, row["subject_index"]) == "윤서진"
    assert tokens_between(task, ids, row["object_index"]) == "여수"
    # the window is centred on the entities: context on both sides, not only the start of the sentence
    assert 60 < row["subject_index"] < 200
    # and it is one contiguous piece of the marked sentence's tokens
    full = task.tokenizer(
        mark_entities(rec["sentence"], rec["subject"], rec["object"]),
        add_special_tokens=False,
        return_offsets_mapping=True,
    )
    # (with the particles after the closing markers re-attached as ## pieces, tests/test_recipe.py)
    full_ids = task.particle_reattacher()(full["input_ids"], full["offset_mapping"])
    inner = " ".join(map(str, ids[1:-1]))
    assert f" {inner} " in " " + " ".join(map(str, full_ids)) + " "


def test_entities_farther_apart_than_max_length_both_survive():
    task = make_task(max_length=64)
    gap = "그 사이에 아무 관련 없는 이야기가 길게 이어진다. " * 10  # far more than 64 tokens
    rec = long_record("앞부분 문장. " * 5, gap)
    row = featurize(task, [rec], progress=False)[0]
    ids = row["input_ids"]
    assert len(ids) == 64
    tokens = task.tokenizer.convert_ids_to_tokens(ids)
    assert sum(t in MARKERS for t in tokens) == 4
    assert tokens_between(task, ids, row["subject_index"]) == "윤서진"
    assert tokens_between(task, ids, row["object_index"]) == "여수"


def test_keep_positions_priorities():
    # entities fit: one contiguous window, centred (5 tokens of context on each side)
    kept = keep_positions(100, [(40, 45), (50, 52)], 23)
    assert kept.tolist() == list(range(35, 58))
    # near the start: the window slides instead of shrinking
    assert keep_positions(100, [(0, 2), (4, 6)], 10).tolist() == list(range(10))
    # too far apart: both entities, then the gap tokens nearest to them; the middle of the gap is dropped
    kept = keep_positions(100, [(10, 12), (80, 82)], 10).tolist()
    assert kept == [10, 11, 12, 13, 14, 78, 79, 80, 81, 82]
    # a budget smaller than both entities still keeps the four markers
    kept = keep_positions(100, [(10, 30), (50, 70)], 6).tolist()
    assert {10, 30, 50, 70} <= set(kept) and len(kept) == 6


# -- decoding ------------------------------------------------------------------------------------
def oracle_outputs(feats: Any, num_labels: int = 30) -> list[dict[str, np.ndarray]]:
    outputs = []
    for label in feats["labels"]:
        probs = np.full(num_labels, 0.1 / (num_labels - 1), dtype=np.float32)
        probs[label] = 0.9
        outputs.append({"label": np.int64(label), "probs": probs})
    return outputs


def test_round_trip_with_every_relation_scores_100():
    task = make_task()
    people = ["강하늘", "박나래", "윤서진", "오세린", "문지호", "배다온"]
    records = [
        record(f"g{i}", f"{people[i % 6]}와 한솔{i}호는 {i}번째 문장에 함께 나온다.", (people[i % 6], "PER"),
               (f"한솔{i}호", "ORG"), label)
        for i, label in enumerate(list(range(30)) * 2)
    ]  # fmt: skip
    feats = featurize(task, records, progress=False)
    preds = task.decode(records, feats, oracle_outputs(feats))
    assert [p["guid"] for p in preds] == [r["guid"] for r in records]
    assert all(len(p["probs"]) == 30 and isinstance(p["probs"][0], float) for p in preds)
    gold = task.gold_units(records)
    assert all(task.check_prediction(p, gold[p["guid"]]) is None for p in preds)
    metrics = task.compute_metrics(records, preds)
    assert metrics == {"micro_f1": pytest.approx(100.0), "auprc": pytest.approx(100.0)}


def test_decode_gives_a_row_to_a_record_without_features():
    task = make_task()
    feats = featurize(task, RECORDS, progress=False)
    keep = [0, 2]
    sub = {"example_index": [feats["example_index"][i] for i in keep]}
    outputs = [oracle_outputs(feats)[i] for i in keep]
    preds = task.decode(RECORDS, sub, outputs)
    assert [p["guid"] for p in preds] == ["r0", "r1", "r2"]
    assert preds[0]["label"] == "per:place_of_birth" and preds[2]["label"] == "org:founded"
    assert preds[1]["label"] == "no_relation" and sum(preds[1]["probs"]) == pytest.approx(1.0)


# -- training ------------------------------------------------------------------------------------
def test_overfit_bundled_train_samples():
    records = ReTask().read(sample_path("re", "train"))
    metrics, preds = overfit("re", records, steps=60, lr=3e-3, batch_size=16)
    assert len(preds) == len(records)
    assert metrics["micro_f1"] >= 95.0, metrics


# -- real data -----------------------------------------------------------------------------------
def real_file(name: str) -> Path:
    root = os.environ.get("KLUE_DATA_DIR")
    if not root:
        pytest.skip("KLUE_DATA_DIR is not set (it names the folder with official/ KLUE files)")
    return Path(root) / "official" / name


@pytest.mark.realdata
def test_real_dev_featurizes_and_random_outputs_score(tmp_path):
    gold_path = real_file("klue-re-v1.1_dev.json")
    task = make_task()
    records = task.read(gold_path)
    feats = featurize(task, records, progress=False)
    assert len(feats) == len(records)
    assert max(len(ids) for ids in feats["input_ids"]) <= 256
    # every feature keeps both typed openers where the head reads them
    opener = {task.tokenizer.convert_tokens_to_ids(m): m for m in MARKERS if not m.startswith("[/")}
    for row, rec in zip(
        feats.select_columns(["input_ids", "subject_index", "object_index"]), records, strict=True
    ):
        assert opener[row["input_ids"][row["subject_index"]]] == f"[SUBJ:{rec['subject']['type']}]"
        assert opener[row["input_ids"][row["object_index"]]] == f"[OBJ:{rec['object']['type']}]"
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(len(feats), 30))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    outputs = [{"label": np.int64(p.argmax()), "probs": p.astype(np.float32)} for p in probs]
    preds = task.decode(records, feats, outputs)
    pred_path = tmp_path / "re.jsonl"
    write_jsonl(pred_path, preds)
    result = score("re", gold_path, pred_path)
    assert result["n"] == len(records)
    assert 0.0 <= result["metrics"]["micro_f1"] < 20.0  # random guessing
