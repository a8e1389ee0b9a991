"""Reliability: bad input stops every command before any work, numerical faults stop (or skip) cleanly,
runs are deterministic and carry their provenance, configs cannot write outside the output folder.

The malformed-input corpus copies the bundled samples (written by the project, not KLUE data) to a
temporary folder and corrupts one record per case.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from mtl.batching.stream import MultiTaskStream
from mtl.cli.main import main
from mtl.samples import SAMPLES_DIR

TASKS = ("ynat", "nli", "sts", "ner", "re", "dp", "mrc", "wos")
TRAIN_FILES = {t: f"{t}_train.{'tsv' if t in ('ner', 'dp') else 'json'}" for t in TASKS}
DEV_FILES = {t: f"{t}_dev.{'tsv' if t in ('ner', 'dp') else 'json'}" for t in TASKS}
TINY_ARCH = {
    "hidden_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 64,
}


def config_data(data_dir: Path, *, dev: bool = True, steps: int = 4) -> dict[str, Any]:
    """All eight tasks on the files in ``data_dir`` with a tiny random encoder."""
    tasks: dict[str, dict[str, Any]] = {
        t: {"train": TRAIN_FILES[t], "dev": DEV_FILES[t] if dev else None, "batch_size": 4} for t in TASKS
    }
    for t in ("ner", "mrc", "wos"):
        tasks[t]["max_length"] = 128
    tasks["mrc"]["doc_stride"] = 32
    tasks["wos"]["ontology"] = "ontology.json"
    return {
        "encoder": {"name": "tiny", "tokenizer": "offline", "random_init": True, "architecture": TINY_ARCH},
        "data_dir": str(data_dir),
        "tasks": tasks,
        "train": {"max_steps": steps, "learning_rate": 1.0e-3, "log_every": 1},
    }


def write_config(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A private copy of the bundled samples, free to corrupt."""
    target = tmp_path / "data"
    shutil.copytree(SAMPLES_DIR, target, ignore=shutil.ignore_patterns("*.py", "__pycache__", "generators"))
    return target


