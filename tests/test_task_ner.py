"""KLUE-NER model side: offset alignment, windows over long sentences, decoding back to characters."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
from support import overfit

from mtl.batching.featurize import featurize
from mtl.config import TaskConfig
from mtl.data.io import write_jsonl
from mtl.data.labels import NER_LABELS
from mtl.evaluation.score_file import score
from mtl.modeling.tokenizer import build_offline_tokenizer
from mtl.samples import sample_path
from mtl.tasks.ner import NerTask, TagTable, char_tags

TAG = {name: i for i, name in enumerate(NER_LABELS)}
OUT = TAG["O"]
TABLE = TagTable(NER_LABELS)


def record(guid: str, annotated: str, labeled: bool = True) -> dict:
    """A record from ``<surface:TYPE>`` markup: B- on an entity's first character, I- on the rest."""
    text, tags, pos = "", [], 0
    for m in re.finditer(r"<([^<>]+):([A-Z]{2})>", annotated):
        plain = annotated[pos : m.start()]
        text, tags = text + plain, tags + [OUT] * len(plain)
        surface, kind = m.group(1), m.group(2)
        text += surface
        tags += [TAG[f"B-{kind}"]] + [TAG[f"I-{kind}"]] * (len(surface) - 1)
        pos = m.end()
    text, tags = text + annotated[pos:], tags + [OUT] * len(annotated[pos:])
    return {"guid": guid, "text": text, "tags": tags if labeled else None}


SENTENCES = [
    "<박지훈:PS>은 <2021년 3월:DT> <부산 해운대:LC>에서 열린 <별빛전자:OG> 행사에 갔다.",
    "<오후 세 시:TI>에 <한결:PS>이 사과 <다섯 개:QT>를 샀다.",
    "오늘은 아무 일도 없었다.",
    "<새봄은행:OG>, <늘푸른재단:OG>과 <강원도:LC> 지역 모임(<12명:QT>)",
    "  앞뒤 공백과 <두  칸:QT>  ",
]


def make_task(max_length: int = 64) -> NerTask:
    task = NerTask()
    task.setup(TaskConfig(max_length=max_length), build_offline_tokenizer())
    return task


def oracle_outputs(features) -> list[dict]:
    """What a perfect head predicts: the feature's own targets, padded as a batch would be."""
    return [{"tags": np.array([*labels, -100, -100])} for labels in features["labels"]]


def names(ids) -> list[str]:
    return [NER_LABELS[i] for i in ids]


# -- featurization ---------------------------------------------------------------------------------
def test_each_token_learns_its_first_characters_tag():
    task = make_task()
    rec = record("a", "<김하늘:PS>이 <대전:LC>에 왔다")
    feats = featurize(task, [rec], progress=False)
    assert len(feats) == 1
    row = feats[0]
    assert set(feats.column_names) == {"input_ids", "offset_mapping", "example_index", "labels"}
    tokens = task.tokenizer.convert_ids_to_tokens(row["input_ids"])
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
    assert row["labels"][0] == -100 and row["labels"][-1] == -100
    expected = ["B-PS", "I-PS", "I-PS", "O", "B-LC", "I-LC", "O", "O", "O"]  # the space has no token
    assert names(row["labels"][1:-1]) == expected
    assert row["example_index"] == 0


def test_unknown_word_is_one_token_labelled_by_its_first_character():
    task = make_task()
    # the emoji is not in the vocabulary, so the whole word "😀새봄" becomes one [UNK]
    rec = {
        "guid": "u",
        "text": "나는 😀새봄 좋아",
        "tags": [OUT, OUT, OUT, TAG["B-OG"], TAG["I-OG"], TAG["I-OG"], OUT, OUT, OUT],
    }
    feats = featurize(task, [rec], progress=False)
    tokens = task.tokenizer.convert_ids_to_tokens(feats[0]["input_ids"])
    unk = tokens.index("[UNK]")
    assert feats[0]["offset_mapping"][unk] == [3, 6]
    assert feats[0]["labels"][unk] == TAG["B-OG"]
    preds = task.decode([rec], feats, oracle_outputs(feats))
    assert preds[0]["tags"] == names(rec["tags"])


def test_unlabeled_records_give_no_targets_and_still_decode():
    task = make_task()
    recs = [record(f"s{i}", s, labeled=False) for i, s in enumerate(SENTENCES)]
    feats = featurize(task, recs, progress=False)
    assert "labels" not in feats.column_names
    outputs = [{"tags": np.full(len(ids), OUT)} for ids in feats["input_ids"]]
    preds = task.decode(recs, feats, outputs)
    assert [p["guid"] for p in preds] == [r["guid"] for r in recs]
    assert all(p["tags"] == ["O"] * len(r["text"]) for p, r in zip(preds, recs, strict=True))


def test_long_sentence_is_cut_into_overlapping_windows():
    task = make_task(max_length=32)
    body = " ".join(f"<최{i}호:PS>와 <{i}일:DT> 만남" for i in range(200))
    rec = record("long", body)
    assert len(rec["text"]) > 2500
    feats = featurize(task, [rec], progress=False)
    assert len(feats) > 1
    assert all(len(ids) <= 32 for ids in feats["input_ids"])
    assert set(feats["example_index"]) == {0}
    ends = [max(e for _, e in offs) for offs in feats["offset_mapping"]]
    starts = [min(s for s, e in offs if e > s) for offs in feats["offset_mapping"]]
    assert all(nxt < end for nxt, end in zip(starts[1:], ends, strict=False)), "consecutive windows overlap"
    assert ends[-1] == len(rec["text"])
    preds = task.decode([rec], feats, oracle_outputs(feats))
    assert preds[0]["tags"] == names(rec["tags"])


