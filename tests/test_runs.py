"""What a run shows and keeps: per-run log folders, progress lines, Weights & Biases, memory knobs,
per-task best checkpoints (issue 12 points 2, 4, 5, 8; issue 11 point 2)."""

from __future__ import annotations

import io
import json
import signal
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mtl.batching.stream import MultiTaskStream
from mtl.cli.main import main
from mtl.config import load_config
from mtl.errors import KlueInputError
from mtl.modeling.encoder import is_checkpointing
from mtl.tracking.curves import draw_loss_curves, read_scalars, run_folders
from mtl.training.budget import budget_rows
from mtl.training.checkpoint import load_training_state
from mtl.training.loop import train_loop
from mtl.training.progress import Progress
from mtl.training.run import task_eval_intervals
from mtl.training.session import Session, build_session
from mtl.training.trainer import train_with_trainer

DEMO = Path(__file__).parent.parent / "configs" / "demo.yaml"
TASKS = ("ynat", "nli", "sts", "ner", "re", "dp", "mrc", "wos")
ENGINES = {"loop": train_loop, "trainer": train_with_trainer}


def tiny_overrides(tmp_path: Path, steps: int, extra: list[str] | None = None) -> list[str]:
    return [
        "encoder.architecture.hidden_size=32",
        "encoder.architecture.num_hidden_layers=2",
        "encoder.architecture.num_attention_heads=2",
        "encoder.architecture.intermediate_size=64",
        f"train.max_steps={steps}",
        "train.log_every=2",
        "train.learning_rate=3e-3",
        f"output_dir={tmp_path}",
        f"cache_dir={tmp_path.parent / 'cache'}",
        *(extra or []),
    ]


def no_eval() -> list[str]:
    return [f"tasks.{t}.dev=null" for t in TASKS]


def train(out: Path, steps: int, extra: list[str] | None = None, *, engine: str = "loop", resume=False):
    cfg = load_config(DEMO, tiny_overrides(out, steps, extra))
    session = build_session(cfg, out, resume=resume, progress=False)
    return session, ENGINES[engine](session, progress=False)


# -- progress -----------------------------------------------------------------------------------------
def test_progress_off_a_terminal_prints_one_line_per_log_with_every_task_in_run_order() -> None:
    stream = io.StringIO()  # not a terminal
    progress = Progress(6, 0, ["ynat", "ner", "wos"], stream=stream)
    progress.step(1, None, 9.0, 1e-3)
    progress.step(2, {"wos": 3.0, "ner": 2.0}, 2.5, 1e-3)
    progress.step(3, None, 9.0, 1e-3)
    progress.step(4, {"ynat": 1.0}, 1.25, 5e-4)
    progress.close()
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert len(lines) == 2 and lines[0].startswith("step 2/6") and lines[1].startswith("step 4/6")
    assert "loss 2.5000" in lines[0] and "lr 0.0005" in lines[1]
    # Fixed order; a task not yet drawn shows "-", one not drawn in the window its last value in
    # parentheses (stale, not current).
    assert lines[0].endswith("ynat -  ner 2.000  wos 3.000")
    assert lines[1].endswith("ynat 1.000  ner (2.000)  wos (3.000)")


def test_progress_disabled_prints_nothing() -> None:
    stream = io.StringIO()
    progress = Progress(2, 0, ["ynat"], enabled=False, stream=stream)
    progress.step(1, {"ynat": 1.0}, 1.0, 1e-3)
    assert stream.getvalue() == ""


