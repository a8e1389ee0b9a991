"""Issues 18-20, the per-task budget: one sampler construction, a registry of samplers, the budget at
any number of processes, evaluation work within the budget, smoke runs of a preset, the table's text
and the experiment's comparisons."""

from __future__ import annotations

import argparse
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import samplers
from mtl.cli.main import main
from mtl.config import load_config
from mtl.errors import KlueInputError
from mtl.experiments import experiment
from mtl.tasks import get_task
from mtl.training.budget import (
    budget_rows,
    build_sampler,
    declared_sizes,
    own_eval_intervals,
    per_rank_batch_size,
)
from samplers import TemperatureSampler

CONFIGS = Path(__file__).parent.parent / "configs"
KLUE_ALL = CONFIGS / "klue_all.yaml"
BASE = CONFIGS / "klue_roberta_base.yaml"
DEMO = CONFIGS / "demo.yaml"


def budget_json(capsys: pytest.CaptureFixture, *args: str) -> dict[str, Any]:
    assert main(["budget", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


# -- one sampler construction ------------------------------------------------------------------------
def test_budget_and_experiment_agree_on_per_task_batches_under_klue_all() -> None:
    cfg = load_config(KLUE_ALL)
    sizes = declared_sizes(cfg)
    planned = {r.task: r.batches for r in budget_rows(cfg, sizes)}
    drawn = experiment.updates_per_task(cfg, sizes)
    for task, batches in planned.items():
        # The experiment draws what the run draws; the budget is its expectation (4 binomial sd).
        assert abs(drawn[task] - batches) <= 4 * math.sqrt(batches), (task, drawn[task], batches)


def test_the_default_sampler_is_todays_temperature_sampler() -> None:
    cfg = load_config(DEMO)
    sizes = {"ynat": 700, "nli": 300, "sts": 90, "ner": 400, "re": 250, "dp": 120, "mrc": 500, "wos": 800}
    sampler, reference = build_sampler(cfg, sizes), TemperatureSampler(sizes, temperature=2.0, seed=42)
    assert sampler.state_dict() == reference.state_dict()
    assert sampler.draw(3000) == reference.draw(3000)


def test_epoch_targets_give_the_solved_probabilities_to_a_uniform_base() -> None:
    cfg = load_config(DEMO, ["tasks.ynat.epochs=2", "tasks.nli.epochs=1"])
    cfg.tasks = {n: cfg.tasks[n] for n in ("ynat", "nli")}
    sizes = {"ynat": 320, "nli": 160}
    # batches needed: ynat 2 * 320 / 16 = 40, nli 1 * 160 / 16 = 10: shares 0.8 / 0.2 of the run
    reference = TemperatureSampler(sizes, temperature=math.inf, seed=42, weights={"ynat": 0.8, "nli": 0.2})
    sampler = build_sampler(cfg, sizes)
    assert sampler.draw(500) == reference.draw(500)


# -- the sampler registry ---------------------------------------------------------------------------
def test_an_unknown_sampler_names_the_key_and_the_known_samplers(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(KlueInputError, match=r"sampler\.name.*known samplers: temperature"):
        load_config(DEMO, ["sampler.name=round_robin"])
    assert main(["budget", "--config", str(DEMO), "sampler.name=round_robin"]) == 2
    assert "sampler.name" in capsys.readouterr().err


def test_a_registered_sampler_is_chosen_by_name() -> None:
    made: list[samplers.SamplerSpec] = []

    @samplers.register_sampler("test_fixed")
    def fixed(spec: samplers.SamplerSpec) -> samplers.TaskSampler:
        made.append(spec)
        return TemperatureSampler(spec.sizes, temperature=math.inf, seed=spec.seed)

    try:
        cfg = load_config(DEMO, ["sampler.name=test_fixed", "train.seed=5"])
        sizes = declared_sizes(cfg)
        rows = budget_rows(cfg, sizes)
        assert [s.seed for s in made] == [5] and made[0].sizes == sizes
        assert all(r.probability == pytest.approx(1 / 8) for r in rows)  # what the registered one says
        with pytest.raises(ValueError, match="already registered"):
            samplers.register_sampler("test_fixed")(lambda spec: fixed(spec))
    finally:
        del samplers.SAMPLERS["test_fixed"]


# -- several processes -----------------------------------------------------------------------------
def test_budget_at_4_processes_keeps_the_epochs_and_evaluates_at_most_a_quarter(
    capsys: pytest.CaptureFixture,
) -> None:
    one = budget_json(capsys, "--config", str(BASE), "--nproc", "1")
    four = budget_json(capsys, "--config", str(BASE), "--nproc", "4")
    assert four["world_size"] == 4 and one["world_size"] == 1
    epochs = {t["task"]: t["epochs"] for t in one["tasks"]}
    for t in four["tasks"]:
        assert abs(t["epochs"] - epochs[t["task"]]) <= 0.05 * epochs[t["task"]], t["task"]
        assert t["per_rank_batch_size"] * 4 == t["batch_size"]
    totals = four["totals"]
    assert totals["eval_tokens"] <= 0.25 * totals["train_tokens"]
    assert totals["eval_tokens"] == pytest.approx(sum(t["eval_tokens"] for t in four["tasks"]))
    for key in ("probability", "batches", "examples", "target_epochs", "train_tokens", "eval_tokens"):
        assert all(key in t for t in four["tasks"]), key


def test_a_batch_that_does_not_split_over_the_processes_is_refused(capsys: pytest.CaptureFixture) -> None:
    assert main(["budget", "--config", str(BASE), "--nproc", "3"]) == 2
    err = capsys.readouterr().err
    assert "tasks.ynat.batch_size" in err and "3 processes" in err
    assert per_rank_batch_size(32, 4) == 8
    with pytest.raises(KlueInputError, match=r"tasks\.mrc\.batch_size"):
        per_rank_batch_size(16, 3, task="mrc")


# -- evaluation work ---------------------------------------------------------------------------------
def test_tokens_and_flops_follow_units_lengths_and_the_encoder(capsys: pytest.CaptureFixture) -> None:
    report = budget_json(capsys, "--config", str(BASE))
    # klue/roberta-base: 12 layers of 4h^2 + 2hi + 9h + i, embeddings (32000 + 514 + 1) x h + 2h
    h, i = 768, 3072
    params = 12 * (4 * h * h + 2 * h * i + 9 * h + i) + (32000 + 514 + 1) * h + 2 * h
    assert report["encoder_parameters"] == params
    ner = next(t for t in report["tasks"] if t["task"] == "ner")
    assert ner["train_tokens"] == pytest.approx(ner["examples"] * 510)
    assert ner["dev_size"] == 5000 and ner["eval_tokens"] == ner["evaluations"] * 5000 * 510
    assert ner["train_flops"] == pytest.approx(6 * params * ner["train_tokens"])
    assert ner["eval_flops"] == pytest.approx(2 * params * ner["eval_tokens"])


def test_a_task_is_evaluated_alone_only_where_the_joint_cadence_is_too_coarse() -> None:
    cfg = load_config(BASE)
    rows = budget_rows(cfg, declared_sizes(cfg))
    dp = next(r for r in rows if r.task == "dp")
    # evals_per_epoch 0.5: every 2 epochs of a task. DP trains 11.3 epochs, so 2 of them last ~9,900
    # steps, less than eval_every 11200; every other task's 2 epochs last longer than 11200 steps.
    assert own_eval_intervals(cfg, rows) == {"dp": round(56000 / (dp.epochs * 0.5))}
    cfg.train.eval_every = 2000  # fine enough for every task
    assert own_eval_intervals(cfg, rows) == {}


@pytest.mark.slow
def test_the_budget_counts_the_evaluations_the_engine_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from test_runs import tiny_overrides

    from mtl.training.loop import train_loop
    from mtl.training.session import Session, build_session

    seen: Counter[str] = Counter()

    def evaluate(self: Session, *, progress: bool = True, tasks=None):
        names = [n for n in self.data if tasks is None or n in tasks]
        seen.update(names)
        return {n: dict.fromkeys(self.data[n].task.metric_names, 1.0) for n in names}

    monkeypatch.setattr(Session, "evaluate", evaluate)
    out = tmp_path / "run"
    extra = ["train.eval_every=15", "train.evals_per_epoch=3", "train.save_task_best=false"]
    cfg = load_config(DEMO, tiny_overrides(out, 40, extra))
    session = build_session(cfg, out, progress=False)
    dev = {n: len(td.dev.features) for n, td in session.data.items()}
    rows = budget_rows(cfg, session.train_sizes(), 1, dev)
    intervals = own_eval_intervals(cfg, rows)
    assert intervals and len(intervals) < len(rows)  # some tasks alone, some only jointly
    train_loop(session, progress=False)
    assert dict(seen) == {r.task: r.evaluations for r in rows}


# -- smoke runs of a preset -----------------------------------------------------------------------------
def test_a_smoke_run_of_a_preset_scales_the_targets_and_keeps_the_shares(
    capsys: pytest.CaptureFixture,
) -> None:
    with pytest.raises(KlueInputError, match=r"need \d+ steps.*train\.epoch_targets=scale"):
        budget_rows(load_config(KLUE_ALL, ["train.max_steps=100"]), declared_sizes(load_config(KLUE_ALL)))
    full = load_config(KLUE_ALL)
    smoke = load_config(KLUE_ALL, ["train.max_steps=100", "train.epoch_targets=scale"])
    sizes = declared_sizes(full)
    shares = {r.task: r.probability for r in budget_rows(full, sizes)}
    rows = budget_rows(smoke, sizes)
    needed = sum(full.tasks[n].epochs * sizes[n] / full.task_settings(n).batch_size for n in sizes)
    for r in rows:
        assert r.probability == pytest.approx(shares[r.task])
        assert r.target_epochs == pytest.approx(full.tasks[r.task].epochs * 100 / needed)
        assert r.epochs == pytest.approx(r.target_epochs)
    assert (
        main(["budget", "--config", str(KLUE_ALL), "train.max_steps=100", "train.epoch_targets=scale"]) == 0
    )
    assert "train.epoch_targets=scale lowered every target" in capsys.readouterr().out


# -- the table's text ----------------------------------------------------------------------------------
def test_the_table_says_where_targets_come_from_and_names_the_temperature_only_when_used(
    capsys: pytest.CaptureFixture,
) -> None:
    assert main(["budget", "--config", str(BASE)]) == 0
    targeted = capsys.readouterr().out
    assert "temperature" not in targeted
    assert "tasks.<t>.epochs" in targeted and "run_all.sh" in targeted
    assert main(["budget", "--config", str(DEMO)]) == 0
    assert "temperature 2 rule" in capsys.readouterr().out


# -- the experiment ------------------------------------------------------------------------------------
def test_the_experiment_compares_a_temperature_other_than_1_2_5_and_writes_as_it_goes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs: list[tuple[str, float]] = []

    def fake_run(cfg: Any, output: Path) -> dict[str, Any]:
        runs.append((output.name, cfg.sampler.temperature))
        if output.name == "single-ner":  # results.md must already hold every earlier comparison
            text = (tmp_path / "results.md").read_text(encoding="utf-8")
            assert "| T=3 |" in text.replace(" | ", " |\n| ") and "single-task" in text
        results = {n: dict.fromkeys(get_task(n).metric_names, float(len(runs))) for n in cfg.tasks}
        return {"results": results, "losses": [1.0] * cfg.train.max_steps, "wall_seconds": 0.0}

    no_baseline = {"trivial": None, "nonneural": None, "units": 1}
    monkeypatch.setattr(experiment, "_run", fake_run)
    monkeypatch.setattr(experiment, "split_official", lambda *a: {})
    monkeypatch.setattr(experiment, "baselines", lambda cfg, out: {n: no_baseline for n in cfg.tasks})
    monkeypatch.setattr(experiment, "train_sizes", lambda cfg, out: {"ynat": 100, "ner": 50})
    monkeypatch.setattr("mtl.tracking.curves.draw_loss_curves", lambda *a: None)
    args = argparse.Namespace(
        output=str(tmp_path),
        data_dir=str(tmp_path),
        config=str(DEMO),
        overrides=["data_dir=@samples", "sampler.temperature=3", "tasks={ynat: {}, ner: {}}"],
        seeds=None,
        mlm_only=False,
        mlm=False,
        strategies=False,
        no_comparisons=False,
        compare_steps=20,
        compare_dev_examples=4,
    )
    assert experiment.cmd_experiment(args) == 0
    assert sorted(t for name, t in runs if name.startswith("temperature-")) == [1.0, 2.0, 3.0, 5.0]
    report = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert report["joint_small"] == report["temperature"]["3"]
    assert report["engines"]["loop"] == report["temperature"]["3"]
    text = (tmp_path / "results.md").read_text(encoding="utf-8")
    assert "joint T=3" in text and "T=2" in text and "joint T=2" not in text
