"""KLUE-DP model side: word spans, POS ids, truncation, and decoding to a head and relation per word."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from support import overfit

from heads.biaffine import BiaffineHead
from mtl.batching.collate import collate
from mtl.batching.featurize import featurize
from mtl.config import TaskConfig
from mtl.data.io import write_jsonl
from mtl.data.labels import DP_DEPRELS, DP_POS_TAGS
from mtl.evaluation.score_file import score
from mtl.modeling.tokenizer import build_offline_tokenizer
from mtl.samples import sample_path
from mtl.tasks.dp import DpTask, complete_tree, word_spans

REL = {name: i for i, name in enumerate(DP_DEPRELS)}


def record(guid: str, rows: list[tuple[str, str, int, str]], labeled: bool = True) -> dict:
    """A record from (word, POS, head, deprel) rows."""
    words = [w for w, _, _, _ in rows]
    return {
        "guid": guid,
        "sentence": " ".join(words),
        "words": words,
        "lemmas": words,
        "pos": [p for _, p, _, _ in rows],
        "heads": [h for _, _, h, _ in rows] if labeled else None,
        "deprels": [REL[d] for _, _, _, d in rows] if labeled else None,
    }


ROWS = [
    [
        ("하늘이", "NNP+JKS", 3, "NP_SBJ"),
        ("도서관에서", "NNG+JKB", 3, "NP_AJT"),
        ("공부했다.", "NNG+XSV+EP+EF+SF", 0, "VP"),
    ],
    [
        ("새로", "MAG", 2, "AP"),
        ("지은", "VV+ETM", 3, "VP_MOD"),
        ("다리는", "NNG+JX", 5, "NP_SBJ"),
        ("정말", "MAG", 5, "AP"),
        ("튼튼하다.", "VA+EF+SF", 0, "VP"),
    ],
    [
        ("「별」과", "SS+NNG+SS+JC", 2, "NP_CNJ"),
        ("「달」을", "SS+NNG+SS+JKO", 3, "NP_OBJ"),
        ("읽었다", "VV+EP+EF", 0, "VP"),
    ],
    [("그것은", "NP+JX", 2, "NP_SBJ"), ("우리의", "NP+JKG", 3, "NP_MOD"), ("꿈이다", "NNG+VCP+EF", 0, "VNP")],
]


def make_task(max_length: int = 64, use_pos: bool = True) -> DpTask:
    task = DpTask()
    task.setup(TaskConfig(max_length=max_length, use_pos=use_pos), build_offline_tokenizer())
    return task


def oracle_outputs(features) -> list[dict]:
    """What a perfect head predicts: the feature's own targets, padded as a batch would be."""
    return [
        {"heads": np.array([*h, -100]), "deprels": np.array([*d, -100])}
        for h, d in zip(features["heads"], features["deprels"], strict=True)
    ]


# -- featurization ---------------------------------------------------------------------------------
def test_words_map_to_their_first_and_last_sub_tokens():
    task = make_task()
    feats = featurize(task, [record("a", ROWS[0])], progress=False)
    row = feats[0]
    tokens = task.tokenizer.convert_ids_to_tokens(row["input_ids"])
    # the offline vocabulary is character level: 하늘이 = 3 tokens, 도서관에서 = 5, 공부했다. = 4 + "."
    assert tokens[row["word_starts"][0]] == "하" and tokens[row["word_ends"][0]] == "##이"
    assert row["word_starts"] == [1, 4, 9] and row["word_ends"] == [3, 8, 13]
    assert tokens[13] == "." and tokens[14] == "[SEP]"
    assert row["word_mask"] == [1, 1, 1]
    assert row["heads"] == [3, 3, 0]
    assert row["deprels"] == [REL["NP_SBJ"], REL["NP_AJT"], REL["VP"]]
    assert row["example_index"] == 0


def test_pos_id_is_the_last_morpheme_tag():
    task = make_task()
    assert task.pos_id("NNG+XSV+EP+EF+SF") == DP_POS_TAGS.index("SF")
    assert task.pos_id("SS+NNG+SS+JC") == DP_POS_TAGS.index("JC")
    assert task.pos_id("MAG") == DP_POS_TAGS.index("MAG")
    assert task.pos_id("NNG+ZZZ") == len(DP_POS_TAGS)  # unknown tag
    assert task.pos_id("") == len(DP_POS_TAGS)
    feats = featurize(task, [record("b", ROWS[1])], progress=False)
    assert feats[0]["pos_ids"] == [DP_POS_TAGS.index(t) for t in ("MAG", "ETM", "JX", "MAG", "SF")]


