"""The 80/20 split of the real dev files and the trivial baselines."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mtl.baselines import trivial_predictions
from mtl.split import is_heldout, split_official
from mtl.tasks import get_task

DATA = os.environ.get("KLUE_DATA_DIR")


def test_heldout_bucket_is_stable_and_about_a_fifth() -> None:
    keys = [f"klue-x-v1_dev_{i:05d}" for i in range(10000)]
    share = sum(map(is_heldout, keys)) / len(keys)
    assert 0.18 < share < 0.22
    assert [is_heldout(k) for k in keys[:50]] == [is_heldout(k) for k in keys[:50]]


@pytest.mark.skipif(not DATA, reason="KLUE_DATA_DIR is not set (real KLUE dev data)")
def test_split_partitions_every_task_without_leaking_contexts(tmp_path: Path) -> None:
    counts = split_official(DATA, tmp_path)  # type: ignore[arg-type]
    expected = {
        "ynat": 9107,
        "nli": 3000,
        "sts": 519,
        "ner": 5000,
        "re": 7765,
        "dp": 2000,
        "mrc": 1350,
        "wos": 700,
    }
    for task, total in expected.items():
        t = get_task(task)
        ext = ".tsv" if task in ("ner", "dp") else ".json"
        train = t.read(tmp_path / f"{task}_train{ext}")
        held = t.read(tmp_path / f"{task}_heldout{ext}")
        assert len(train) + len(held) == total == counts[task]["train"] + counts[task]["heldout"]
        assert not {r["guid"] for r in train} & {r["guid"] for r in held}
        assert 0.15 < len(held) / total < 0.25
        if task == "mrc":
            assert not {r["context"] for r in train} & {r["context"] for r in held}
    again = tmp_path / "again"
    split_official(DATA, again)  # type: ignore[arg-type]
    assert (again / "ner_heldout.tsv").read_bytes() == (tmp_path / "ner_heldout.tsv").read_bytes()


def test_trivial_baselines_follow_their_definitions() -> None:
    train = [
        {"guid": "a", "label": 2, "score": 1.0},
        {"guid": "b", "label": 2, "score": 3.0},
        {"guid": "c", "label": 0, "score": 5.0},
    ]
    held = [{"guid": "d", "label": 1, "score": 0.0}]
    assert trivial_predictions("ynat", train, held) == [{"guid": "d", "label": "사회"}]
    assert trivial_predictions("nli", train, held) == [{"guid": "d", "label": "contradiction"}]
    assert trivial_predictions("sts", train, held) == [{"guid": "d", "score": 3.0}]
    dp_train = [{"guid": "s", "words": ["a", "b"], "deprels": [3, 3]}]
    dp_held = [{"guid": "t", "words": ["x", "y", "z"], "deprels": [0, 0, 0]}]
    assert trivial_predictions("dp", dp_train, dp_held) == [
        {"guid": "t", "heads": [2, 3, 0], "deprels": ["NP_SBJ"] * 3}
    ]
    wos = [{"guid": "w", "dialogue": [{"role": "user"}, {"role": "sys"}, {"role": "user"}]}]
    assert trivial_predictions("wos", [], wos) == [
        {"guid": "w", "turn": 0, "state": []},
        {"guid": "w", "turn": 2, "state": []},
    ]
    assert trivial_predictions("ner", [], [{"guid": "n", "text": "가 나"}]) == [
        {"guid": "n", "tags": ["O", "O", "O"]}
    ]
