"""One run per folder: train never clobbers a run, --overwrite clears it, --resume keeps the run's own
recipe (only max_steps and log/eval/save settings may change), a finished run is left alone; the
commands end with where things are; messages and help a first-time user needs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from mtl.cli.main import main
from mtl.tasks import task_names

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """The demo config, two tasks, a smaller encoder, 4 steps."""
    data = yaml.safe_load((ROOT / "configs" / "demo.yaml").read_text(encoding="utf-8"))
    data["tasks"] = {k: v for k, v in data["tasks"].items() if k in ("ynat", "re")}
    data["encoder"]["architecture"] = {
        "hidden_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": 64,
    }
    data["train"].update(max_steps=4, log_every=2, eval_every=0)
    path = tmp_path / "demo.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def step_of(run: Path) -> int:
    return json.loads((run / "last" / "training_state" / "state.json").read_text())["step"]


def test_train_into_a_folder_holding_a_run_stops_and_names_both_ways_on(config, tmp_path, capsys):
    out = tmp_path / "run"
    status, stdout, err = cli(["train", "--config", config, "--output", out], capsys)
    assert status == 0, err
    # the closing lines say where things are
    assert f"checkpoint:  {out / 'last'}" in stdout
    assert f"scoreboard:  {out / 'scoreboard.md'}" in stdout
    assert f"tensorboard --logdir {out / 'tensorboard'}" in stdout
    before = (out / "last" / "model.safetensors").stat().st_ino
    status, _, err = cli(["train", "--config", config, "--output", out], capsys)
    assert status == 2
    assert str(out) in err and "--resume" in err and "--overwrite" in err and "Traceback" not in err
    assert (out / "last" / "model.safetensors").stat().st_ino == before  # untouched


def test_overwrite_clears_the_old_run_and_says_so(config, tmp_path, capsys):
    out = tmp_path / "run"
    assert cli(["train", "--config", config, "--output", out], capsys)[0] == 0
    stale = out / "tensorboard" / "stale-marker"
    stale.write_text("old")
    status, stdout, err = cli(["train", "--config", config, "--output", out, "--overwrite"], capsys)
    assert status == 0, err
    assert "--overwrite: removed the previous run" in stdout and "last" in stdout
    assert not stale.exists() and step_of(out) == 4


def test_resume_refuses_changes_of_the_recipe_naming_each_key_with_both_values(config, tmp_path, capsys):
    out = tmp_path / "run"
    assert cli(["train", "--config", config, "--output", out, "train.max_steps=2"], capsys)[0] == 0
    argv = ["train", "--config", config, "--output", out, "--resume"]
    changes = [
        "sampler.temperature=1.0",
        "train.seed=7",
        "tasks.ynat.batch_size=4",
        "encoder.architecture.hidden_size=64",
    ]
    status, _, err = cli([*argv, *changes], capsys)
    assert status == 2 and "Traceback" not in err
    for text in (
        "sampler.temperature: 2.0 in the run, 1.0 now",
        "train.seed: 42 in the run, 7 now",
        "tasks.ynat.batch_size: 16 in the run, 4 now",
        "encoder.architecture.hidden_size: 32 in the run, 64 now",
    ):
        assert text in err, err
    assert step_of(out) == 2  # nothing trained


def test_resume_may_raise_max_steps_and_keeps_the_runs_own_config(config, tmp_path, capsys):
    out = tmp_path / "run"
    assert cli(["train", "--config", config, "--output", out, "train.max_steps=2"], capsys)[0] == 0
    # no --config: the run's own; overrides after an option are accepted
    status, stdout, err = cli(
        ["train", "--output", out, "train.max_steps=4", "--resume", "train.log_every=1"], capsys
    )
    assert status == 0, err
    assert step_of(out) == 4
    saved = json.loads((out / "last" / "run.json").read_text())["config"]
    assert saved["train"]["max_steps"] == 4 and saved["tasks"]["ynat"]["batch_size"] == 16


def test_resuming_a_finished_run_says_so_and_does_nothing(config, tmp_path, capsys):
    out = tmp_path / "run"
    assert cli(["train", "--config", config, "--output", out], capsys)[0] == 0
    before = (out / "last" / "model.safetensors").stat().st_ino
    status, stdout, err = cli(["train", "--config", config, "--output", out, "--resume"], capsys)
    assert status == 0, err
    assert "already finished at step 4" in stdout
    assert (out / "last" / "model.safetensors").stat().st_ino == before


def test_overrides_are_accepted_after_an_option(config, tmp_path, capsys):
    out = tmp_path / "run"
    status, _, err = cli(
        [
            "train",
            "--config",
            config,
            "--output",
            out,
            "train.max_steps=1",
            "--overwrite",
            "train.log_every=1",
        ],
        capsys,
    )
    assert status == 0, err
    assert step_of(out) == 1


def test_evaluate_writes_where_it_says_with_labelled_reports(config, tmp_path, capsys):
    out = tmp_path / "run"
    assert cli(["train", "--config", config, "--output", out], capsys)[0] == 0
    status, _, err = cli(["evaluate", "--checkpoint", out], capsys)
    assert status == 2 and f"--checkpoint {out / 'last'}" in err
    status, stdout, err = cli(["evaluate", "--checkpoint", out / "last"], capsys)
    assert status == 0, err
    target = out / "eval" / "last"
    assert f"scoreboard:  {target / 'scoreboard.md'}" in stdout
    assert f"tensorboard --logdir {target / 'tensorboard'}" in stdout
    assert "[[" not in stdout and "confusion matrix (rows gold" not in stdout  # no matrix dump
    for name in ("scoreboard.md", "classification_report.txt", "confusion_ynat.png", "confusion_re.png"):
        assert (target / name).is_file(), name
    assert not (out / "last" / "scoreboard.md").exists()  # nothing written into the checkpoint
    # report columns line up with Korean labels: every class row is equally wide on screen
    from mtl.evaluation.reports import display_width

    report = (target / "classification_report.txt").read_text(encoding="utf-8")
    rows = [
        line
        for line in report.splitlines()
        if line.split()[:1] and line.split()[0] in ("IT과학", "경제", "생활문화")
    ]
    assert len(rows) == 3 and len({display_width(r) for r in rows}) == 1, rows
    from PIL import Image

    with Image.open(target / "confusion_ynat.png") as image:
        assert image.size[0] >= 400 and image.size[1] >= 400


def test_finetune_from_a_missing_checkpoint_says_not_found(tmp_path, capsys):
    status, _, err = cli(["finetune", "--from", tmp_path / "nope", "--task", "ynat"], capsys)
    assert status == 2 and "checkpoint not found" in err and str(tmp_path / "nope") in err


def test_predict_into_a_folder_that_cannot_be_made_names_it(config, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    status, _, err = cli(
        [
            "predict",
            "--checkpoint",
            tmp_path / "ckpt",
            "--task",
            "ynat",
            "--input",
            "x",
            "--output",
            blocker / "sub" / "p.jsonl",
        ],
        capsys,
    )
    assert status == 2 and str(blocker / "sub") in err and "--output folder" in err


@pytest.mark.parametrize("command", ["finetune", "evaluate", "predict", "score"])
def test_task_options_list_the_registered_tasks(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert ", ".join(task_names()) in text and "cannot be listed here" in text


def test_train_help_points_to_the_config_keys_and_shows_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "README.md, section 'Configuration'" in text
    assert "(default: output_dir of the config)" in text


def test_an_unreachable_hub_model_fails_fast_naming_the_key(tmp_path, monkeypatch, capsys):
    import time

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-cache"))  # nothing cached
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "empty-cache" / "hub"))
    config = tmp_path / "hub.yaml"
    config.write_text(
        "encoder: {name: klue/roberta-base}\ntasks:\n  ynat: {train: '@samples/ynat_train.json'}\n",
        encoding="utf-8",
    )
    started = time.perf_counter()
    status, _, err = cli(["train", "--config", config, "--output", tmp_path / "run"], capsys)
    assert status == 2 and time.perf_counter() - started < 10
    assert "encoder.name" in err and "HF_HUB_OFFLINE" in err and "klue/roberta-base" in err


def test_finetune_ends_with_where_things_are_and_never_clobbers(config, tmp_path, capsys):
    joint, ft = tmp_path / "run", tmp_path / "ft"
    assert cli(["train", "--config", config, "--output", joint], capsys)[0] == 0
    argv = ["finetune", "--from", joint / "last", "--task", "ynat", "--output", ft, "train.max_steps=2"]
    status, stdout, err = cli(argv, capsys)
    assert status == 0, err
    assert f"checkpoint:  {ft / 'last'}" in stdout and f"tensorboard --logdir {ft / 'tensorboard'}" in stdout
    status, _, err = cli(argv, capsys)
    assert status == 2 and "--resume" in err and "--overwrite" in err


def test_runs_live_without_symlinks_and_a_copied_checkpoint_predicts(config, tmp_path, capsys, monkeypatch):
    import os
    import shutil

    def unsupported(*_):
        raise OSError(95, "Operation not supported")  # e.g. a mounted Google Drive

    monkeypatch.setattr(os, "symlink", unsupported)
    out = tmp_path / "run"
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["train"].update(eval_every=2)
    config.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    assert cli(["train", "--config", config, "--output", out, "train.max_steps=2"], capsys)[0] == 0
    status, _, err = cli(["train", "--output", out, "--resume", "train.max_steps=4"], capsys)
    assert status == 0, err
    assert step_of(out) == 4
    checkpoints = [p for p in out.iterdir() if p.name in ("last", "best") or p.name.startswith("best-")]
    assert {p.name for p in checkpoints} >= {"last", "best", "best-ynat", "best-re"}
    assert not any(p.is_symlink() for p in out.rglob("*"))
    assert not [p.name for p in out.iterdir() if p.name.startswith((".last", ".best"))]
    # best checkpoints hold weights only, one copy per distinct step (shared with `last` at step 4)
    assert not any((p / "training_state").exists() for p in checkpoints if p.name != "last")
    weights = {p.name: (p / "model.safetensors").stat().st_ino for p in checkpoints}
    task_best = json.loads((out / "task_best.json").read_text(encoding="utf-8"))
    steps = {"last": 4, "best": task_best["joint"]["step"]}
    steps |= {t["checkpoint"]: t["step"] for t in task_best["tasks"].values()}
    assert set(steps) == set(weights)
    for a in steps:
        for b in steps:
            assert (weights[a] == weights[b]) == (steps[a] == steps[b]), (a, b, steps)

    copied = tmp_path / "copied"
    shutil.copytree(out / "last", copied)  # cp -r
    source = ROOT / "mtl" / "samples" / "ynat_dev.json"
    status, stdout, err = cli(
        [
            "predict",
            "--checkpoint",
            copied,
            "--task",
            "ynat",
            "--input",
            source,
            "--output",
            tmp_path / "p.jsonl",
        ],
        capsys,
    )
    assert status == 0, err
    assert (tmp_path / "p.jsonl").read_text(encoding="utf-8").count("\n") > 0


@pytest.mark.parametrize(("sig", "status"), [("SIGINT", 130), ("SIGTERM", 143)])
def test_an_interrupted_run_saves_says_so_and_exits_128_plus_the_signal(
    sig, status, config, tmp_path, capsys, monkeypatch
):
    import signal

    from mtl.batching.stream import MultiTaskStream

    original = MultiTaskStream.__next__
    draws = {"n": 0}

    def next_with_signal(self):
        draws["n"] += 1
        if draws["n"] == 2:  # during step 2: the run saves after it and stops
            signal.raise_signal(getattr(signal, sig))
        return original(self)

    monkeypatch.setattr(MultiTaskStream, "__next__", next_with_signal)
    out = tmp_path / "run"
    code, stdout, err = cli(["train", "--config", config, "--output", out], capsys)
    assert code == status, err
    assert f"stopped at step 2 by {sig}; checkpoint saved in {out / 'last'}" in stdout
    assert f"exit status {status}" in stdout and step_of(out) == 2
    monkeypatch.setattr(MultiTaskStream, "__next__", original)
    code, stdout, err = cli(["train", "--output", out, "--resume"], capsys)
    assert code == 0, err  # a finished run
    assert "resuming from step 2 of 4\n" in stdout and step_of(out) == 4


def test_resume_says_its_step_and_stretches_the_schedule_to_a_larger_max_steps(config, tmp_path, capsys):
    out = tmp_path / "run"
    assert cli(["train", "--config", config, "--output", out], capsys)[0] == 0
    # 4 -> 8 steps; warm-up ceil(0.05 x 8) = 1 step, then linear decay from 1e-3 at step 1 to 0 at step 8
    status, stdout, err = cli(["train", "--output", out, "--resume", "train.max_steps=8"], capsys)
    assert status == 0, err
    line = next(line for line in stdout.splitlines() if line.startswith("resuming"))
    lr_now = 1e-3 * (8 - 4) / (8 - 1)
    assert line.startswith("resuming from step 4 of 8: train.max_steps 4 -> 8"), line
    assert f"stretched to 8 steps (its shape kept): lr {lr_now:.3g} now" in line, line
    assert line.endswith("0 at step 8"), line