def test_head_args_follow_use_pos():
    baseline = {"arc_dim": 512, "label_dim": 256, "pos_dim": 256, "dropout": 0.33}  # KLUE-baseline's parser
    assert make_task().head_args() == {"num_labels": 38, "pos_vocab_size": len(DP_POS_TAGS) + 1, **baseline}
    task = make_task(use_pos=False)
    assert task.head_args() == {"num_labels": 38, "pos_vocab_size": 0, **baseline}
    assert "pos_ids" not in featurize(task, [record("a", ROWS[0])], progress=False).column_names


def test_unlabeled_records_give_no_targets():
    task = make_task()
    recs = [record(f"s{i}", rows, labeled=False) for i, rows in enumerate(ROWS)]
    feats = featurize(task, recs, progress=False)
    assert "heads" not in feats.column_names and "deprels" not in feats.column_names
    outputs = [
        {"heads": np.zeros(len(w), dtype=np.int64), "deprels": np.zeros(len(w))} for w in feats["word_starts"]
    ]
    preds = task.decode(recs, feats, outputs)
    assert [len(p["heads"]) for p in preds] == [len(r["words"]) for r in recs]


def test_truncated_words_are_dropped_and_heads_into_them_are_not_targets():
    task = make_task(max_length=16)
    rows = [(f"가나다{i}", "NNG", 10 if i < 9 else 0, "NP") for i in range(10)]  # all hang on word 10
    rows[0] = ("가나다0", "NNG", 2, "NP_MOD")
    feats = featurize(task, [record("t", rows)], progress=False)
    row = feats[0]
    assert len(row["input_ids"]) == 16
    # 4 tokens per word (가 ##나 ##다 ##N): 14 word tokens keep 3 words and the first half of a 4th
    assert row["word_starts"] == [1, 5, 9, 13] and row["word_ends"] == [4, 8, 12, 14]
    assert row["heads"] == [2, -100, -100, -100]
    preds = task.decode([record("t", rows)], feats, oracle_outputs(feats))
    # no kept word is the root: what cannot be placed hangs on the last word, which becomes the root
    assert preds[0]["heads"] == [2, 10, 10, 10, 6, 7, 8, 9, 10, 0]
    assert preds[0]["deprels"][4:] == ["NP"] * 6
    assert is_single_root_tree(preds[0]["heads"])


def test_word_without_sub_tokens_keeps_word_positions_aligned():
    task = make_task()
    # U+200B and U+0001 are deleted by the normaliser: those words have no sub-token of their own
    rows = [
        ("\u200b", "SW", 2, "X"),
        ("하늘", "NNG", 4, "NP"),
        ("\x01", "SW", 2, "X"),
        ("맑다", "VA+EF", 0, "VP"),
    ]
    feats = featurize(task, [record("z", rows)], progress=False)
    row = feats[0]
    assert row["word_mask"] == [1, 1, 1, 1]
    assert row["word_starts"] == [0, 1, 2, 3] and row["word_ends"] == [0, 2, 2, 4]
    assert row["heads"] == [2, 4, 2, 0]


def test_word_spans_of_word_ids():
    ids = np.array([-1, 0, 0, 2, 2, 2, -1])
    starts, ends = word_spans(ids, 4)
    assert starts.tolist() == [1, 2, 3, 5] and ends.tolist() == [2, 2, 5, 5]
    starts, ends = word_spans(np.array([-1, -1]), 2)
    assert starts.tolist() == [0, 0] and ends.tolist() == [0, 0]


def test_features_collate_into_what_the_biaffine_head_reads():
    task = make_task()
    feats = featurize(task, [record(f"s{i}", rows) for i, rows in enumerate(ROWS)], progress=False)
    batch = collate(
        feats[:],
        pad_token_id=task.tokenizer.pad_token_id,
        token_fields=task.token_fields,
        item_fields=task.item_fields,
        pad_values=task.pad_values,
        skip_fields=task.meta_fields,
    )
    assert batch["word_mask"].dtype == torch.bool and batch["word_mask"].shape == (4, 5)
    head = BiaffineHead(8, **task.head_args())
    hidden = torch.randn(*batch["input_ids"].shape, 8)
    out = head(hidden, batch)
    assert out.loss is not None and torch.isfinite(out.loss)
    pred = head.predict(out, batch)
    assert pred["heads"].shape == (4, 5)