@pytest.fixture
def no_training_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any draw of a training batch fails the test: bad input must stop the run before step 1."""

    def forbidden(self: MultiTaskStream) -> dict[str, Any]:
        raise AssertionError("a training batch was drawn although the input is malformed")

    monkeypatch.setattr(MultiTaskStream, "__next__", forbidden)


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.err


# -- corruptions: each returns (file it broke, regex the message must match to name the record) --------
def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _dump(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")


def _edit_json(d: Path, name: str, index: int, edit: Callable[[dict[str, Any]], None]) -> tuple[str, str]:
    path = d / name
    records = _load(path)
    edit(records[index])
    _dump(path, records)
    return name, rf"record {re.escape(records[index]['guid'])}:"


def _tsv_lines(d: Path, name: str) -> list[str]:
    return (d / name).read_text(encoding="utf-8").split("\n")


def _edit_tsv_row(
    d: Path, name: str, nth_row: int, edit: Callable[[list[str]], list[str]]
) -> tuple[str, str]:
    """Edit the ``nth_row``-th data row (not a comment, not blank); the record is its 1-based line."""
    lines = _tsv_lines(d, name)
    rows = [i for i, line in enumerate(lines) if line and not line.startswith("##")]
    i = rows[nth_row]
    lines[i] = "\t".join(edit(lines[i].split("\t")))
    (d / name).write_text("\n".join(lines), encoding="utf-8")
    return name, rf"line {i + 1}:"


def missing_key(d: Path) -> tuple[str, str]:
    return _edit_json(d, "ynat_train.json", 3, lambda r: r.pop("title"))


def unknown_label(d: Path) -> tuple[str, str]:
    return _edit_json(d, "nli_train.json", 5, lambda r: r.update(gold_label="maybe"))


def sts_score_not_a_number(d: Path) -> tuple[str, str]:
    return _edit_json(d, "sts_train.json", 2, lambda r: r["labels"].update({"real-label": "high"}))


def ner_row_without_tab(d: Path) -> tuple[str, str]:
    return _edit_tsv_row(d, "ner_train.tsv", 40, lambda cols: [cols[0] + " " + cols[1]])


def ner_unknown_tag(d: Path) -> tuple[str, str]:
    return _edit_tsv_row(d, "ner_train.tsv", 70, lambda cols: [cols[0], "B-XYZ"])


def ner_truncated_last_sentence(d: Path) -> tuple[str, str]:
    # The last sentence loses its rows after the header: a header followed by nothing.
    lines = _tsv_lines(d, "ner_train.tsv")
    header = max(i for i, line in enumerate(lines) if line.startswith("## klue-ner"))
    (d / "ner_train.tsv").write_text("\n".join(lines[: header + 1]) + "\n", encoding="utf-8")
    return "ner_train.tsv", rf"line {header + 1}:"


def re_span_not_word(d: Path) -> tuple[str, str]:
    def shift(r: dict[str, Any]) -> None:
        r["subject_entity"]["start_idx"] += 1
        r["subject_entity"]["end_idx"] += 1

    return _edit_json(d, "re_train.json", 4, shift)


def re_unknown_label(d: Path) -> tuple[str, str]:
    return _edit_json(d, "re_train.json", 6, lambda r: r.update(label="per:favourite_food"))


def dp_head_not_int(d: Path) -> tuple[str, str]:
    return _edit_tsv_row(d, "dp_train.tsv", 9, lambda cols: [*cols[:4], "x", cols[5]])


def dp_head_out_of_range(d: Path) -> tuple[str, str]:
    return _edit_tsv_row(d, "dp_train.tsv", 12, lambda cols: [*cols[:4], "99", cols[5]])


def mrc_answer_start_wrong(d: Path) -> tuple[str, str]:
    path = d / "mrc_train.json"
    data = _load(path)
    for doc in data["data"]:
        for para in doc["paragraphs"]:
            for qa in para["qas"]:
                if qa.get("answers") and not qa.get("is_impossible"):
                    qa["answers"][0]["answer_start"] += 3
                    _dump(path, data)
                    return "mrc_train.json", rf"record {re.escape(qa['guid'])}:"
    raise AssertionError("no answerable question in the MRC sample")


def wos_state_item_malformed(d: Path) -> tuple[str, str]:
    def break_state(r: dict[str, Any]) -> None:
        r["dialogue"][0]["state"] = ["숙소가격대저렴"]

    return _edit_json(d, "wos_train.json", 1, break_state)


def truncated_json(d: Path) -> tuple[str, str]:
    path = d / "nli_train.json"
    text = path.read_text(encoding="utf-8")
    cut = text[: len(text) // 2]
    path.write_text(cut, encoding="utf-8")
    # The decoder stops at or before the cut: the named line is one of the lines that are left.
    return "nli_train.json", rf"line ({'|'.join(str(n) for n in range(1, cut.count(chr(10)) + 2))}):"


def not_utf8(d: Path) -> tuple[str, str]:
    path = d / "ynat_train.json"
    data = path.read_bytes()
    at = data.index("정치".encode())
    path.write_bytes(data[:at] + "정치".encode("cp949") + data[at + len("정치".encode()) :])
    line = data.count(b"\n", 0, at) + 1
    return "ynat_train.json", rf"line {line}:"


def empty_file(d: Path) -> tuple[str, str]:
    (d / "sts_train.json").write_text("", encoding="utf-8")
    return "sts_train.json", "empty"


def missing_file(d: Path) -> tuple[str, str]:
    (d / "re_train.json").unlink()
    return "re_train.json", "not found"


def bad_dev_record(d: Path) -> tuple[str, str]:
    # Dev files are read and checked before training too, not only at the first evaluation.
    return _edit_json(d, "ynat_dev.json", 1, lambda r: r.update(label="날씨"))


def bad_ontology(d: Path) -> tuple[str, str]:
    (d / "ontology.json").write_text('{"숙소-가격대": "저렴"', encoding="utf-8")
    return "ontology.json", r"line 1:"


CORRUPTIONS = [
    missing_key,
    unknown_label,
    sts_score_not_a_number,
    ner_row_without_tab,
    ner_unknown_tag,
    ner_truncated_last_sentence,
    re_span_not_word,
    re_unknown_label,
    dp_head_not_int,
    dp_head_out_of_range,
    mrc_answer_start_wrong,
    wos_state_item_malformed,
    truncated_json,
    not_utf8,
    empty_file,
    missing_file,
    bad_dev_record,
    bad_ontology,
]


@pytest.mark.parametrize("corrupt", CORRUPTIONS, ids=lambda f: f.__name__)
def test_train_rejects_malformed_input_before_any_step(
    corrupt: Callable[[Path], tuple[str, str]],
    data_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    no_training_step: None,
) -> None:
    name, record = corrupt(data_dir)
    config = write_config(tmp_path / "run.yaml", config_data(data_dir))
    out = tmp_path / "out"
    status, err = run_cli(["train", "--config", str(config), "--output", str(out)], capsys)
    assert status == 2, err
    assert err.startswith("klue-mtl train: error: ") and "Traceback" not in err, err
    assert str(data_dir / name) in err, err
    assert re.search(record, err), err
    assert not (out / "last").exists() and not (out / "tensorboard").exists()


# -- numerical faults --------------------------------------------------------------------------------
# Masked LM on the other tasks' training text, mixed in: its masks are drawn per batch, so resume must
# restore the stream's generator too.
MLM_TASK = {"mlm": {"kind": "masked_lm", "train": "@tasks", "batch_size": 4, "max_length": 64}}


def samples_config(
    tmp_path: Path,
    engine: str,
    steps: int,
    extra: dict[str, Any] | None = None,
    extra_tasks: dict[str, Any] | None = None,
) -> Path:
    """All eight tasks on the bundled samples, no evaluation, a checkpoint after every step."""
    data = config_data(SAMPLES_DIR, dev=False, steps=steps)
    data["train"].update({"engine": engine, "save_every": 1, **(extra or {})})
    data["tasks"].update(extra_tasks or {})
    return write_config(tmp_path / f"{engine}.yaml", data)


@pytest.fixture
def nan_at_step(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], dict[str, Any]]:
    """Make the loss of the batch drawn at step S NaN, through the graph like an overflow would."""
    from mtl.modeling.model import MultiTaskModel

    draw, forward = MultiTaskStream.__next__, MultiTaskModel.forward

    def arm(step: int) -> dict[str, Any]:
        state: dict[str, Any] = {"draws": 0, "task": None}

        def counting_draw(self: MultiTaskStream) -> dict[str, Any]:
            state["draws"] += 1  # one draw per optimizer step (no gradient accumulation here)
            return draw(self)

        def poisoned(self: MultiTaskModel, task: str, **batch: torch.Tensor) -> Any:
            out = forward(self, task, **batch)
            if self.training and state["draws"] == step and state["task"] is None:
                state["task"] = task
                out.loss = out.loss * float("nan")
            return out

        monkeypatch.setattr(MultiTaskStream, "__next__", counting_draw)
        monkeypatch.setattr(MultiTaskModel, "forward", poisoned)
        return state

    return arm


def load_weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(checkpoint / "model.safetensors"))


@pytest.mark.parametrize("engine", ["loop", "trainer"])
def test_nan_loss_stops_with_step_and_task_and_keeps_the_last_checkpoint(
    engine: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], nan_at_step: Callable[[int], dict]
) -> None:
    from mtl.training.checkpoint import load_checkpoint, load_training_state

    state = nan_at_step(4)
    out = tmp_path / "out"
    config = samples_config(tmp_path, engine, 8)
    status, err = run_cli(["train", "--config", str(config), "--output", str(out)], capsys)
    assert status == 2, err
    assert "step 4" in err and f"the {state['task']} loss is nan" in err, err
    assert "Traceback" not in err
    # The checkpoint of the step before the fault is intact, loadable and finite.
    load_checkpoint(out / "last")
    assert load_training_state(out / "last").step == 3
    assert all(torch.isfinite(w).all() for w in load_weights(out / "last").values())

    # Resumed, the run names its own step numbers: the 2nd step after resuming from 3 is step 5.
    state = nan_at_step(2)
    status, err = run_cli(["train", "--config", str(config), "--output", str(out), "--resume"], capsys)
    assert status == 2 and "step 5" in err and f"the {state['task']} loss is nan" in err, err
    assert load_training_state(out / "last").step == 4


def test_nan_loss_under_skip_policy_skips_the_batch_and_counts_it_in_both_engines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], nan_at_step: Callable[[int], dict]
) -> None:
    from mtl.training.checkpoint import load_training_state

    weights = {}
    for engine in ("loop", "trainer"):
        state = nan_at_step(4)
        out = tmp_path / engine
        config = samples_config(tmp_path, engine, 8, {"nan_policy": "skip"})
        status, err = run_cli(["train", "--config", str(config), "--output", str(out)], capsys)
        assert status == 0, err
        assert state["task"] is not None
        saved = load_training_state(out / "last")
        assert saved.step == 8 and saved.extra["skipped_steps"] == 1
        assert saved.scheduler["last_epoch"] == 8  # the skipped step still counts in the schedule
        weights[engine] = load_weights(out / "last")
        assert all(torch.isfinite(w).all() for w in weights[engine].values()), engine
    # A skipped batch leaves no gradient in either engine: they still reach the same weights.
    for name, tensor in weights["loop"].items():
        torch.testing.assert_close(tensor, weights["trainer"][name], rtol=1e-4, atol=1e-6, msg=name)


# -- bad configs, checkpoints and output folders ---------------------------------------------------
@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (lambda d: d["tasks"].update(pos={"train": "pos_train.json"}), "tasks.pos"),
        (lambda d: d["train"].update(max_stepz=3), "train.max_stepz"),
        (lambda d: d["tasks"]["ner"].update(batch_size="eight"), "tasks.ner.batch_size"),
        (lambda d: d.update(cache_dir="../elsewhere"), "cache_dir"),
        (lambda d: d.update(cache_dir="/tmp/klue-mtl-escape"), "cache_dir"),
    ],
    ids=["unknown-task", "unknown-key", "bad-value", "cache-dir-parent", "cache-dir-absolute"],
)
def test_train_rejects_a_bad_config_naming_file_and_key(
    edit: Callable[[dict[str, Any]], None],
    key: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    no_training_step: None,
) -> None:
    data = config_data(SAMPLES_DIR)
    edit(data)
    config = write_config(tmp_path / "bad.yaml", data)
    out = tmp_path / "runs" / "out"
    status, err = run_cli(["train", "--config", str(config), "--output", str(out)], capsys)
    assert status == 2 and str(config) in err and f"key {key}" in err, err
    assert not out.exists() and not (tmp_path / "runs" / "elsewhere").exists()


def test_cache_dir_resolves_inside_the_output_folder_and_overrides_cannot_climb_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_training_step: None
) -> None:
    from mtl.config import load_config
    from mtl.training.session import resolve_cache_dir

    data = config_data(SAMPLES_DIR)
    data["cache_dir"] = "features"
    config = write_config(tmp_path / "run.yaml", data)
    out = tmp_path / "out"
    assert resolve_cache_dir(load_config(config), out) == out / "features"
    # A command-line override is the user's own choice of folder, but still cannot use '..'.
    escape = ["train", "--config", str(config), "--output", str(out), "cache_dir=../../escape"]
    status, err = run_cli(escape, capsys)
    assert status == 2 and "cache_dir" in err, err
    assert not (tmp_path.parent / "escape").exists()


def test_train_rejects_an_output_folder_that_cannot_be_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_training_step: None
) -> None:
    config = write_config(tmp_path / "run.yaml", config_data(SAMPLES_DIR))
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    status, err = run_cli(["train", "--config", str(config), "--output", str(blocker / "out")], capsys)
    assert status == 2 and str(blocker / "out") in err and "not writable" in err, err


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained checkpoint of all eight tasks (weights do not matter for input checks)."""
    from mtl.config import load_config
    from mtl.training.session import build_session

    root = tmp_path_factory.mktemp("ckpt")
    config = write_config(root / "run.yaml", config_data(SAMPLES_DIR))
    session = build_session(load_config(config), root / "run", progress=False)
    path = session.save("ckpt", None)
    assert path is not None
    return path.resolve()


