"""`klue-mtl score` end to end on the real dev files: perfect and perturbed predictions files are
scored exactly as an independent implementation of the official definitions scores them, and
every malformed predictions file is an exit-2 error naming the file and the unit."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import reference_metrics as ref

from mtl.cli.main import main
from mtl.data.labels import DP_DEPRELS, NER_LABELS, NLI_LABELS, RE_LABELS, YNAT_LABELS
from mtl.tasks import get_task

DATA = os.environ.get("KLUE_DATA_DIR")
OFFICIAL = {
    "ynat": "ynat-v1.1_dev.json",
    "nli": "klue-nli-v1.1_dev.json",
    "sts": "klue-sts-v1.1_dev.json",
    "ner": "klue-ner-v1.1_dev.tsv",
    "re": "klue-re-v1.1_dev.json",
    "dp": "klue-dp-v1.1_dev.tsv",
    "mrc": "klue-mrc-v1_dev.subset.json",
    "wos": "wos-v1_dev.subset.json",
}
needs_data = pytest.mark.skipif(not DATA, reason="KLUE_DATA_DIR is not set (real KLUE dev data)")


def gold_path(task: str) -> Path:
    return Path(DATA) / "official" / OFFICIAL[task]  # type: ignore[arg-type]


def perturbed_predictions(task: str, records: list[dict], rate: float, seed: int) -> list[dict]:
    """Contract-shaped predictions: gold, with a fraction ``rate`` of units corrupted (seeded)."""
    rng = random.Random(seed)
    flip = lambda: rng.random() < rate  # noqa: E731
    preds: list[dict] = []
    for r in records:
        g = r["guid"]
        if task in ("ynat", "nli", "re"):
            names = {"ynat": YNAT_LABELS, "nli": NLI_LABELS, "re": RE_LABELS}[task]
            label = rng.randrange(len(names)) if flip() else r["label"]
            row = {"guid": g, "label": names[label]}
            if task == "re":
                probs = np.random.default_rng(rng.randrange(10**9)).dirichlet(np.ones(30))
                probs[label] += 1.0
                row["probs"] = (probs / probs.sum()).tolist()
            preds.append(row)
        elif task == "sts":
            preds.append({"guid": g, "score": r["score"] + (rng.uniform(-2, 2) if flip() else 0.0)})
        elif task == "ner":
            tags = [NER_LABELS[t] for t in r["tags"]]
            tags = [rng.choice(NER_LABELS) if flip() else t for t in tags]
            preds.append({"guid": g, "tags": tags})
        elif task == "dp":
            n = len(r["words"])
            heads = [rng.randrange(n + 1) if flip() else h for h in r["heads"]]
            deprels = [DP_DEPRELS[rng.randrange(38) if flip() else d] for d in r["deprels"]]
            preds.append({"guid": g, "heads": heads, "deprels": deprels})
        elif task == "mrc":
            answer = r["answers"][0]["text"] if r["answers"] else ""
            if flip():
                answer = rng.choice(["", answer[:-1], answer + " 것", r["context"][:12]])
            preds.append({"guid": g, "answer": answer})
        elif task == "wos":
            for i, turn in enumerate(r["dialogue"]):
                if turn["role"] != "user":
                    continue
                state = list(turn["state"])
                if flip() and state:
                    state.pop(rng.randrange(len(state)))
                if flip():
                    state.append("식당-지역-서울 어딘가")
                preds.append({"guid": g, "turn": i, "state": state})
    return preds


def reference_scores(task: str, records: list[dict], preds: list[dict]) -> dict[str, float]:
    if task == "wos":
        golds = [t["state"] for r in records for t in r["dialogue"] if t["role"] == "user"]
        return ref.ref_wos(golds, [p["state"] for p in preds])
    if task in ("ynat", "nli"):
        names = YNAT_LABELS if task == "ynat" else NLI_LABELS
        gold, pred = [r["label"] for r in records], [names.index(p["label"]) for p in preds]
        return (
            {"macro_f1": ref.ref_macro_f1(gold, pred)}
            if task == "ynat"
            else {"accuracy": ref.ref_accuracy(gold, pred)}
        )
    if task == "sts":
        return ref.ref_sts([r["score"] for r in records], [p["score"] for p in preds])
    if task == "ner":
        return ref.ref_ner(
            [r["text"] for r in records],
            [[NER_LABELS[t] for t in r["tags"]] for r in records],
            [p["tags"] for p in preds],
        )
    if task == "re":
        probs = np.array([p["probs"] for p in preds])
        return ref.ref_re([r["label"] for r in records], [RE_LABELS.index(p["label"]) for p in preds], probs)
    if task == "dp":
        return ref.ref_dp(
            [r["heads"] for r in records],
            [r["deprels"] for r in records],
            [p["heads"] for p in preds],
            [[DP_DEPRELS.index(d) for d in p["deprels"]] for p in preds],
        )
    return ref.ref_mrc([[a["text"] for a in r["answers"]] for r in records], [p["answer"] for p in preds])


def write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def run_score(capsys: pytest.CaptureFixture, task: str, gold: Path, pred: Path) -> tuple[int, str, str]:
    code = main(["score", "--task", task, "--gold", str(gold), "--pred", str(pred)])
    out = capsys.readouterr()
    return code, out.out, out.err


@needs_data
@pytest.mark.parametrize("task", list(OFFICIAL))
def test_score_matches_independent_reference(
    task: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    records = get_task(task).read(gold_path(task))
    # Shuffled order: score matches predictions by key, not by position.
    for rate, seed in ((0.0, 0), (0.05, 1)):
        preds = perturbed_predictions(task, records, rate, seed)
        shuffled = preds[:]
        random.Random(seed).shuffle(shuffled)
        code, out, err = run_score(capsys, task, gold_path(task), write(tmp_path / "p.jsonl", shuffled))
        assert code == 0, err
        result = json.loads(out)
        if rate == 0.0:
            assert all(v == pytest.approx(100.0) for v in result["metrics"].values())
            continue
        expected = reference_scores(task, records, preds)
        assert result["task"] == task and result["n"] == len(preds)
        assert set(result["metrics"]) >= set(expected)
        for key, value in expected.items():
            assert result["metrics"][key] == pytest.approx(value, abs=1e-4), key


def _malformed_cases(task: str, preds: list[dict]) -> list[tuple[str, list[dict], str]]:
    first = preds[0]
    cases = [
        ("missing unit", preds[1:], "no prediction"),
        ("repeated unit", preds + [preds[0]], "more than once"),
        ("unknown guid", preds + [{**first, "guid": "nope-000"}], "nope-000"),
        (
            "missing field",
            [
                {
                    k: v
                    for k, v in first.items()
                    if k not in ("label", "score", "tags", "heads", "answer", "state")
                }
            ]
            + preds[1:],
            "missing field",
        ),
    ]
    shape = {
        "ner": lambda: ({**first, "tags": first["tags"][:-1]}, "tags"),
        "dp": lambda: ({**first, "heads": first["heads"] + [0]}, "heads"),
        "re": lambda: ({**first, "probs": first["probs"][:29]}, "probs"),
        "ynat": lambda: ({**first, "label": "날씨"}, "label"),
        "nli": lambda: ({**first, "label": "maybe"}, "label"),
        "sts": lambda: ({**first, "score": "high"}, "score"),
        "mrc": lambda: ({**first, "answer": None}, "answer"),
        "wos": lambda: ({**first, "turn": first["turn"] + 1}, "not a user turn"),
    }[task]()
    cases.append(("wrong shape", [shape[0]] + preds[1:], shape[1]))
    return cases


@needs_data
@pytest.mark.parametrize("task", list(OFFICIAL))
def test_malformed_predictions_exit_2_naming_file_and_unit(
    task: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    records = get_task(task).read(gold_path(task))
    preds = perturbed_predictions(task, records, 0.0, 0)
    for name, rows, needle in _malformed_cases(task, preds):
        pred = write(tmp_path / f"{name.replace(' ', '_')}.jsonl", rows)
        code, out, err = run_score(capsys, task, gold_path(task), pred)
        assert code == 2, name
        assert out == ""
        assert str(pred) in err and needle in err, (name, err)
        assert "Traceback" not in err and len(err.splitlines()) <= 4
    bad_json = tmp_path / "bad.jsonl"
    bad_json.write_text(json.dumps(preds[0], ensure_ascii=False) + "\n{not json\n", encoding="utf-8")
    code, _, err = run_score(capsys, task, gold_path(task), bad_json)
    assert code == 2 and f"{bad_json}, line 2" in err


def test_malformed_gold_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    gold = tmp_path / "gold.json"
    gold.write_text('[{"guid": "ynat-1", "title": "새 제목", "label": "날씨"}]', encoding="utf-8")
    pred = write(tmp_path / "p.jsonl", [{"guid": "ynat-1", "label": "경제"}])
    code, _, err = run_score(capsys, "ynat", gold, pred)
    assert code == 2 and str(gold) in err and "ynat-1" in err
    code, _, err = run_score(capsys, "ynat", tmp_path / "missing.json", pred)
    assert code == 2 and "missing.json" in err and "not found" in err
    code, _, err = run_score(capsys, "bogus", gold, pred)
    assert code == 2 and "unknown task" in err


def test_score_does_not_import_torch(tmp_path: Path) -> None:
    gold = tmp_path / "gold.json"
    gold.write_text(
        '[{"guid": "y-1", "title": "제목 하나", "label": "경제"}, {"guid": "y-2", "title": "제목 둘", "label": "정치"}]',
        encoding="utf-8",
    )
    pred = write(tmp_path / "p.jsonl", [{"guid": "y-2", "label": "정치"}, {"guid": "y-1", "label": "정치"}])
    code = (
        "import sys, json\nfrom mtl.cli.main import main\n"
        f"rc = main(['score', '--task', 'ynat', '--gold', {str(gold)!r}, '--pred', {str(pred)!r}])\n"
        "assert rc == 0\nassert 'torch' not in sys.modules, 'score imported torch'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    scored = json.loads(result.stdout)
    # y-1 gold 경제 predicted 정치; y-2 correct. Per class F1: 경제 0 (fn), 정치 2/3 -> macro 33.33.
    assert scored["metrics"]["macro_f1"] == pytest.approx(100 / 3)


def test_score_of_an_unknown_task_without_config_names_the_config_option(tmp_path, capsys) -> None:
    gold, pred = tmp_path / "gold.tsv", tmp_path / "pred.jsonl"
    gold.write_text("text\tlabel\n좋다\t1\n", encoding="utf-8")
    pred.write_text('{"index": 0, "label": "1"}\n', encoding="utf-8")
    status, _, err = run_score(capsys, "senti", gold, pred)
    assert status == 2 and "Traceback" not in err
    assert "--config" in err and "kind:" in err, err
