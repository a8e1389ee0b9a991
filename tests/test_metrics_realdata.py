"""The official metrics on the real KLUE dev sets: gold against gold scores 100, and seeded noisy
predictions agree with the sklearn/seqeval/scipy reference to 1e-6.

Needs KLUE_DATA_DIR (the folder holding official/). The files are parsed by the minimal local
readers below, so these tests depend on the metrics alone.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from reference_metrics import ref_dp, ref_macro_f1, ref_mrc, ref_ner, ref_re, ref_sts, ref_wos

from mtl.data.labels import DP_DEPRELS, NER_LABELS, NLI_LABELS, RE_LABELS, YNAT_LABELS
from mtl.metrics import (
    accuracy,
    dp_metrics,
    macro_f1,
    mrc_metrics,
    ner_metrics,
    re_metrics,
    sts_metrics,
    wos_metrics,
)
from mtl.metrics.ner import scored_sequence, strict_iob2_entities

pytestmark = pytest.mark.realdata

NOISE = 0.02


def official(name: str) -> Path:
    root = os.environ.get("KLUE_DATA_DIR")
    if not root:
        pytest.skip("KLUE_DATA_DIR is not set: real KLUE dev data unavailable")
    return Path(root) / "official" / name


def load_json(name: str):
    return json.loads(official(name).read_text(encoding="utf-8"))


def assert_agree(ours: dict[str, float], reference: dict[str, float]) -> None:
    assert ours.keys() == reference.keys()
    for key in ours:
        assert ours[key] == pytest.approx(reference[key], abs=1e-6), key


def perturb(rng: np.random.Generator, gold: np.ndarray, n_classes: int) -> np.ndarray:
    noisy = gold.copy()
    hit = rng.random(len(gold)) < NOISE
    noisy[hit] = rng.integers(0, n_classes, int(hit.sum()))
    return noisy


# --- minimal readers ---------------------------------------------------------------------------


def read_tsv_blocks(name: str) -> list[list[list[str]]]:
    """Sentences of a KLUE TSV file: each a list of tab-split rows, header row first."""
    sentences: list[list[list[str]]] = []
    for line in official(name).read_text(encoding="utf-8").split("\n"):
        if line.startswith("## klue-"):
            sentences.append([line[3:].split("\t")])
        elif line == "" or line.startswith("##"):
            continue
        else:
            sentences[-1].append(line.split("\t"))
    return sentences


@cache
def ner_dev() -> tuple[list[str], list[list[str]]]:
    texts, tags = [], []
    for block in read_tsv_blocks("klue-ner-v1.1_dev.tsv"):
        texts.append("".join(row[0] for row in block[1:]))
        tags.append([row[1] for row in block[1:]])
    return texts, tags


@cache
def dp_dev() -> tuple[list[list[int]], list[list[int]]]:
    deprel_id = {name: i for i, name in enumerate(DP_DEPRELS)}
    heads, deprels = [], []
    for block in read_tsv_blocks("klue-dp-v1.1_dev.tsv"):
        heads.append([int(row[4]) for row in block[1:]])
        deprels.append([deprel_id[row[5]] for row in block[1:]])
    return heads, deprels


# --- tests ---------------------------------------------------------------------------------------


def test_ynat_dev() -> None:
    label_id = {name: i for i, name in enumerate(YNAT_LABELS)}
    gold = np.array([label_id[r["label"]] for r in load_json("ynat-v1.1_dev.json")])
    assert len(gold) == 9107
    assert macro_f1(gold, gold) == 100.0
    pred = perturb(np.random.default_rng(10), gold, len(YNAT_LABELS))
    assert macro_f1(gold, pred) == pytest.approx(ref_macro_f1(gold, pred), abs=1e-6)
    assert macro_f1(gold, pred) < 100.0


def test_nli_dev() -> None:
    label_id = {name: i for i, name in enumerate(NLI_LABELS)}
    gold = np.array([label_id[r["gold_label"]] for r in load_json("klue-nli-v1.1_dev.json")])
    assert len(gold) == 3000
    assert accuracy(gold, gold) == 100.0
    pred = perturb(np.random.default_rng(11), gold, len(NLI_LABELS))
    assert accuracy(gold, pred) == pytest.approx(float(np.mean(gold == pred)) * 100, abs=1e-9)


def test_sts_dev() -> None:
    gold = np.array([r["labels"]["real-label"] for r in load_json("klue-sts-v1.1_dev.json")])
    assert len(gold) == 519
    assert sts_metrics(gold, gold) == {"pearsonr": pytest.approx(100.0), "f1": 100.0}
    pred = gold + np.random.default_rng(12).normal(0, 0.5, len(gold))
    assert_agree(sts_metrics(gold, pred), ref_sts(gold, pred))


def _noisy_tags(rng: np.random.Generator, tags: list[list[str]]) -> list[list[str]]:
    return [[NER_LABELS[rng.integers(0, 13)] if rng.random() < NOISE else t for t in s] for s in tags]


def test_ner_dev_gold_entities_and_gold_vs_gold() -> None:
    texts, gold = ner_dev()
    assert len(texts) == 5000
    # SPEC §4: dropping spaces loses the two gold entities that start on a space
    with_spaces = scored_sequence(["x" * len(t) for t in texts], gold)
    assert len(strict_iob2_entities(with_spaces)) == 14257
    assert len(strict_iob2_entities(scored_sequence(texts, gold))) == 14255
    assert ner_metrics(texts, gold, gold) == {"entity_f1": 100.0, "char_f1": 100.0}


def test_ner_dev_matches_seqeval() -> None:
    texts, gold = ner_dev()
    pred = _noisy_tags(np.random.default_rng(13), gold)
    full = ner_metrics(texts, gold, pred)  # its speed: `klue-mtl bench` (metrics_seconds)
    assert 0 < full["entity_f1"] < 100 and 0 < full["char_f1"] < 100
    # seqeval needs ~17 s for the whole dev set: compare on a 1,000-sentence slice
    part = slice(0, 1000)
    assert_agree(
        ner_metrics(texts[part], gold[part], pred[part]), ref_ner(texts[part], gold[part], pred[part])
    )


def test_re_dev() -> None:
    label_id = {name: i for i, name in enumerate(RE_LABELS)}
    gold = np.array([label_id[r["label"]] for r in load_json("klue-re-v1.1_dev.json")])
    assert len(gold) == 7765
    one_hot = np.eye(len(RE_LABELS))[gold]
    perfect = re_metrics(gold, gold, one_hot)
    assert perfect["micro_f1"] == 100.0
    # a perfectly separating column has area 1; a class absent from dev would score 0.5
    absent = len(RE_LABELS) - len(np.unique(gold))
    assert perfect["auprc"] == pytest.approx((30 - absent * 0.5) / 30 * 100)
    rng = np.random.default_rng(14)
    logits = rng.normal(0, 1, (len(gold), 30)) + 2.5 * one_hot
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    pred = probs.argmax(axis=1)
    assert_agree(re_metrics(gold, pred, probs), ref_re(gold, pred, probs))


def test_dp_dev() -> None:
    heads, deprels = dp_dev()
    assert len(heads) == 2000 and sum(map(len, heads)) == 22496
    perfect = {"uas": 100.0, "las": 100.0, "uas_plain": 100.0, "las_plain": 100.0}
    assert dp_metrics(heads, deprels, heads, deprels) == perfect
    # one wrong head: the head-wrong pseudo-class joins the 16 real classes with F1 0 (SPEC §6)
    one_wrong = [list(s) for s in heads]
    one_wrong[0][0] = one_wrong[0][0] % len(one_wrong[0]) + 1
    las = dp_metrics(heads, deprels, one_wrong, deprels)["las"]
    assert 94.1 < las < 16 / 17 * 100
    rng = np.random.default_rng(15)
    pred_heads = [perturb(rng, np.array(s), len(s) + 1).tolist() for s in heads]
    pred_rels = [perturb(rng, np.array(s), len(DP_DEPRELS)).tolist() for s in deprels]
    assert_agree(
        dp_metrics(heads, deprels, pred_heads, pred_rels), ref_dp(heads, deprels, pred_heads, pred_rels)
    )


def test_mrc_dev() -> None:
    golds = [
        [a["text"] for a in qa["answers"]]
        for doc in load_json("klue-mrc-v1_dev.subset.json")["data"]
        for paragraph in doc["paragraphs"]
        for qa in paragraph["qas"]
    ]
    assert len(golds) == 1350 and sum(not g for g in golds) == 420
    exact_preds = [g[0] if g else "" for g in golds]
    assert mrc_metrics(golds, exact_preds) == {"exact_match": 100.0, "rouge_w": 100.0}
    rng = np.random.default_rng(16)
    preds = []
    for pred in exact_preds:
        roll = rng.random()
        if roll < 0.1:
            pred = pred[1:]
        elif roll < 0.2:
            pred = "그 " + pred + "에서"
        elif roll < 0.25:
            pred = ""
        preds.append(pred)
    assert_agree(mrc_metrics(golds, preds), ref_mrc(golds, preds))


def test_wos_dev() -> None:
    dialogues = load_json("wos-v1_dev.subset.json")
    golds = [turn["state"] for d in dialogues for turn in d["dialogue"] if turn["role"] == "user"]
    assert len(dialogues) == 700
    assert wos_metrics(golds, golds) == {"joint_goal_accuracy": 100.0, "slot_f1": 100.0}
    rng = np.random.default_rng(17)
    preds = []
    for state in golds:
        state = list(state)
        if state and rng.random() < NOISE * 5:
            state.pop(int(rng.integers(0, len(state))))
        if rng.random() < NOISE * 5:
            state.append("관광-지역-어딘가")
        preds.append(state)
    assert_agree(wos_metrics(golds, preds), ref_wos(golds, preds))