def _copy_checkpoint(checkpoint: Path, target: Path) -> Path:
    shutil.copytree(checkpoint, target)
    return target


def test_finetune_evaluate_predict_reject_a_checkpoint_without_tokenizer_files(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], no_training_step: None
) -> None:
    broken = _copy_checkpoint(checkpoint, tmp_path / "ckpt")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (broken / name).unlink()
    commands = [
        ["finetune", "--from", str(broken), "--task", "ynat", "--output", str(tmp_path / "ft")],
        ["evaluate", "--checkpoint", str(broken), "--tasks", "ynat", "--output", str(tmp_path / "ev")],
        ["predict", "--checkpoint", str(broken), "--task", "ynat"]
        + ["--input", str(SAMPLES_DIR / "ynat_dev.json"), "--output", str(tmp_path / "p.jsonl")],
    ]
    for argv in commands:
        status, err = run_cli(argv, capsys)
        assert status == 2 and str(broken) in err and "tokenizer files missing" in err, (argv[0], err)
    assert not (tmp_path / "ft" / "last").exists() and not (tmp_path / "p.jsonl").exists()


def test_a_checkpoint_whose_tokenizer_outgrew_the_embeddings_is_rejected(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from transformers import AutoTokenizer

    broken = _copy_checkpoint(checkpoint, tmp_path / "ckpt")
    tokenizer = AutoTokenizer.from_pretrained(str(broken))
    tokenizer.add_tokens(["[NEW1]", "[NEW2]"], special_tokens=True)
    tokenizer.save_pretrained(str(broken))  # ids past the embedding matrix would crash mid-run
    argv = ["predict", "--checkpoint", str(broken), "--task", "ynat"]
    argv += ["--input", str(SAMPLES_DIR / "ynat_dev.json"), "--output", str(tmp_path / "p.jsonl")]
    status, err = run_cli(argv, capsys)
    assert status == 2 and str(broken) in err and "embeddings" in err, err


def test_finetune_rejects_a_head_that_does_not_fit_its_task(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], no_training_step: None
) -> None:
    from safetensors.torch import load_file, save_file

    broken = _copy_checkpoint(checkpoint, tmp_path / "ckpt")
    # A consistent checkpoint (config and weights agree) whose YNAT head has 9 labels instead of 7.
    config = json.loads((broken / "config.json").read_text(encoding="utf-8"))
    config["klue_mtl"]["heads"]["ynat"]["args"]["num_labels"] = 9
    (broken / "config.json").write_text(json.dumps(config), encoding="utf-8")
    weights = load_file(str(broken / "model.safetensors"))
    for name in [n for n in weights if n.startswith("heads.ynat.out_proj.")]:
        weights[name] = torch.zeros((9, *weights[name].shape[1:]))
    save_file(weights, str(broken / "model.safetensors"))
    argv = ["finetune", "--from", str(broken), "--task", "ynat", "--output", str(tmp_path / "ft")]
    status, err = run_cli(argv, capsys)
    assert status == 2 and str(broken) in err and "ynat head" in err and "does not fit" in err, err