# -- TensorBoard: a folder per run and per resume ------------------------------------------------------
@pytest.mark.slow
def test_a_run_and_its_resume_log_into_their_own_folders_and_the_curves_join_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "run"
    original = MultiTaskStream.__next__
    draws = {"n": 0}

    def next_with_sigterm(self):
        draws["n"] += 1
        if draws["n"] == 5:  # during step 5 (no accumulation): stop after it
            signal.raise_signal(signal.SIGTERM)
        return original(self)

    monkeypatch.setattr(MultiTaskStream, "__next__", next_with_sigterm)
    _, first = train(out, 8, no_eval())
    monkeypatch.setattr(MultiTaskStream, "__next__", original)
    assert first["stopped"] and first["steps"] == 5
    _, second = train(out, 8, no_eval(), resume=True)
    folders = run_folders(out / "tensorboard")
    assert [f.name.split("-", 2)[-1] for f in folders] == ["start", "resume-5"]

    scalars = read_scalars(out / "tensorboard", prefix="")
    # loss/total is the mean of the step losses since the previous log, not the last step's loss.
    losses = first["losses"] + second["losses"]
    steps, values = scalars["loss/total"]
    assert steps.tolist() == [2, 4, 6, 8]
    expected = [
        (losses[0] + losses[1]) / 2,
        (losses[2] + losses[3]) / 2,
        losses[5],
        (losses[6] + losses[7]) / 2,
    ]
    assert values.tolist() == pytest.approx(expected, rel=1e-6)
    assert (losses[0] + losses[1]) / 2 != pytest.approx(losses[1])  # the test can tell the two apart
    assert draw_loss_curves(out / "tensorboard", tmp_path / "curves.png").stat().st_size > 1000

    # A fresh run into the same folder gets a new folder; the curves follow the newest run only.
    (out / "tensorboard" / "20990101-000000-start").mkdir()
    assert run_folders(out / "tensorboard")[0].name == "20990101-000000-start"


# -- Weights & Biases -------------------------------------------------------------------------------
@pytest.mark.slow
def test_wandb_offline_run_holds_the_losses_lr_dev_metrics_config_scoreboard_and_confusions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import wandb  # noqa: F401  (.ci/run installs the wandb extra: this test must run, not skip)

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb-dir"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    (tmp_path / "wandb-dir").mkdir()
    out = tmp_path / "run"
    train(out, 4, ["train.report_to=[tensorboard, wandb]", "train.eval_every=2"], engine="trainer")
    (run_dir,) = (tmp_path / "wandb-dir" / "wandb").glob("offline-run-*")
    (log,) = run_dir.glob("*.wandb")
    data = log.read_bytes()
    for key in (b"loss/total", b"loss/ner", b"lr", b"dev/ynat/macro_f1", b"dev/dp/las", b"best/ner/char_f1"):
        assert key in data, key
    assert b"select_metric" in data and b"report_to" in data  # the resolved config
    (table,) = run_dir.glob("files/media/table/scoreboard_*.table.json")
    board = json.loads(table.read_text())
    assert board["columns"][:2] == ["task", "metric"]
    assert {row[0] for row in board["data"]} == set(TASKS)
    images = {p.parent.name for p in run_dir.glob("files/media/images/*/confusion_matrix_*.png")}
    assert {"ynat", "nli", "re"} <= images
    assert any(f.name.endswith("-start") for f in (out / "tensorboard").iterdir())  # TensorBoard too


def test_wandb_without_the_package_is_exit_2_with_the_pip_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb -> ImportError
    status = main(
        ["train", "--config", str(DEMO), "--output", str(tmp_path / "o"), "train.report_to=[wandb]"]
    )
    err = capsys.readouterr().err
    assert status == 2, err
    assert "train.report_to" in err and "pip install" in err and "Traceback" not in err


def test_report_to_and_attention_kernel_are_checked(tmp_path: Path) -> None:
    with pytest.raises(KlueInputError, match="train.report_to"):
        load_config(DEMO, ["train.report_to=[tensorbored]"])
    with pytest.raises(KlueInputError, match="encoder.attn_implementation"):
        load_config(DEMO, ["encoder.attn_implementation=flash"])
    with pytest.raises(KlueInputError, match="tasks.ner.select_metric"):
        load_config(DEMO, ["tasks.ner.select_metric=accuracy"])


