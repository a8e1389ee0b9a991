"""Readers on the real KLUE files under $KLUE_DATA_DIR (official/ and hf_dummy/).

The expected counts and invariants come from the dataset documentation (SPEC.md, HF_SCHEMA.md,
README.md next to the data), not from the readers.
"""

from __future__ import annotations

import collections
import json
import os
from pathlib import Path

import pytest

from mtl.data import dp, mrc, ner, nli, sts, wos, ynat
from mtl.data import re as re_reader
from mtl.errors import KlueInputError
from mtl.tasks import get_task

pytestmark = pytest.mark.realdata

_DATA_DIR = os.environ.get("KLUE_DATA_DIR")


@pytest.fixture(scope="module")
def klue() -> Path:
    if not _DATA_DIR:
        pytest.skip("KLUE_DATA_DIR is not set (point it at the shared klue folder to run real-data tests)")
    root = Path(_DATA_DIR)
    if not (root / "official").is_dir():
        pytest.skip(f"KLUE_DATA_DIR={root} has no official/ folder")
    return root


@pytest.fixture(scope="module")
def official(klue: Path) -> Path:
    return klue / "official"


@pytest.mark.parametrize(
    ("task", "name", "count"),
    [
        ("ynat", "ynat-v1.1_dev.json", 9107),
        ("nli", "klue-nli-v1.1_dev.json", 3000),
        ("sts", "klue-sts-v1.1_dev.json", 519),
        ("ner", "klue-ner-v1.1_dev.tsv", 5000),
        ("re", "klue-re-v1.1_dev.json", 7765),
        ("re", "klue-re-v1.1_train.subset.json", 3247),
        ("dp", "klue-dp-v1.1_dev.tsv", 2000),
        ("mrc", "klue-mrc-v1_dev.subset.json", 1350),
        ("wos", "wos-v1_dev.subset.json", 700),
    ],
)
def test_official_file_counts(official, task, name, count):
    assert len(get_task(task).read(official / name)) == count


def test_nli_labels_balanced(official):
    counts = collections.Counter(r["label"] for r in nli.read(official / "klue-nli-v1.1_dev.json"))
    assert counts == {0: 1000, 1: 1000, 2: 1000}


def test_ynat_all_seven_topics_occur(official):
    assert {r["label"] for r in ynat.read(official / "ynat-v1.1_dev.json")} == set(range(7))


def test_sts_binary_matches_score(official):
    records = sts.read(official / "klue-sts-v1.1_dev.json")
    assert all(r["binary"] == int(r["score"] >= 3.0) for r in records)
    assert all(abs(r["label"] - round(r["score"], 1)) < 1e-9 for r in records)


def test_ner_characters_and_tags(official):
    records = ner.read(official / "klue-ner-v1.1_dev.tsv")
    assert all(len(r["text"]) == len(r["tags"]) for r in records)
    assert sum(len(r["text"].replace(" ", "")) for r in records) == 225_550
    # B-tag counts over non-space characters, from SPEC.md; ids are the hub order
    # (B-DT 0, B-LC 2, B-OG 4, B-PS 6, B-QT 8, B-TI 10)
    b_ids = (0, 2, 4, 6, 8, 10)
    pairs = [(c, t) for r in records for c, t in zip(r["text"], r["tags"], strict=True)]
    b_counts = collections.Counter(t for c, t in pairs if c != " " and t in b_ids)
    assert b_counts == {6: 4418, 8: 3150, 0: 2312, 4: 2182, 2: 1648, 10: 545}
    # spaces are rows of their own: two dev spaces carry B- tags (< 24살:QT>, < 퇴계로 2가:LC>)
    assert sorted(t for c, t in pairs if c == " " and t in b_ids) == [2, 8]
    assert records[0]["guid"] == "klue-ner-v1_dev_00000-wikitree"


def test_re_offsets(official):
    for name in ("klue-re-v1.1_dev.json", "klue-re-v1.1_train.subset.json"):
        for r in re_reader.read(official / name):
            for ent in (r["subject"], r["object"]):
                assert r["sentence"][ent["start"] : ent["end"] + 1] == ent["word"]