def test_predict_and_evaluate_reject_malformed_input_files(
    checkpoint: Path, data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name, record = re_span_not_word(data_dir)
    shutil.copy(data_dir / name, data_dir / "re_dev.json")
    predict = ["predict", "--checkpoint", str(checkpoint), "--task", "re"]
    predict += ["--input", str(data_dir / name), "--output", str(tmp_path / "re.jsonl")]
    status, err = run_cli(predict, capsys)
    assert status == 2 and str(data_dir / name) in err and re.search(record, err), err
    assert not (tmp_path / "re.jsonl").exists()
    evaluate = ["evaluate", "--checkpoint", str(checkpoint), "--tasks", "re", "--data-dir", str(data_dir)]
    status, err = run_cli([*evaluate, "--output", str(tmp_path / "ev")], capsys)
    assert status == 2 and str(data_dir / "re_dev.json") in err and re.search(record, err), err


# -- security ------------------------------------------------------------------------------------------
PACKAGE_SOURCES = sorted(
    p
    for folder in ("mtl", "heads", "samplers")
    for p in (Path(__file__).parent.parent / folder).rglob("*.py")
)


def test_package_never_trusts_remote_code_nor_unpickles() -> None:
    assert len(PACKAGE_SOURCES) > 20
    forbidden = [
        (re.compile(r"trust_remote_code\s*=\s*(?!False\b)"), "trust_remote_code other than False"),
        (re.compile(r"\bimport pickle\b|\bpickle\.loads?\("), "pickle"),
        (
            re.compile(r"torch\.load\((?![^)]*weights_only\s*=\s*True)"),
            "torch.load without weights_only=True",
        ),
        (re.compile(r"yaml\.(unsafe_load|full_load|load)\("), "a YAML loader other than safe_load"),
        (re.compile(r"(?<![.\w])(eval|exec)\("), "eval/exec"),
    ]
    found = [
        f"{path.name}:{n}: {what}"
        for path in PACKAGE_SOURCES
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        for pattern, what in forbidden
        if pattern.search(line)
    ]
    assert not found, found


# -- determinism and provenance -------------------------------------------------------------------------
def test_same_config_and_seed_give_identical_runs_and_checkpoints_record_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import mtl
    from mtl.config import load_config

    # Dropout stays on (the default), so the RNG streams are part of what must repeat.
    config = write_config(tmp_path / "run.yaml", config_data(SAMPLES_DIR, steps=4))
    runs = [tmp_path / "a", tmp_path / "b"]
    for out in runs:
        status, err = run_cli(["train", "--config", str(config), "--output", str(out)], capsys)
        assert status == 0, err
    a, b = (load_weights(out / "last") for out in runs)
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    boards = [json.loads((out / "scoreboard.json").read_text(encoding="utf-8")) for out in runs]
    assert boards[0] == boards[1]

    resolved = json.loads(json.dumps(load_config(config).to_dict()))
    for name in ("last", "best"):
        run = json.loads((runs[0] / name / "run.json").read_text(encoding="utf-8"))
        assert run["config"] == resolved, name
        assert run["config"]["train"]["seed"] == 42
        versions = run["versions"]
        assert versions["torch"] == torch.__version__ and versions["klue_mtl"] == mtl.__version__
        assert {"python", "transformers", "datasets", "numpy"} <= set(versions)


# -- crashes lose nothing: SIGKILL at random points (one during a checkpoint write), then --resume ------
def subprocess_env() -> dict[str, str]:
    # One intra-op thread, as in this test process, so the runs compare bit for bit.
    return {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
    }


def start_train(config: Path, out: Path, *, resume: bool) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "mtl", "train", "--config", str(config), "--output", str(out)]
    return subprocess.Popen(
        argv + (["--resume"] if resume else []),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=subprocess_env(),
    )