# -- gradient checkpointing and the attention kernel ------------------------------------------------
@pytest.mark.slow
def test_gradient_checkpointing_gives_the_same_losses_in_both_engines(tmp_path: Path) -> None:
    _, plain = train(tmp_path / "plain", 20, no_eval())
    for engine in ENGINES:
        session, checkpointed = train(
            tmp_path / f"gc-{engine}", 20, [*no_eval(), "train.gradient_checkpointing=true"], engine=engine
        )
        assert is_checkpointing(session.model.encoder)  # really on
        for step, (a, b) in enumerate(zip(plain["losses"], checkpointed["losses"], strict=True)):
            assert abs(a - b) <= 1e-5, f"{engine} step {step + 1}: {a} vs {b}"


@pytest.mark.slow
def test_eager_attention_is_selectable_and_matches_sdpa(tmp_path: Path) -> None:
    sdpa_session, sdpa = train(tmp_path / "sdpa", 5, no_eval())
    eager_session, eager = train(tmp_path / "eager", 5, [*no_eval(), "encoder.attn_implementation=eager"])
    assert sdpa_session.model.encoder.config._attn_implementation == "sdpa"
    assert eager_session.model.encoder.config._attn_implementation == "eager"
    assert eager["losses"] == pytest.approx(sdpa["losses"], rel=1e-5)


# -- per-task best checkpoints -----------------------------------------------------------------------
def scripted_evaluation(
    monkeypatch: pytest.MonkeyPatch, snapshots: dict[int, dict[str, torch.Tensor]]
) -> None:
    """Evaluations 1, 2, 3 (steps 2, 4, 6): NER's metrics fall (50, 40, 30), every other task's rise
    (10, 20, 30). The joint average is best at step 6, NER's own at step 2. The weights at each
    evaluation are kept to compare the saved checkpoints with."""
    calls = {"n": 0}

    def evaluate(self: Session, *, progress: bool = True, tasks=None):
        calls["n"] += 1
        i = calls["n"]
        snapshots[i] = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        results = {}
        for name, td in self.data.items():
            value = {1: 50.0, 2: 40.0, 3: 30.0}[i] if name == "ner" else 10.0 * i
            results[name] = dict.fromkeys(td.task.metric_names, value)
        return results

    monkeypatch.setattr(Session, "evaluate", evaluate)


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


