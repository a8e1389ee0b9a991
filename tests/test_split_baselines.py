"""The leak-free 80/20 split of the real dev files, and the trivial and non-neural baselines."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from mtl.data.io import write_jsonl
from mtl.evaluation.score_file import score
from mtl.experiments.split import group_items, is_heldout, route, split_official
from mtl.tasks import get_task

DATA = os.environ.get("KLUE_DATA_DIR")

# What a reader's record says, per task, independently of the split's own grouping hooks.
RECORD_TEXTS = {
    "ynat": lambda r: [r["title"]],
    "nli": lambda r: [r["premise"], r["hypothesis"]],
    "sts": lambda r: [r["sentence1"], r["sentence2"]],
    "ner": lambda r: [r["text"]],
    "re": lambda r: [r["sentence"]],
    "dp": lambda r: [r["sentence"]],
    "mrc": lambda r: [r["title"], r["context"], r["question"]],
    "wos": lambda r: [t["text"] for t in r["dialogue"]],
}
TOTALS = {"ynat": 9107, "nli": 3000, "sts": 519, "ner": 5000, "re": 7765, "dp": 2000, "mrc": 1350, "wos": 700}


def test_heldout_bucket_is_stable_and_about_a_fifth() -> None:
    keys = [f"klue-x-v1_dev_{i:05d}" for i in range(10000)]
    share = sum(map(is_heldout, keys)) / len(keys)
    assert 0.18 < share < 0.22
    # Stable means the same in every process: another interpreter with another string-hash seed
    # (which would move a bucket built on hash()) must put the first 200 keys in the same buckets.
    code = "from mtl.experiments.split import is_heldout; import sys; print(''.join("
    code += "'1' if is_heldout(f'klue-x-v1_dev_{i:05d}') else '0' for i in range(200)))"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    other = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert other.stdout.strip() == "".join("1" if is_heldout(k) else "0" for k in keys[:200])


def test_items_sharing_a_text_are_grouped_transitively_and_routed_together() -> None:
    texts = [
        ["p1", "h1"],
        ["p1", "h2"],
        ["x", "h2"],
        ["q"],
        ["thanks", "a"],
        ["thanks", "b"],
        ["thanks", "c"],
    ]
    grouping = group_items(texts, formulaic_min_items=3)
    g = grouping.groups
    assert g[0] == g[1] == g[2]  # p1 links 0-1, h2 links 1-2
    assert len({g[0], g[3], g[4], g[5], g[6]}) == 5  # "thanks" is in 3 items: formulaic, links nothing
    assert grouping.formulaic == ["thanks"]
    assert len(set(group_items(texts).groups)) == 3  # without the threshold "thanks" links 4-6
    # the group follows the bucket of its smallest key, whatever the other keys' buckets
    keys = [f"k{i:03d}" for i in range(200)]
    pair = next(k for k in keys if is_heldout(k))
    other = next(k for k in keys if not is_heldout(k) and k > pair)
    assert route([other, pair], group_items([["t"], ["t"]])) == [True, True]


@pytest.mark.realdata
@pytest.mark.skipif(not DATA, reason="KLUE_DATA_DIR is not set (real KLUE dev data)")
def test_split_shares_no_text_between_train_and_heldout(tmp_path: Path) -> None:
    counts = split_official(DATA, tmp_path)  # type: ignore[arg-type]
    report = []
    for task, total in TOTALS.items():
        t = get_task(task)
        ext = Path(t.official_dev_file).suffix  # type: ignore[arg-type]
        train = t.read(tmp_path / f"{task}_train{ext}")
        held = t.read(tmp_path / f"{task}_heldout{ext}")
        assert len(train) + len(held) == total == counts[task]["train"] + counts[task]["heldout"]
        assert 0.15 < len(held) / total < 0.25
        texts = RECORD_TEXTS[task]
        shared = {x for r in train for x in texts(r)} & {x for r in held for x in texts(r)}
        # Formulaic texts (in >= formulaic_min_items raw items, e.g. WoS's "감사합니다.") may be on
        # both sides; no other text may.
        if t.formulaic_min_items is not None:
            items = Counter(x for r in [*train, *held] for x in set(texts(r)))
            formulaic = {x for x, n in items.items() if n >= t.formulaic_min_items}
        else:
            formulaic = set()
        c = counts[task]
        report.append(
            f"{task}: {c['items']} items -> {c['groups']} groups (largest {c['largest_group']}), "
            f"{c['linking_texts']} shared texts linked items, {len(shared)} texts on both sides "
            f"({len(shared & formulaic)} formulaic)"
        )
        assert not shared - formulaic, f"{task}: {sorted(shared - formulaic)[:3]} on both sides"
    print("\n".join(report))
    again = tmp_path / "again"
    split_official(DATA, again)  # type: ignore[arg-type]
    assert (again / "ner_heldout.tsv").read_bytes() == (tmp_path / "ner_heldout.tsv").read_bytes()
    assert (again / "nli_heldout.json").read_bytes() == (tmp_path / "nli_heldout.json").read_bytes()


def test_trivial_baselines_follow_their_definitions() -> None:
    train = [
        {"guid": "a", "label": 2, "score": 1.0},
        {"guid": "b", "label": 2, "score": 3.0},
        {"guid": "c", "label": 0, "score": 5.0},
    ]
    held = [{"guid": "d", "label": 1, "score": 0.0}]
    assert get_task("ynat").trivial_baseline(train, held) == [{"guid": "d", "label": "사회"}]
    assert get_task("nli").trivial_baseline(train, held) == [{"guid": "d", "label": "contradiction"}]
    assert get_task("sts").trivial_baseline(train, held) == [{"guid": "d", "score": 3.0}]
    dp_train = [{"guid": "s", "words": ["a", "b"], "deprels": [3, 3]}]
    dp_held = [{"guid": "t", "words": ["x", "y", "z"], "deprels": [0, 0, 0]}]
    assert get_task("dp").trivial_baseline(dp_train, dp_held) == [
        {"guid": "t", "heads": [2, 3, 0], "deprels": ["NP_SBJ"] * 3}
    ]
    wos = [{"guid": "w", "dialogue": [{"role": "user"}, {"role": "sys"}, {"role": "user"}]}]
    assert get_task("wos").trivial_baseline([], wos) == [
        {"guid": "w", "turn": 0, "state": []},
        {"guid": "w", "turn": 2, "state": []},
    ]
    assert get_task("ner").trivial_baseline([], [{"guid": "n", "text": "가 나"}]) == [
        {"guid": "n", "tags": ["O", "O", "O"]}
    ]
    assert get_task("mrc").nonneural_baseline([], []) is None
    assert get_task("wos").nonneural_baseline([], []) is None


def _topic(i: int, label: int) -> dict[str, Any]:
    words = ("주식 금리 환율 증시", "축구 야구 골프 경기")[label].split()
    return {"guid": f"g{i}", "title": f"{words[i % 4]} {words[(i + 1) % 4]} 소식 {i}", "label": label}


def test_nonneural_text_classifier_learns_from_character_ngrams() -> None:
    task = get_task("ynat")
    train = [_topic(i, i % 2) for i in range(40)]
    held = [_topic(i, i % 2) for i in range(40, 50)]
    with warnings.catch_warnings():
        # the experiment's output carries no scikit-learn notices of coming changes
        warnings.simplefilter("error", FutureWarning)
        preds = task.nonneural_baseline(train, held)
    assert [p["label"] for p in preds] == [task.labels[r["label"]] for r in held]  # type: ignore[union-attr]


def test_nonneural_sts_maps_overlap_to_the_score_scale() -> None:
    task = get_task("sts")
    base = ["호스트가 친절했어요", "방이 깨끗하고 넓어요", "위치가 좋고 조용합니다", "가격 대비 훌륭해요"]
    train = [
        {"guid": f"s{i}", "sentence1": a, "sentence2": b, "score": 5.0 if a == b else 0.5}
        for i, (a, b) in enumerate((a, b) for a in base for b in base)
    ]
    held = [
        {"guid": "same", "sentence1": "창밖 풍경이 멋져요", "sentence2": "창밖 풍경이 멋져요"},
        {"guid": "other", "sentence1": "창밖 풍경이 멋져요", "sentence2": "주차가 불편합니다"},
    ]
    same, other = (p["score"] for p in task.nonneural_baseline(train, held))  # type: ignore[union-attr]
    assert 4.0 < same <= 5.0 and 0.0 <= other < 1.5


def test_nonneural_ner_tags_each_character_by_its_most_frequent_train_tag(tmp_path: Path) -> None:
    task = get_task("ner")
    tag = {name: i for i, name in enumerate(task.labels)}
    train = [
        {"guid": "a", "text": "서울에", "tags": [tag["B-LC"], tag["I-LC"], tag["O"]]},
        {"guid": "b", "text": "울산", "tags": [tag["I-LC"], tag["I-LC"]]},
    ]
    preds = task.nonneural_baseline(train, [{"guid": "h", "text": "울산에x"}])
    # 울 is mostly I-LC, but strict IOB2 needs an entity to open with B-; x is unseen: O
    assert preds == [{"guid": "h", "tags": ["B-LC", "I-LC", "O", "O"]}]


def test_nonneural_dp_uses_the_most_frequent_offset_and_label_per_pos() -> None:
    task = get_task("dp")
    rel = {name: i for i, name in enumerate(task.labels)}
    train = [
        {
            "guid": "s",
            "words": ["a", "b", "c"],
            "pos": ["NNG+JKS", "NNG+JKO", "VV+EF"],
            "heads": [3, 3, 0],
            "deprels": [rel["NP_SBJ"], rel["NP_OBJ"], rel["VP"]],
        }
    ]
    held = [{"guid": "t", "words": ["x", "y", "z", "w"], "pos": ["NNP+JKS", "NNG+JKO", "MAG", "VV+EF"]}]
    (pred,) = task.nonneural_baseline(train, held)  # type: ignore[misc]
    # NNP+JKS backs off to JKS (+2), NNG+JKO is known (+1), MAG is unknown (next word); last -> root
    assert pred["heads"] == [3, 3, 4, 0]
    assert pred["deprels"][:2] == ["NP_SBJ", "NP_OBJ"] and pred["deprels"][3] == "VP"


@pytest.mark.realdata
@pytest.mark.skipif(not DATA, reason="KLUE_DATA_DIR is not set (real KLUE dev data)")
def test_nonneural_re_beats_always_no_relation_on_real_data(tmp_path: Path) -> None:
    split_official(DATA, tmp_path)  # type: ignore[arg-type]
    task = get_task("re")
    train, held = task.read(tmp_path / "re_train.json"), task.read(tmp_path / "re_heldout.json")
    for kind in ("trivial_baseline", "nonneural_baseline"):
        write_jsonl(tmp_path / f"{kind}.jsonl", getattr(task, kind)(train, held))
    trivial = score("re", tmp_path / "re_heldout.json", tmp_path / "trivial_baseline.jsonl")
    fitted = score("re", tmp_path / "re_heldout.json", tmp_path / "nonneural_baseline.jsonl")
    assert trivial["metrics"]["micro_f1"] == 0.0
    assert fitted["metrics"]["micro_f1"] > 30.0


def test_results_table_counts_units_as_the_metric_does_and_shows_the_seed_spread() -> None:
    from mtl.config import RunConfig, TaskConfig
    from mtl.experiments.experiment import render, seed_spread

    runs = {"1": {"wos": {"joint_goal_accuracy": 1.0, "slot_f1": 10.0}}}
    runs["2"] = {"wos": {"joint_goal_accuracy": 3.0, "slot_f1": 14.0}}
    spread = seed_spread(runs)
    assert spread["wos"]["joint_goal_accuracy"] == {
        "mean": 2.0,
        "sd": pytest.approx(2**0.5),
        "min": 1.0,
        "max": 3.0,
    }
    report = {
        "seed": 1,
        "seeds": [1, 2],
        "joint": {"steps": 10, "seconds": 60.0, "results": runs["1"]},
        "seed_spread": spread,
        "baselines": {
            "wos": {
                "units": 1038,
                "trivial": {"metrics": {"joint_goal_accuracy": 1.16, "slot_f1": 1.16}, "seconds": 0.0},
                "nonneural": None,
            }
        },
    }
    page = render(report, RunConfig(tasks={"wos": TaskConfig()}))
    assert (
        "| wos | 1038 user turns | joint_goal_accuracy | 1.16 | — | 1.00 | 2.00 ± 1.41 (1.00–3.00) |" in page
    )