def saved_step(out: Path) -> int:
    """Step of ``out/last`` (-1 while there is none, or while a reader races its replacement)."""
    try:
        return int(json.loads((out / "last" / "training_state" / "state.json").read_text())["step"])
    except (OSError, ValueError, KeyError):
        return -1


def wait_until(
    condition: Callable[[], bool], proc: subprocess.Popen[str], what: str, timeout: float = 90
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"the run ended ({proc.returncode}) before {what}:\n{proc.communicate()[0]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.002)


def assert_last_is_complete(out: Path, at_least: int) -> int:
    """The checkpoint behind ``last`` loads (weights, tokenizer, training state); returns its step."""
    from mtl.training.checkpoint import load_checkpoint, load_training_state

    load_checkpoint(out / "last")
    step = load_training_state(out / "last").step
    assert step >= at_least, f"the checkpoint went back from step {at_least} to {step}"
    return step


def kill_during_checkpoint_write(config: Path, out: Path, *, resume: bool) -> None:
    """SIGKILL while ``save_checkpoint`` fills its temporary folder (after one complete save)."""
    for _ in range(3):  # the write lasts ~0.1 s; a kill landing just after the rename is retried
        start = saved_step(out)
        proc = start_train(config, out, resume=resume)
        tmp = out / f".last.tmp-{proc.pid}"
        wait_until(lambda: saved_step(out) > start, proc, "a first checkpoint")  # noqa: B023
        wait_until(tmp.exists, proc, "a checkpoint write")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        resume = True
        if tmp.exists():
            return
    raise AssertionError("could not kill a run while it wrote a checkpoint")


def kill_at_random(config: Path, out: Path, rng: random.Random) -> None:
    start = saved_step(out)
    proc = start_train(config, out, resume=True)
    wait_until(lambda: saved_step(out) > start, proc, "progress after resuming")
    time.sleep(rng.uniform(0.0, 0.6))
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def stop_with(sig: signal.Signals, config: Path, out: Path) -> None:
    """SIGINT/SIGTERM: the run saves a checkpoint, says so, and exits with status 128 + the signal."""
    start = saved_step(out)
    proc = start_train(config, out, resume=True)
    wait_until(lambda: saved_step(out) > start, proc, "progress after resuming")
    proc.send_signal(sig)
    output = proc.communicate(timeout=60)[0]
    assert proc.returncode == 128 + sig, output
    stopped = re.search(rf"stopped at step (\d+) by {sig.name}; checkpoint saved in (\S+)", output)
    assert stopped and Path(stopped.group(2)) == out / "last", output
    assert saved_step(out) == int(stopped.group(1))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("engine", "random_kills", "sig", "precision"),
    # Each process start costs seconds (more for the Trainer): 3 SIGKILLs for the loop, 2 for the
    # Trainer; under fp16 (loss scaler state in the checkpoint) one random kill each.
    [
        ("loop", 2, signal.SIGTERM, "fp32"),
        ("trainer", 1, signal.SIGINT, "fp32"),
        ("loop", 1, signal.SIGTERM, "fp16"),
        ("trainer", 1, signal.SIGTERM, "fp16"),
    ],
    ids=["loop", "trainer", "loop-fp16", "trainer-fp16"],
)
def test_killed_and_resumed_run_ends_bitwise_equal_to_an_uninterrupted_one(
    engine: str,
    random_kills: int,
    sig: signal.Signals,
    precision: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    steps = 40  # enough runway that the kills land mid-run even when steps are fast
    config = samples_config(tmp_path, engine, steps, {"precision": precision}, extra_tasks=MLM_TASK)
    status, err = run_cli(["train", "--config", str(config), "--output", str(tmp_path / "reference")], capsys)
    assert status == 0, err
    reference = load_weights(tmp_path / "reference" / "last")

    out, rng = tmp_path / "out", random.Random(f"kill-{engine}")
    kill_during_checkpoint_write(config, out, resume=False)
    step = assert_last_is_complete(out, 1)
    for _ in range(random_kills):
        kill_at_random(config, out, rng)
        step = assert_last_is_complete(out, step)
    stop_with(sig, config, out)
    step = assert_last_is_complete(out, step)
    assert step < steps, "the interruptions left nothing to resume"

    final = start_train(config, out, resume=True)
    output = final.communicate(timeout=120)[0]
    assert final.returncode == 0, output
    assert assert_last_is_complete(out, steps) == steps
    assert not list(out.glob(".last.tmp-*")), "a stale temporary folder was left behind"
    weights = load_weights(out / "last")
    assert weights.keys() == reference.keys()
    for name, tensor in reference.items():
        assert torch.equal(tensor, weights[name]), name