def test_re_label_ids_follow_relation_list(official):
    relations = json.loads((official / "relation_list.json").read_text(encoding="utf-8"))["relations"]
    raw = json.loads((official / "klue-re-v1.1_dev.json").read_text(encoding="utf-8"))
    records = re_reader.read(official / "klue-re-v1.1_dev.json")
    assert [relations[r["label"]] for r in records] == [item["label"] for item in raw]


def test_dp_words_and_roots(official):
    records = dp.read(official / "klue-dp-v1.1_dev.tsv")
    assert sum(len(r["words"]) for r in records) == 22_496
    assert all(r["heads"].count(0) == 1 for r in records)
    assert all(len(r["words"]) == len(r["lemmas"]) == len(r["pos"]) == len(r["deprels"]) for r in records)


def test_mrc_answerable_and_unanswerable(official):
    records = mrc.read(official / "klue-mrc-v1_dev.subset.json")
    impossible = [r for r in records if r["is_impossible"]]
    assert len(impossible) == 420
    assert all(r["answers"] == [] and r["plausible_answers"] for r in impossible)
    for r in records:
        if not r["is_impossible"]:
            assert r["answers"]
            for a in r["answers"]:
                assert r["context"][a["start"] : a["start"] + len(a["text"])] == a["text"]


def test_wos_turns(official):
    records = wos.read(official / "wos-v1_dev.subset.json")
    turns = [t for r in records for t in r["dialogue"]]
    assert len(turns) == 10_152
    user = [t for t in turns if t["role"] == "user"]
    assert len(user) == 5076
    assert all(isinstance(t["state"], list) for t in user)
    assert all(t["state"] is None for t in turns if t["role"] == "sys")


def test_nli_hub_export_matches_official(official, tmp_path):
    datasets = pytest.importorskip("datasets")
    datasets.disable_progress_bars()
    raw = json.loads((official / "klue-nli-v1.1_dev.json").read_text(encoding="utf-8"))
    hub_ids = {"entailment": 0, "neutral": 1, "contradiction": 2}  # the hub's ClassLabel order
    rows = [
        {k: item[k] for k in ("guid", "source", "premise", "hypothesis")}
        | {"label": hub_ids[item["gold_label"]]}
        for item in raw
    ]
    datasets.Dataset.from_list(rows).to_parquet(str(tmp_path / "nli.parquet"))
    assert nli.read(tmp_path / "nli.parquet") == nli.read(official / "klue-nli-v1.1_dev.json")


# ------------------------------------------------------------------------------- hf_dummy
@pytest.mark.parametrize(
    ("task", "folder", "count"),
    [
        ("ynat", "ynat", 5),
        ("nli", "nli", 5),
        ("sts", "sts", 5),
        ("re", "re", 5),
        ("mrc", "mrc", 1),
        ("wos", "wos", 5),
    ],
)
def test_hf_dummy_json_files_parse(klue, task, folder, count):
    files = sorted((klue / "hf_dummy" / folder).glob("*.json"))
    assert len(files) == 2  # train and dev
    for path in files:
        assert len(get_task(task).read(path)) == count


def test_hf_dummy_nli_train_uses_genre(klue):
    records = nli.read(klue / "hf_dummy" / "nli" / "klue-nli-v1_train.json")
    assert records[0]["source"] == "NSMC"


@pytest.mark.parametrize("task", ["ner", "dp"])
def test_hf_dummy_tsv_prefixes_are_reported_as_truncated(klue, task):
    # these files are byte prefixes: their last sentence is cut off, which is malformed input
    for path in sorted((klue / "hf_dummy" / task).glob("*.tsv")):
        text = path.read_text(encoding="utf-8")
        last_line = len(text.rstrip("\n").split("\n"))
        with pytest.raises(KlueInputError) as info:
            get_task(task).read(path)
        message = str(info.value)
        assert str(path) in message and f"line {last_line}:" in message and "cut off" in message, message