# -- decoding -------------------------------------------------------------------------------------
def is_single_root_tree(heads: list[int]) -> bool:
    if sum(h == 0 for h in heads) != 1:
        return False
    for start in range(1, len(heads) + 1):
        seen, node = set(), start
        while node != 0:
            if node in seen:
                return False
            seen.add(node)
            node = heads[node - 1]
    return True


def test_truncated_words_hang_as_a_chain_from_the_kept_root():
    heads, deprels = complete_tree(np.array([2, 0, 2]), np.array([3, 2, 1]), 6, 38)
    assert heads == [2, 0, 2, 5, 6, 2] and deprels == [3, 2, 1, 0, 0, 0]
    assert is_single_root_tree(heads)


def test_nothing_kept_gives_a_chain_to_the_last_word():
    heads, deprels = complete_tree(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), 3, 38)
    assert heads == [2, 3, 0] and deprels == [0, 0, 0]


def test_malformed_head_outputs_are_repaired():
    heads, deprels = complete_tree(np.array([-100, 0, 9, 4]), np.array([-100, 5, 40, 1]), 4, 38)
    assert heads == [2, 0, 2, 2] and deprels == [0, 5, 0, 1]
    assert is_single_root_tree(heads)


# -- round trip and training ------------------------------------------------------------------------
def test_round_trip_of_gold_through_features_is_perfect():
    task = make_task()
    recs = [record(f"s{i}", rows) for i, rows in enumerate(ROWS)]
    feats = featurize(task, recs, progress=False)
    preds = task.decode(recs, feats, oracle_outputs(feats))
    for pred, rec in zip(preds, recs, strict=True):
        assert pred["guid"] == rec["guid"]
        assert pred["heads"] == rec["heads"]
        assert pred["deprels"] == [DP_DEPRELS[d] for d in rec["deprels"]]
    metrics = task.compute_metrics(recs, preds)
    assert metrics == {"uas": 100.0, "las": 100.0, "uas_plain": 100.0, "las_plain": 100.0}


def test_tiny_model_overfits_the_bundled_samples():
    records = DpTask().read(sample_path("dp", "train"))
    metrics, predictions = overfit("dp", records, steps=80, lr=2e-3, batch_size=16)
    assert len(predictions) == len(records)
    assert all(is_single_root_tree(p["heads"]) for p in predictions)
    assert metrics["uas"] >= 95.0, metrics


# -- real data ------------------------------------------------------------------------------------
@pytest.fixture
def klue_dir() -> Path:
    root = os.environ.get("KLUE_DATA_DIR")
    if not root:
        pytest.skip("KLUE_DATA_DIR is not set (point it at the folder holding official/)")
    return Path(root)


@pytest.mark.realdata
@pytest.mark.parametrize("max_length", [256, 24])
def test_real_dev_random_outputs_decode_to_a_valid_predictions_file(klue_dir, tmp_path, max_length):
    gold_path = klue_dir / "official" / "klue-dp-v1.1_dev.tsv"
    task = make_task(max_length=max_length)
    recs = task.read(gold_path)
    feats = featurize(task, recs, progress=False)
    assert list(feats["example_index"]) == list(range(len(recs)))
    kept = [len(s) for s in feats["word_starts"]]
    if max_length == 24:
        assert sum(k < len(r["words"]) for k, r in zip(kept, recs, strict=True)) > 100  # truncation happens
    rng = np.random.default_rng(0)
    outputs = [
        {"heads": rng.integers(0, k + 1, size=k + 2), "deprels": rng.integers(0, len(DP_DEPRELS), size=k + 2)}
        for k in kept
    ]
    pred_path = tmp_path / "pred.jsonl"
    write_jsonl(pred_path, task.decode(recs, feats, outputs))
    result = score("dp", gold_path, pred_path)
    assert result["n"] == len(recs)
    assert 0.0 <= result["metrics"]["uas_plain"] < 50.0


@pytest.mark.realdata
def test_real_dev_round_trip_is_perfect(klue_dir):
    task = make_task(max_length=256)
    recs = task.read(klue_dir / "official" / "klue-dp-v1.1_dev.tsv")
    feats = featurize(task, recs, progress=False)
    metrics = task.compute_metrics(recs, task.decode(recs, feats, oracle_outputs(feats)))
    assert metrics == {"uas": 100.0, "las": 100.0, "uas_plain": 100.0, "las_plain": 100.0}
