"""Multi-task strategies: groups of distinct tasks, loss weightings, TorchJD aggregation, both engines."""

from __future__ import annotations

import itertools
import math
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from test_engines import no_eval, run
from torch import nn

from mtl.batching.stream import MultiTaskStream
from mtl.config import load_config
from mtl.errors import KlueInputError
from mtl.training.budget import budget_report, budget_rows, declared_sizes, format_table
from mtl.training.strategies import check_strategies
from mtl.training.strategies.aggregation import aggregated_backward, build_aggregator, encoder_outputs
from mtl.training.strategies.weighting import DynamicWeightAverage, UncertaintyWeighting, build_weighting
from samplers import TemperatureSampler
from samplers.groups import inclusion_probabilities

DEMO = Path(__file__).parent.parent / "configs" / "demo.yaml"


# -- groups of distinct tasks --------------------------------------------------------------------
def brute_force_inclusion(p: list[float], k: int) -> list[float]:
    """Sum over every ordered sequence of k distinct tasks of its successive-sampling probability."""
    out = [0.0] * len(p)
    for seq in itertools.permutations(range(len(p)), k):
        chance, left = 1.0, 1.0
        for i in seq:
            chance *= p[i] / left
            left -= p[i]
        for i in seq:
            out[i] += chance
    return out


def fake_data(sizes: dict[str, int]) -> dict[str, SimpleNamespace]:
    """Just enough of each task's data for a stream to draw groups (never batches)."""
    return {
        name: SimpleNamespace(
            train=SimpleNamespace(features=[0] * n, lengths=[8] * n),
            task=SimpleNamespace(settings=SimpleNamespace(batch_size=4)),
        )
        for name, n in sizes.items()
    }


def group_stream(probabilities: dict[str, float], k: int, seed: int = 3) -> MultiTaskStream:
    sizes = dict.fromkeys(probabilities, 10)
    # temperature inf: a uniform base times the weights, i.e. exactly these probabilities
    sampler = TemperatureSampler(sizes, temperature=math.inf, seed=seed, weights=probabilities)
    return MultiTaskStream(fake_data(sizes), sampler=sampler, seed=seed, tasks_per_step=k)  # type: ignore[arg-type]


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_inclusion_probabilities_match_enumeration_and_the_streams_groups(k: int) -> None:
    p = {"a": 0.4, "b": 0.25, "c": 0.2, "d": 0.1, "e": 0.05}
    exact = inclusion_probabilities(np.array(list(p.values())), k)
    np.testing.assert_allclose(exact, brute_force_inclusion(list(p.values()), k), rtol=1e-12)
    assert exact.sum() == pytest.approx(k)
    stream = group_stream(p, k)
    seen = dict.fromkeys(p, 0)
    for _ in range(20000):
        group = stream.draw_group()
        assert len(set(group)) == k
        for task in group:
            seen[task] += 1
    np.testing.assert_allclose([seen[t] / 20000 for t in p], exact, atol=0.015)


def test_budget_counts_each_task_once_per_group_it_is_in() -> None:
    every = load_config(DEMO, ["train.tasks_per_step=8", "train.max_steps=100"])
    sizes = declared_sizes(every)
    # Eight of eight tasks: every task is in every group, whatever its sampling probability.
    assert all(r.batches == pytest.approx(100) for r in budget_rows(every, sizes))
    two = load_config(DEMO, ["train.tasks_per_step=2", "train.max_steps=100", "train.aggregator=upgrad"])
    rows = budget_rows(two, sizes)
    p = TemperatureSampler(sizes, temperature=2.0, seed=42).probabilities()
    expected = brute_force_inclusion([p[t] for t in sizes], 2)
    assert [r.batches for r in rows] == pytest.approx([100 * e for e in expected])
    table = format_table(two, budget_report(two, rows, "declared", 1, None))
    assert "200 batches in all" in table and "one encoder backward per task" in table