def test_records_without_features_still_get_a_tag_per_character():
    task = make_task()
    recs = [record("a", SENTENCES[0]), record("b", SENTENCES[1])]
    feats = featurize(task, recs[:1], progress=False)
    preds = task.decode(recs, feats, oracle_outputs(feats))
    assert preds[1] == {"guid": "b", "tags": ["O"] * len(recs[1]["text"])}


# -- decoding rules ---------------------------------------------------------------------------------
def piece(spans, tags, context=None):
    starts, ends = (np.array(x) for x in zip(*spans, strict=True))
    context = np.zeros(len(spans), dtype=np.int64) if context is None else np.array(context)
    return starts, ends, np.array([TAG[t] for t in tags]), context


def test_rest_of_a_token_continues_its_tag_and_o_stays_o():
    out = char_tags(6, [piece([(0, 3), (3, 6)], ["B-OG", "O"])], TABLE)
    assert names(out) == ["B-OG", "I-OG", "I-OG", "O", "O", "O"]


def test_uncovered_characters_join_an_entity_only_inside_it():
    # chars: 0 1 _ 3 _ 5 6 _ 8 ; tokens cover all but the spaces at 2, 4 and 7
    spans = [(0, 1), (1, 2), (3, 4), (5, 6), (6, 7), (8, 9)]
    out = char_tags(9, [piece(spans, ["B-LC", "I-LC", "I-LC", "B-PS", "I-PS", "B-PS"])], TABLE)
    assert names(out) == ["B-LC", "I-LC", "I-LC", "I-LC", "O", "B-PS", "I-PS", "O", "B-PS"]


def test_uncovered_edges_and_type_changes_are_o():
    out = char_tags(5, [piece([(1, 2), (3, 4)], ["B-DT", "I-TI"])], TABLE)
    assert names(out) == ["O", "B-DT", "O", "I-TI", "O"]
    assert names(char_tags(3, [], TABLE)) == ["O", "O", "O"]


def test_overlapping_windows_keep_the_prediction_with_more_context():
    first = piece([(0, 1), (1, 2), (2, 3)], ["B-PS", "I-PS", "O"], context=[1, 1, 0])
    second = piece([(2, 3), (3, 4)], ["I-PS", "O"], context=[3, 1])
    assert names(char_tags(4, [first, second], TABLE)) == ["B-PS", "I-PS", "I-PS", "O"]
    assert names(char_tags(4, [second, first], TABLE)) == ["B-PS", "I-PS", "I-PS", "O"]


def test_out_of_range_predictions_read_as_o():
    starts, ends, _, context = piece([(0, 1), (1, 2)], ["O", "O"])
    out = char_tags(2, [(starts, ends, np.array([-100, 99]), context)], TABLE)
    assert names(out) == ["O", "O"]


# -- round trip and training ------------------------------------------------------------------------
@pytest.mark.parametrize("max_length", [512, 16])
def test_round_trip_of_gold_through_features_is_perfect(max_length):
    task = make_task(max_length=max_length)
    recs = [record(f"s{i}", s) for i, s in enumerate(SENTENCES)]
    feats = featurize(task, recs, progress=False)
    if max_length == 16:
        assert len(feats) > len(recs)
    preds = task.decode(recs, feats, oracle_outputs(feats))
    assert [p["tags"] for p in preds] == [names(r["tags"]) for r in recs]
    metrics = task.compute_metrics(recs, preds)
    assert metrics == {"entity_f1": 100.0, "char_f1": 100.0}


def test_tiny_model_overfits_the_bundled_samples():
    records = NerTask().read(sample_path("ner", "train"))
    metrics, predictions = overfit("ner", records, steps=150, lr=2e-3, batch_size=16)
    assert len(predictions) == len(records)
    assert metrics["entity_f1"] >= 95.0, metrics


# -- real data ------------------------------------------------------------------------------------
@pytest.fixture
def klue_dir() -> Path:
    root = os.environ.get("KLUE_DATA_DIR")
    if not root:
        pytest.skip("KLUE_DATA_DIR is not set (point it at the folder holding official/)")
    return Path(root)


@pytest.mark.realdata
def test_real_dev_random_outputs_decode_to_a_valid_predictions_file(klue_dir, tmp_path):
    gold_path = klue_dir / "official" / "klue-ner-v1.1_dev.tsv"
    task = make_task(max_length=510)
    recs = task.read(gold_path)
    feats = featurize(task, recs, progress=False)
    assert set(feats["example_index"]) == set(range(len(recs)))
    rng = np.random.default_rng(0)
    outputs = [{"tags": rng.integers(0, len(NER_LABELS), size=len(ids) + 5)} for ids in feats["input_ids"]]
    pred_path = tmp_path / "pred.jsonl"
    write_jsonl(pred_path, task.decode(recs, feats, outputs))
    result = score("ner", gold_path, pred_path)
    assert result["n"] == len(recs)
    assert 0.0 <= result["metrics"]["entity_f1"] < 20.0


@pytest.mark.realdata
def test_real_dev_round_trip_through_short_windows_is_perfect(klue_dir):
    task = make_task(max_length=64)
    recs = task.read(klue_dir / "official" / "klue-ner-v1.1_dev.tsv")
    feats = featurize(task, recs, progress=False)
    assert len(feats) > len(recs)  # some sentences need several windows
    metrics = task.compute_metrics(recs, task.decode(recs, feats, oracle_outputs(feats)))
    assert metrics == {"entity_f1": 100.0, "char_f1": 100.0}