@pytest.mark.slow
def test_a_tasks_own_best_differs_from_the_joint_best_and_every_command_takes_either(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    snapshots: dict[int, dict[str, torch.Tensor]] = {}
    scripted_evaluation(monkeypatch, snapshots)
    status = main(
        [
            "train",
            "--config",
            str(DEMO),
            "--output",
            str(out),
            *tiny_overrides(out, 6, ["train.eval_every=2"]),
        ]
    )
    assert status == 0
    board_text = capsys.readouterr().out
    monkeypatch.undo()

    summary = json.loads((out / "task_best.json").read_text())
    assert summary["joint"]["step"] == 6 and summary["joint"]["checkpoint"] == "best"
    assert summary["tasks"]["ner"] == {
        "metric": "char_f1",
        "value": 50.0,
        "step": 2,
        "checkpoint": "best-ner",
    }
    assert summary["tasks"]["dp"]["metric"] == "las" and summary["tasks"]["dp"]["step"] == 6
    # The per-task bests live in the training state too, so --resume keeps them.
    assert load_training_state(out / "last").extra["task_best"]["ner"]["step"] == 2
    # The scoreboard shows the joint checkpoint's metrics and each task's own best with its step.
    board = json.loads((out / "scoreboard.json").read_text())
    ner_row = next(r for r in board["rows"] if r["task"] == "ner")
    assert ner_row["metrics"]["char_f1"] == 30.0 and ner_row["task_best"]["step"] == 2
    assert "char_f1 50.00 (step 2)" in board_text

    # best-ner holds the weights of step 2, best those of step 6.
    best_ner, best = weights(out / "best-ner"), weights(out / "best")
    for name, tensor in snapshots[1].items():
        assert torch.equal(best_ner[name], tensor), name
        assert torch.equal(best[name], snapshots[3][name]), name
    enc = "encoder.embeddings.word_embeddings.weight"  # updated at every step, whichever task
    assert not torch.equal(best_ner[enc], best[enc])

    # evaluate and predict take the task's own best like any checkpoint ...
    samples = Path(__file__).parent.parent / "mtl" / "samples"
    for ckpt in ("best-ner", "best"):
        assert (
            main(
                [
                    "evaluate",
                    "--checkpoint",
                    str(out / ckpt),
                    "--tasks",
                    "ner",
                    "--output",
                    str(tmp_path / f"eval-{ckpt}"),
                ]
            )
            == 0
        )
        pred = tmp_path / f"pred-{ckpt}.jsonl"
        assert (
            main(
                [
                    "predict",
                    "--checkpoint",
                    str(out / ckpt),
                    "--task",
                    "ner",
                    "--input",
                    str(samples / "ner_dev.tsv"),
                    "--output",
                    str(pred),
                ]
            )
            == 0
        )
        assert pred.stat().st_size > 0
        assert "ner" in {
            r["task"] for r in json.loads((tmp_path / f"eval-{ckpt}" / "scoreboard.json").read_text())["rows"]
        }
    # ... and finetune starts from it (a learning rate too small to move the weights shows where from).
    tuned = tmp_path / "tuned"
    status = main(
        [
            "finetune",
            "--from",
            str(out / "best-ner"),
            "--task",
            "ner",
            "--output",
            str(tuned),
            "train.max_steps=1",
            "train.learning_rate=1e-12",
            "train.eval_every=0",
            f"cache_dir={tmp_path / 'cache'}",
        ]
    )
    assert status == 0
    start = weights(tuned / "last")
    torch.testing.assert_close(start[enc], best_ner[enc], rtol=0, atol=1e-6)
    assert not torch.allclose(start[enc], best[enc], atol=1e-6)


@pytest.mark.slow
def test_each_task_is_evaluated_alone_evals_per_epoch_times_per_epoch_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[int, tuple[str, ...] | None]] = []

    def evaluate(self: Session, *, progress: bool = True, tasks=None):
        seen.append((len(seen), None if tasks is None else tuple(tasks)))
        return {
            n: dict.fromkeys(td.task.metric_names, 1.0)
            for n, td in self.data.items()
            if tasks is None or n in tasks
        }

    monkeypatch.setattr(Session, "evaluate", evaluate)
    out = tmp_path / "run"
    cfg = load_config(
        DEMO, tiny_overrides(out, 60, ["train.evals_per_epoch=2", "train.save_task_best=false"])
    )
    session = build_session(cfg, out, progress=False)
    intervals = task_eval_intervals(session)
    rows = {r.task: r for r in budget_rows(cfg, session.train_sizes())}
    for task, every in intervals.items():
        # About evals_per_epoch validations per planned epoch of the task.
        assert abs(60 / every - 2 * rows[task].epochs) <= 2 * rows[task].epochs * 0.5 + 1, task
    train_loop(session, progress=False)
    alone = [t for _, tasks in seen if tasks for t in tasks]
    for task, every in intervals.items():
        assert alone.count(task) == (60 - 1) // every, task
    assert seen[-1][1] is None  # the final evaluation covers every task
    assert not any((out / f"best-{t}").exists() for t in TASKS)  # save_task_best=false


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_on_a_terminal_is_a_bar_whose_postfix_lists_every_task_in_run_order() -> None:
    stream = FakeTerminal()
    progress = Progress(4, 0, ["ynat", "ner", "wos"], stream=stream)
    progress.step(1, None, 9.0, 1e-3)
    progress.step(2, {"wos": 3.0, "ner": 2.0}, 2.5, 1e-3)
    progress.bar.refresh()
    progress.close()
    text = stream.getvalue()
    assert "\r" in text and "step 2/4" not in text  # redrawn in place, no log lines
    assert "ynat -  ner 2.000  wos 3.000" in text
