"""Tasks of your own: declared in a config (``kind:``) or registered from Python, next to KLUE's.

The acceptance path: a test writes a Korean single-sentence classification TSV and a sentence-pair
TSV, declares both in a copy of the demo config beside the eight KLUE tasks, trains jointly, and runs
``evaluate``, ``predict`` and ``score`` on them from the command line. The README's "Add your own task"
example is extracted from the README itself, imported through the config's ``imports:`` and trained.
"""

from __future__ import annotations

import json
import re
import signal
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from mtl.batching.featurize import featurize
from mtl.cli.main import main
from mtl.config import TaskConfig, load_config
from mtl.errors import KlueInputError
from mtl.modeling.tokenizer import build_offline_tokenizer
from mtl.tasks import KINDS, get_task

ROOT = Path(__file__).parent.parent
DEMO = ROOT / "configs" / "demo.yaml"
TINY = [
    "encoder.architecture.hidden_size=32",
    "encoder.architecture.num_hidden_layers=1",
    "encoder.architecture.num_attention_heads=2",
    "encoder.architecture.intermediate_size=64",
    "train.log_every=5",
]
KLUE = ("ynat", "nli", "sts", "ner", "re", "dp", "mrc", "wos")

GOOD = [
    "정말 재미있는 영화였다",
    "배우들의 연기가 훌륭했다",
    "다시 보고 싶은 작품",
    "음악이 아름답고 감동적이다",
]
BAD = ["시간이 아까운 영화였다", "지루하고 뻔한 이야기", "연기가 어색해서 실망했다", "두 번은 못 보겠다"]