def test_a_group_stream_resumes_on_the_same_groups() -> None:
    p = {"a": 0.5, "b": 0.3, "c": 0.15, "d": 0.05}
    first = group_stream(p, 3)
    head = [first.draw_group() for _ in range(5)]
    state = first.state_dict()
    later = [first.draw_group() for _ in range(30)]
    assert all(len(set(g)) == 3 for g in head + later)
    assert len({g[0] for g in later}) > 1  # the first task varies with the sampler
    again = group_stream(p, 3)
    again.load_state_dict(state)
    assert [again.draw_group() for _ in range(30)] == later


# -- config checks ------------------------------------------------------------------------------
def test_an_aggregator_with_one_task_per_step_is_exit_2_with_a_message(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "mtl", "train", "--config", str(DEMO), "--output", str(tmp_path / "o")]
    done = subprocess.run([*argv, "train.aggregator=upgrad"], capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    assert "train.aggregator" in done.stderr and "tasks_per_step" in done.stderr
    assert "Traceback" not in done.stderr


def test_missing_torchjd_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import mtl.training.strategies as strategies

    monkeypatch.setattr(strategies, "torchjd_installed", lambda: False)
    cfg = load_config(DEMO, ["train.tasks_per_step=2", "train.aggregator=pcgrad"])
    with pytest.raises(KlueInputError, match=r"klue-mtl\[strategies\]"):
        check_strategies(cfg)
    for bad in (["train.weighting=nope"], ["train.tasks_per_step=2", "train.aggregator=nope"]):
        with pytest.raises(KlueInputError, match="unknown"):
            check_strategies(load_config(DEMO, bad))
    with pytest.raises(KlueInputError, match="tasks_per_step"):
        load_config(DEMO, ["train.tasks_per_step=9"])


# -- aggregation on a toy with opposed gradients ------------------------------------------------------
class ToyEncoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.theta = nn.Parameter(torch.tensor([0.5, -1.0]))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> SimpleNamespace:
        return SimpleNamespace(last_hidden_state=self.theta * input_ids)


class ToyHead(nn.Module):
    def __init__(self, direction: list[float]) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor(direction))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return (self.a * hidden).sum()