def write_nsmc(path: Path, n: int, seed: int) -> None:
    """NSMC-style TSV: id, document, label (0 = negative, 1 = positive)."""
    rng = np.random.default_rng(seed)
    lines = ["id\tdocument\tlabel"]
    for i in range(n):
        label = int(rng.integers(2))
        text = (GOOD if label else BAD)[int(rng.integers(4))]
        lines.append(f"{seed * 1000 + i}\t{text} {'ㅎㅎ' if label else 'ㅠㅠ'}\t{label}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_pairs(path: Path, n: int, seed: int) -> None:
    """KorNLI-style TSV without ids: premise, hypothesis, gold_label (names)."""
    rng = np.random.default_rng(seed)
    lines = ["premise\thypothesis\tgold_label"]
    for _ in range(n):
        premise = GOOD[int(rng.integers(4))]
        choice = int(rng.integers(3))
        hypothesis = [premise, BAD[int(rng.integers(4))], "날씨가 맑았다"][choice]
        lines.append(f"{premise}\t{hypothesis}\t{['entailment', 'contradiction', 'neutral'][choice]}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def user_config(root: Path, extra_tasks: dict | None = None, **top: object) -> Path:
    """A copy of the demo config with two tasks of our own next to the eight KLUE tasks."""
    cfg = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    cfg["tasks"]["nsmc"] = {
        "kind": "single_sentence_classification",
        "train": str(root / "nsmc_train.tsv"),
        "dev": str(root / "nsmc_dev.tsv"),
        "text": "document",
        "label": "label",
        "labels": ["negative", "positive"],
        "guid": "id",
        "batch_size": 8,
    }
    cfg["tasks"]["kornli"] = {
        "kind": "sentence_pair_classification",
        "train": str(root / "pairs_train.tsv"),
        "dev": str(root / "pairs_dev.tsv"),
        "text": ["premise", "hypothesis"],
        "label": "gold_label",
        "batch_size": 8,
    }
    cfg["tasks"].update(extra_tasks or {})
    cfg.update(top)
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("user-data")
    write_nsmc(root / "nsmc_train.tsv", 48, 1)
    write_nsmc(root / "nsmc_dev.tsv", 16, 2)
    write_pairs(root / "pairs_train.tsv", 48, 3)
    write_pairs(root / "pairs_dev.tsv", 12, 4)
    return root


@pytest.fixture(scope="module")
def joint(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("user-joint")
    config = user_config(data)
    assert main(["train", "--config", str(config), "--output", str(out), *TINY, "train.max_steps=20"]) == 0
    return out


def test_declared_tasks_train_jointly_with_the_klue_tasks(joint: Path) -> None:
    board = json.loads((joint / "scoreboard.json").read_text(encoding="utf-8"))
    tasks = [row["task"] for row in board["rows"]]
    assert tasks == [*KLUE, "nsmc", "kornli"]  # KLUE's order first, then the config's
    nsmc = board["rows"][tasks.index("nsmc")]
    assert set(nsmc["metrics"]) == {"accuracy", "macro_f1"} and nsmc["n"] == 16
    assert json.loads((joint / "last" / "tasks.json").read_text(encoding="utf-8"))["kornli"]["labels"] == [
        "contradiction",
        "entailment",
        "neutral",
    ]  # sorted labels of the train file, none given


def test_evaluate_predict_and_score_from_the_command_line(
    joint: Path, data: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    ckpt = str(joint / "last")
    assert (
        main(["evaluate", "--checkpoint", ckpt, "--tasks", "nsmc", "kornli", "--output", str(tmp_path)]) == 0
    )
    out = capsys.readouterr().out
    # the reports go to a file that stdout names (the terminal gets the scoreboard and the paths)
    reports = (tmp_path / "classification_report.txt").read_text(encoding="utf-8")
    assert "== nsmc: classification report ==" in reports and "== kornli: classification report ==" in reports
    assert str(tmp_path / "classification_report.txt") in out
    assert (tmp_path / "confusion_nsmc.png").is_file() and (tmp_path / "confusion_kornli.png").is_file()
    board = {r["task"]: r for r in json.loads((tmp_path / "scoreboard.json").read_text())["rows"]}

    for task, dev, key in (("nsmc", "nsmc_dev.tsv", "guid"), ("kornli", "pairs_dev.tsv", "index")):
        pred = tmp_path / f"{task}.jsonl"
        args = [
            "predict",
            "--checkpoint",
            ckpt,
            "--task",
            task,
            "--input",
            str(data / dev),
            "--output",
            str(pred),
        ]
        assert main(args) == 0
        rows = [json.loads(line) for line in pred.read_text(encoding="utf-8").splitlines()]
        assert all(set(r) == {key, "label"} for r in rows)
        if task == "nsmc":
            assert rows[0]["guid"] == "2000" and {r["label"] for r in rows} <= {"negative", "positive"}
        else:
            assert sorted(r["index"] for r in rows) == list(range(12))
        capsys.readouterr()
        # score takes the task's definition from the checkpoint (a config file works the same way)
        assert (
            main(["score", "--task", task, "--gold", str(data / dev), "--pred", str(pred), "--config", ckpt])
            == 0
        )
        scored = json.loads(capsys.readouterr().out)
        assert scored["n"] == board[task]["n"]
        for metric, value in board[task]["metrics"].items():
            assert scored["metrics"][metric] == pytest.approx(value, abs=1e-3)


def test_score_without_the_definition_says_how_to_give_it(data: Path, capsys: pytest.CaptureFixture) -> None:
    pred = data / "none.jsonl"
    pred.write_text("")
    assert main(["score", "--task", "nsmc", "--gold", str(data / "nsmc_dev.tsv"), "--pred", str(pred)]) == 2
    assert "unknown task 'nsmc'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("change", "where", "message"),
    [
        ({"kind": "sentiment"}, "tasks.nsmc.kind", "unknown kind"),
        ({"text": ["document", "label"]}, "tasks.nsmc.text", "reads one column"),
        ({"label": None}, "tasks.nsmc.label", "needs the target column"),
        ({"text": "body"}, "nsmc_train.tsv, line 2", "no column 'body'"),
        ({"labels": ["negative"]}, "nsmc_train.tsv, line ", "is not in tasks.nsmc.labels (negative)"),
    ],
)
def test_bad_definitions_stop_before_training_naming_key_or_record(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture, change: dict, where: str, message: str
) -> None:
    config = yaml.safe_load(user_config(data).read_text(encoding="utf-8"))
    config["tasks"]["nsmc"].update(change)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    assert main(["train", "--config", str(path), "--output", str(tmp_path / "run"), *TINY]) == 2
    err = capsys.readouterr().err
    assert where in err and message in err and "Traceback" not in err
    assert not (tmp_path / "run" / "last").exists()


def test_a_clashing_name_and_an_empty_file_are_named(data: Path, tmp_path: Path, capsys) -> None:
    clash = {"ynat": {"kind": "single_sentence_classification", "train": "x.tsv", "text": "t", "label": "l"}}
    with pytest.raises(KlueInputError, match="'ynat' is a built-in task"):
        load_config(user_config(tmp_path, clash))
    empty = tmp_path / "empty.tsv"
    empty.write_text("id\tdocument\tlabel\n")
    config = user_config(data)
    code = main(
        [
            "train",
            "--config",
            str(config),
            "--output",
            str(tmp_path / "r"),
            *TINY,
            f"tasks.nsmc.train={empty}",
        ]
    )
    assert code == 2 and "empty.tsv: holds no records" in capsys.readouterr().err


@pytest.mark.slow
def test_declared_tasks_resume_bitwise_with_the_trainer(data: Path, tmp_path: Path, monkeypatch) -> None:
    from mtl.batching.stream import MultiTaskStream
    from mtl.training.session import build_session
    from mtl.training.trainer import train_with_trainer

    overrides = [*TINY, "train.max_steps=8", f"cache_dir={tmp_path / 'cache'}", "train.engine=trainer"]
    overrides += [f"tasks.{t}.dev=null" for t in (*KLUE, "nsmc", "kornli")]
    overrides += ["sampler.temperature=1000"]  # near uniform: the two small tasks are drawn too
    cfg = load_config(user_config(data), overrides)

    def run(out: Path, resume: bool = False) -> dict:
        session = build_session(cfg, out, resume=resume, progress=False)
        summary = train_with_trainer(session, progress=False)
        summary["weights"] = {k: v.detach().clone() for k, v in session.model.state_dict().items()}
        return summary

    straight = run(tmp_path / "a")
    original, draws = MultiTaskStream.__next__, {"n": 0}

    def next_with_sigterm(self):  # a real SIGTERM while the 4th step draws its batch
        draws["n"] += 1
        if draws["n"] == 4:
            signal.raise_signal(signal.SIGTERM)
        return original(self)

    monkeypatch.setattr(MultiTaskStream, "__next__", next_with_sigterm)
    stopped = run(tmp_path / "b")
    monkeypatch.setattr(MultiTaskStream, "__next__", original)
    assert stopped["stopped"] and stopped["steps"] == 4
    resumed = run(tmp_path / "b", resume=True)
    for name, tensor in straight["weights"].items():
        assert torch.equal(tensor, resumed["weights"][name]), name


# -- the other generic kinds, without training ---------------------------------------------------
@pytest.fixture(scope="module")
def tokenizer():
    return build_offline_tokenizer()


def test_token_tagging_round_trips_gold_tags_through_windows(tmp_path: Path, tokenizer) -> None:
    rows = [
        {"tokens": ["서울", "에서", "김철수", "를", "만났다"], "tags": ["B-LOC", "O", "B-PER", "O", "O"]},
        # long enough for several windows at max_length 16
        {"tokens": ["삼성전자", "는"] * 12, "tags": ["B-ORG", "O"] * 12},
    ]
    path = tmp_path / "tags.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    settings = TaskConfig(kind="token_tagging", train=str(path), text="tokens", label="tags", max_length=16)
    task = get_task("mytags", settings)
    task.setup(settings, tokenizer)
    assert task.resources["labels"] == ["B-LOC", "B-ORG", "B-PER", "O"]
    records = task.read(path)
    features = featurize(task, records)
    assert max(len(ids) for ids in features["input_ids"]) <= 16
    assert sum(i == 1 for i in features["example_index"]) > 1  # the long sentence was windowed
    # Perfect head outputs: each feature's labels (-100 where no word starts) as its predicted tags.
    outputs = [{"tags": np.asarray(labels)} for labels in features["labels"]]
    predictions = task.decode(records, features, outputs)
    assert [p["tags"] for p in predictions] == [r["tags"] for r in rows]
    assert task.compute_metrics(records, predictions) == {"entity_f1": 100.0}
    wrong = [{**p, "tags": ["O"] * len(p["tags"])} for p in predictions]
    assert task.compute_metrics(records, wrong) == {"entity_f1": 0.0}


def test_pair_regression_reads_scores_and_reports_pearson_and_spearman(tmp_path: Path) -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    path = tmp_path / "korsts.csv"
    path.write_text('s1,s2,score\n"하나, 둘",셋,1.5\n넷,다섯,4\n여섯,일곱,2\n', encoding="utf-8")
    settings = TaskConfig(kind="sentence_pair_regression", text=["s1", "s2"], label="score")
    task = get_task("korsts", settings)
    records = task.read(path)
    assert [r["text_0"] for r in records] == ["하나, 둘", "넷", "여섯"] and records[1]["score"] == 4.0
    preds = [{"index": 0, "score": 1.0}, {"index": 1, "score": 3.0}, {"index": 2, "score": 3.0}]
    metrics = task.compute_metrics(records, preds)
    gold, pred = [1.5, 4.0, 2.0], [1.0, 3.0, 3.0]
    assert metrics["pearsonr"] == pytest.approx(100 * scipy_stats.pearsonr(gold, pred)[0])
    assert metrics["spearmanr"] == pytest.approx(100 * scipy_stats.spearmanr(gold, pred)[0])
    bad = tmp_path / "bad.csv"
    bad.write_text("s1,s2,score\n가,나,high\n", encoding="utf-8")
    with pytest.raises(KlueInputError, match=r"bad.csv, line 2: score 'high'"):
        task.read(bad)


def test_every_kind_is_documented_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for kind in KINDS:
        assert f"`{kind}`" in readme, kind


# -- a new kind in Python: the README's own example ----------------------------------------------
def readme_example() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Add your own task", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]


def test_the_readme_task_is_short() -> None:
    assert len(readme_example().strip().splitlines()) <= 65


def test_a_registered_task_trains_jointly_and_works_with_every_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    import heads
    import mtl.tasks

    (tmp_path / "hashtag_task.py").write_text(readme_example(), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    # The registration lasts for this test only: later tests see the registries as they were.
    monkeypatch.setattr(mtl.tasks, "TASKS", dict(mtl.tasks.TASKS))
    monkeypatch.setattr(heads, "HEADS", dict(heads.HEADS))
    monkeypatch.setitem(sys.modules, "hashtag_task", None)
    del sys.modules["hashtag_task"]
    tags = [["경제"], ["정치", "경제"], ["스포츠"], ["날씨"], []]
    texts = [
        "금리가 올랐다",
        "국회가 예산안을 통과시켰다",
        "축구 대표팀이 이겼다",
        "내일은 비가 온다",
        "안녕하세요",
    ]
    lines = [
        json.dumps({"id": f"h{i}", "text": t, "tags": g}, ensure_ascii=False)
        for i, (t, g) in enumerate(zip(texts * 4, tags * 4, strict=True))
    ]
    (tmp_path / "hashtags.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    config["imports"] = ["hashtag_task"]
    config["tasks"] = {
        "ynat": config["tasks"]["ynat"],
        "hashtags": {"train": str(tmp_path / "hashtags.jsonl"), "dev": str(tmp_path / "hashtags.jsonl")},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    out = tmp_path / "run"
    assert main(["train", "--config", str(path), "--output", str(out), *TINY, "train.max_steps=6"]) == 0
    board = json.loads((out / "scoreboard.json").read_text(encoding="utf-8"))
    assert [r["task"] for r in board["rows"]] == ["ynat", "hashtags"]
    assert "micro_f1" in board["rows"][1]["metrics"]
    pred = tmp_path / "pred.jsonl"
    args = ["predict", "--checkpoint", str(out / "last"), "--task", "hashtags"]
    assert main([*args, "--input", str(tmp_path / "hashtags.jsonl"), "--output", str(pred)]) == 0
    capsys.readouterr()
    gold = str(tmp_path / "hashtags.jsonl")
    assert (
        main(["score", "--task", "hashtags", "--gold", gold, "--pred", str(pred), "--config", str(path)]) == 0
    )
    assert json.loads(capsys.readouterr().out)["n"] == 20


def test_declared_tasks_in_the_python_api_and_as_transformers_exports(joint: Path, tmp_path: Path) -> None:
    from transformers import pipeline

    from mtl.serving.api import KlueMultiTask
    from mtl.serving.export import export_task

    m = KlueMultiTask.from_pretrained(joint / "last")
    [nsmc] = m.predict("nsmc", ["정말 재미있는 영화였다 ㅎㅎ"])
    assert nsmc["label"] in ("negative", "positive") and sum(nsmc["probs"].values()) == pytest.approx(1.0)
    [pair] = m.predict("kornli", [("정말 재미있는 영화였다", "날씨가 맑았다")])
    assert pair["label"] in ("contradiction", "entailment", "neutral")
    with pytest.raises(KlueInputError, match="kornli inputs"):
        m.predict("kornli", ["only one text"])
    exported = export_task(m, "nsmc", tmp_path / "nsmc")
    assert exported["class"] == "AutoModelForSequenceClassification"
    classify = pipeline("text-classification", model=str(tmp_path / "nsmc"), tokenizer=str(tmp_path / "nsmc"))
    out = classify("정말 재미있는 영화였다 ㅎㅎ", top_k=None)
    assert {r["label"]: r["score"] for r in out} == pytest.approx(nsmc["probs"], abs=1e-5)


def test_a_declared_tasks_files_resolve_beside_the_config_and_data_dir_serves_klue_tasks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "project"
    (folder / "data").mkdir(parents=True)
    lines = ["text,label"] + [f"{'좋은 영화' if i % 2 else '나쁜 영화'} {i},{i % 2}" for i in range(40)]
    (folder / "data" / "senti_train.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    cfg = yaml.safe_load(DEMO.read_text(encoding="utf-8"))  # data_dir: "@samples"
    cfg["tasks"] = {
        "ynat": cfg["tasks"]["ynat"],
        "senti": {
            "kind": "single_sentence_classification",
            "train": "data/senti_train.csv",
            "text": "text",
            "label": "label",
            "batch_size": 8,
        },
    }
    cfg["train"].update(max_steps=1, eval_every=0)
    config = folder / "demo.yaml"
    config.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # neither the config's folder nor the samples'
    status = main(["train", "--config", str(config), "--output", str(tmp_path / "run"), *TINY])
    assert status == 0, capsys.readouterr().err

    (folder / "data" / "senti_train.csv").unlink()
    status = main(["train", "--config", str(config), "--output", str(tmp_path / "run2"), *TINY])
    err = capsys.readouterr().err
    assert status == 2 and "Traceback" not in err
    assert str(folder / "data" / "senti_train.csv") in err and "tasks.senti.train" in err
    assert "relative to the config file's folder" in err, err