class ToyModel(nn.Module):
    """Loss_t = a_t . theta: task A's encoder gradient is a_A, task B's a_B."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = ToyEncoder()
        self.heads = nn.ModuleDict({"a": ToyHead([-2.0, -1.0]), "b": ToyHead([3.0, 0.5])})

    def forward(self, task: str) -> torch.Tensor:
        hidden = self.encoder(torch.ones(2), torch.ones(2)).last_hidden_state
        return self.heads[task](hidden)


def toy_update(aggregator_name: str) -> tuple[torch.Tensor, ToyModel]:
    model = ToyModel()
    aggregator = build_aggregator(aggregator_name)
    with encoder_outputs(model.encoder) as features:
        losses = {t: model(t) for t in ("a", "b")}
    if aggregator is None:
        sum(losses.values()).backward()
    else:
        aggregated_backward(aggregator, losses, features, model, [])
    return model.encoder.theta.grad.clone(), model


def test_upgrad_update_agrees_with_every_task_while_sum_does_not() -> None:
    g_a, g_b = torch.tensor([-2.0, -1.0]), torch.tensor([3.0, 0.5])
    summed, _ = toy_update("sum")
    assert summed @ g_a < 0  # a step against the summed gradient raises task a's loss
    upgrad, model = toy_update("upgrad")
    assert upgrad @ g_a >= -1e-6 and upgrad @ g_b >= -1e-6
    assert upgrad.norm() > 0
    # Each head keeps its own plain gradient: d(a_t . theta)/d a_t = theta.
    for head in model.heads.values():
        torch.testing.assert_close(head.a.grad, model.encoder.theta.detach())


@pytest.mark.parametrize("name", ["mgda", "pcgrad"])
def test_other_conflict_averse_aggregators_do_not_raise_either_loss(name: str) -> None:
    update, _ = toy_update(name)
    for g in (torch.tensor([-2.0, -1.0]), torch.tensor([3.0, 0.5])):
        assert update @ g >= -1e-6, name


# -- weightings -----------------------------------------------------------------------------------
def test_uncertainty_weights_move_to_the_inverse_of_each_loss_scale() -> None:
    scales = {"small": 0.5, "large": 20.0}
    weighting = UncertaintyWeighting(dict.fromkeys(scales, 1.0), window=1)
    optimizer = torch.optim.Adam(weighting.parameters(), lr=0.05)
    for _ in range(1500):
        optimizer.zero_grad()
        sum(weighting.weigh(t, torch.tensor(scale)) for t, scale in scales.items()).backward()
        optimizer.step()
    for t, scale in scales.items():
        # 0.5 exp(-s) is the weight of the loss: exp(-s) -> 1 / scale.
        assert 2 * weighting.weights()[t] == pytest.approx(1 / scale, rel=0.02), t


def test_dwa_weighs_by_the_ratio_of_the_last_two_window_means() -> None:
    dwa = DynamicWeightAverage({"a": 1.0, "b": 1.0}, window=2)
    # window 1 (steps 1-2): a 4, b 2; window 2 (steps 3-4): a 1 (falling fast), b 2 (flat)
    for step, (la, lb) in enumerate([(4, 2), (4, 2), (1, 2), (1, 2)], start=1):
        assert dwa.weights() == {"a": 1.0, "b": 1.0}
        dwa.weigh("a", torch.tensor(float(la)))
        dwa.weigh("b", torch.tensor(float(lb)))
        dwa.end_step(step)
    ea, eb = math.exp(0.25 / 2), math.exp(1.0 / 2)
    expected = {"a": 2 * ea / (ea + eb), "b": 2 * eb / (ea + eb)}
    assert dwa.weights() == pytest.approx(expected)
    assert dwa.weigh("b", torch.tensor(3.0)).item() == pytest.approx(3.0 * expected["b"])
    again = DynamicWeightAverage({"a": 1.0, "b": 1.0}, window=2)
    again.load_state(dwa.state())
    assert again.state() == dwa.state()


def test_static_weighting_is_the_loss_weight() -> None:
    static = build_weighting("static", {"a": 0.25}, 1)
    assert static.weigh("a", torch.tensor(8.0)).item() == 2.0 and not list(static.parameters())


# -- both engines, K = 8 -----------------------------------------------------------------------
def group_run(tmp_path: Path, engine: str, steps: int, combo: list[str], **kw):
    return run(tmp_path, engine, steps, extra=[*no_eval(), "train.tasks_per_step=8", *combo], **kw)


COMBOS = [
    ["train.weighting=static", "train.aggregator=sum"],
    ["train.weighting=uncertainty", "train.aggregator=upgrad"],
    ["train.weighting=dwa", "train.dwa_window=1", "train.aggregator=mgda"],
    ["train.weighting=uncertainty", "train.aggregator=pcgrad"],
]


@pytest.mark.slow
@pytest.mark.parametrize("combo", COMBOS, ids=lambda c: "+".join(x.split("=")[1] for x in c[::2]))
def test_eight_tasks_per_step_train_alike_on_both_engines(tmp_path: Path, combo: list[str]) -> None:
    loop, w_loop = group_run(tmp_path, "loop", 3, combo)
    trainer, w_trainer = group_run(tmp_path, "trainer", 3, combo)
    assert all(math.isfinite(v) for v in loop["losses"]) and len(loop["losses"]) == 3
    assert loop["losses"] == trainer["losses"]
    for name, tensor in w_loop.items():
        assert torch.equal(tensor, w_trainer[name]), name
    if "train.weighting=uncertainty" in combo:
        assert loop["weighting"] == trainer["weighting"]
        assert any(s != 0 for s in loop["weighting"]["log_vars"])  # the log-variances learned


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["loop", "trainer"])
def test_eight_tasks_per_step_resume_after_sigterm_bitwise(
    tmp_path: Path, engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    combo = COMBOS[1] + ["train.save_every=2"]
    done, uninterrupted = group_run(tmp_path / "a", engine, 6, combo)
    original = MultiTaskStream.__next__
    draws = {"n": 0}

    def next_with_sigterm(self):
        draws["n"] += 1
        if draws["n"] == 5:  # the 3rd step's first group (gradient accumulation 2)
            signal.raise_signal(signal.SIGTERM)
        return original(self)

    monkeypatch.setattr(MultiTaskStream, "__next__", next_with_sigterm)
    stopped, _ = group_run(tmp_path / "b", engine, 6, combo)
    monkeypatch.setattr(MultiTaskStream, "__next__", original)
    assert stopped["stopped"] and stopped["steps"] == 3
    resumed, weights = group_run(tmp_path / "b", engine, 6, combo, resume=True)
    assert resumed["losses"] == done["losses"][3:]
    assert resumed["weighting"] == done["weighting"]
    for name, tensor in uninterrupted.items():
        assert torch.equal(tensor, weights[name]), name


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["loop", "trainer"])
def test_eight_tasks_per_step_resume_after_sigkill_bitwise(
    engine: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from test_reliability import (
        assert_last_is_complete,
        load_weights,
        run_cli,
        samples_config,
        saved_step,
        start_train,
        wait_until,
    )

    strategy = {"tasks_per_step": 8, "weighting": "dwa", "dwa_window": 2, "aggregator": "upgrad"}
    config = samples_config(tmp_path, engine, 12, extra=strategy)
    status, err = run_cli(["train", "--config", str(config), "--output", str(tmp_path / "reference")], capsys)
    assert status == 0, err
    reference = load_weights(tmp_path / "reference" / "last")

    out = tmp_path / "out"
    first = start_train(config, out, resume=False)
    wait_until(lambda: saved_step(out) >= 1, first, "a first checkpoint")
    time.sleep(random.Random(engine).uniform(0.0, 0.6))
    first.send_signal(signal.SIGKILL)
    first.wait()
    step = assert_last_is_complete(out, 1)
    assert step < 12, "the kill left nothing to resume"
    final = start_train(config, out, resume=True)
    output = final.communicate(timeout=600)[0]
    assert final.returncode == 0, output
    weights = load_weights(out / "last")
    for name, tensor in reference.items():
        assert torch.equal(tensor, weights[name]), name


@pytest.mark.slow
def test_the_experiment_strategies_stage_scores_both_variants_and_the_interaction(tmp_path: Path) -> None:
    from test_experiment_mlm import DEMO as DEMO_CONFIG
    from test_experiment_mlm import TINY

    from mtl.experiments.experiment import _run
    from mtl.experiments.strategies import probed_config, render_strategies, strategies_stage

    cfg = load_config(DEMO_CONFIG, TINY)
    cfg.tasks = {name: cfg.tasks[name] for name in ("ynat", "ner")}
    _run(probed_config(cfg), tmp_path / "joint")
    stage = strategies_stage(cfg, tmp_path, _run)
    assert stage["steps"] == {"all-uncertainty": 2, "all-upgrad": 2}  # 4 steps of 1 task = 2 steps of 2
    assert set(stage["intervals"]) == {"ynat", "ner"}
    assert "diff_low" in stage["intervals"]["ner"]["all-upgrad"]
    assert [stage["interaction"][k]["source"] for k in ("start", "middle", "end")] == [
        "step 0 (untrained)",
        "step 2",
        "step 4",
    ]
    text = "\n".join(render_strategies(stage, 4))
    assert "| ynat | macro_f1 |" in text and "most opposed ynat~ner" in text
