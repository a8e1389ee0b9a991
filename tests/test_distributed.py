"""DDP on CPU (gloo): ``torchrun --nproc_per_node 2`` with both engines.

``batch_size`` is global. At every step both ranks must train the same task on disjoint halves of
the global batch a single process draws with the same config, and end where that single process ends:

- sentence-level tasks (YNAT, NLI, STS, RE: one loss term per example) with full, equal shards:
  the mean of the two ranks' mean losses IS the global mean, so the weights agree to float rounding
  (tolerance 1e-4 relative distance; measured ~1e-6);
- all eight tasks: NER, DP, WoS and MRC average over tokens/words/slots per rank (and a short last
  batch splits unevenly), so each DDP gradient differs from the global-batch one by a few percent,
  which Adam's per-coordinate normalisation amplifies over the steps (measured 0.17). The tolerance
  is 0.35; the same DDP run compared with a single process at the per-rank batch size (what ranks
  that never averaged their gradients would match best) lands 1.1 away.

"Relative distance" = ||w_ddp - w_single|| / ||w_single - w_init|| over all parameters: the
disagreement measured against how far training moved the weights. Dropout is off in those runs (the
``--no-dropout`` switch of ``tests/_train_entry.py`` and the encoder's dropout settings): with dropout
the two runs draw different masks by design.

Also: the budget (epochs table) is the one a single process plans; under gradient accumulation 4 the
gradients are all-reduced once per optimizer step (a DDP communication hook counts them); the ranks
share the evaluation and score exactly what one process scores; a 2-process run stopped and resumed
ends bitwise where the uninterrupted one does, dropout and masked LM on (each rank resumes its own
random state and its own mask generator).
Under ``nan_policy: skip`` a NaN loss on one rank must be skipped by every rank (else the others wait
forever in the gradient all-reduce). Likewise SIGTERM sent to one rank alone stops every rank after
the same step, with one checkpoint and exit status 143 on each, and the run resumed from it ends
bitwise where the uninterrupted one does.

One ``torchrun`` launch trains every run in sequence (each process start costs seconds); the
signalled runs have launches of their own.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
import yaml
from _train_entry import (
    NAN_AT,
    NO_DROPOUT,
    SEPARATOR,
    SIGNAL_AT,
    instrument_sessions,
    log_draws,
    read_draws,
    without_dropout,
)
from safetensors.torch import load_file
from transformers import TrainingArguments

import mtl.training.session
from mtl.cli.main import main
from mtl.config import load_config
from mtl.layout import LAST
from mtl.training.budget import budget_rows, per_rank_batch_size
from mtl.training.checkpoint import TrainingState, capture_rng, load_training_state, restore_rng
from mtl.training.loop import train_loop
from mtl.training.run import start_rng
from mtl.training.trainer import train_with_trainer

ENTRY = Path(__file__).parent / "_train_entry.py"
ENGINES = {"loop": train_loop, "trainer": train_with_trainer}
ALL_TASKS = ("ynat", "nli", "sts", "ner", "re", "dp", "mrc", "wos")
SENTENCE_TASKS = ("ynat", "nli", "sts", "re")
WORLD = 2
STEPS = 8
# Global batch sizes: each of the two ranks takes half.
BATCH = {"ynat": 16, "nli": 16, "sts": 16, "ner": 8, "re": 16, "dp": 8, "mrc": 8, "wos": 8}
TOLERANCE = {"all": 0.35, "sentence": 1e-4}


def config_data(
    tasks: tuple[str, ...],
    engine: str,
    *,
    dev: bool = False,
    dropout: float = 0.0,
    masked_lm: bool = False,
    **train: Any,
) -> dict[str, Any]:
    settings: dict[str, dict[str, Any]] = {}
    for t in tasks:
        suffix = "tsv" if t in ("ner", "dp") else "json"
        settings[t] = {"train": f"{t}_train.{suffix}", "batch_size": BATCH[t]}
        if dev:  # small evaluation batches: several per task for the ranks to share
            settings[t].update(dev=f"{t}_dev.{suffix}", eval_batch_size=4)
        if tasks == SENTENCE_TASKS:
            # 32 examples = 2 full global batches of 16 per epoch: equal shards at every step.
            settings[t]["max_train_examples"] = 32
    if masked_lm:  # drawn at most steps; its masks come from each rank's own generator
        settings["mlm"] = {
            "kind": "masked_lm",
            "train": "@tasks",
            "batch_size": 8,
            "max_length": 256,
            "sample_weight": 20.0,
        }
    for t in {"ner", "mrc", "wos"} & set(tasks):
        settings[t]["max_length"] = 128
    if "mrc" in settings:
        settings["mrc"]["doc_stride"] = 32
    if "wos" in settings:
        settings["wos"]["ontology"] = "ontology.json"
    architecture = {
        "hidden_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "hidden_dropout_prob": dropout,
        "attention_probs_dropout_prob": dropout,
    }
    return {
        "encoder": {
            "name": "tiny",
            "tokenizer": "offline",
            "random_init": True,
            "architecture": architecture,
        },
        "data_dir": "@samples",
        "tasks": settings,
        "train": {"engine": engine, "max_steps": STEPS, "learning_rate": 1.0e-3, "log_every": 1, **train},
    }


RUNS = {
    f"{kind}-{engine}": (SENTENCE_TASKS if kind == "sentence" else ALL_TASKS, engine)
    for kind in ("all", "sentence")
    for engine in ENGINES
}


# Under nan_policy=skip, the loss of step NAN_STEP is NaN on rank 1 only: every rank must skip it.
NAN_STEP = 3
NAN_RUNS = {f"nan-{engine}": engine for engine in ENGINES}


# Gradient accumulation: one all-reduce per optimizer step, both engines.
ACCUM = 4
ACCUM_RUNS = {f"accum-{engine}": engine for engine in ENGINES}
# Trained with dev data: the final evaluation is shared by the ranks; so is `evaluate` of its checkpoint.
EVAL_RUN = "eval-loop"
EVALUATED = "evaluated"
# The memory check before step 1 (a CPU stand-in for the GPU's): per-rank batches, before DDP wraps the model.
MEMORY_CHECK = "memory-check"
# Dropout on, constant learning rate: the full run vs. the same run stopped at RESUME_AT and resumed.
RESUME_AT = 4
RESUME_RUNS = {f"{kind}-{engine}": engine for kind in ("full", "resumed") for engine in ENGINES}
RESUME_OPTIONS = {"dropout": 0.1, "masked_lm": True, "lr_scheduler": "constant", "warmup_ratio": 0.0}
# The full runs' config, SIGTERM sent to rank 1 alone at step SIGNAL_STEP: both ranks must stop after
# that step with one checkpoint, and the run resumed from it must end where the full run ends.
SIGNAL_STEP = 4
SIGNAL_RUNS = {f"signal-{engine}": engine for engine in ENGINES}


def write_config(path: Path, tasks: tuple[str, ...], engine: str, **options: Any) -> Path:
    path.write_text(yaml.safe_dump(config_data(tasks, engine, **options)), encoding="utf-8")
    return path


def launch(
    argv: list[str], *, check: bool = True, timeout: int = 900, **env: str
) -> subprocess.CompletedProcess[str]:
    """``torchrun --nproc_per_node 2 tests/_train_entry.py ARGV``; ``check``: fail the test on a non-zero
    exit. ``timeout`` (seconds) bounds the whole launch, so a hang fails the test."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", **env}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={WORLD}"]
    done = subprocess.run(
        [*torchrun, str(ENTRY), *argv], env=env, capture_output=True, text=True, timeout=timeout
    )
    assert not check or done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    return done


@pytest.fixture(scope="module")
def ddp_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Train every run of this file under one ``torchrun --nproc_per_node 2`` launch; their outputs' root."""
    root = tmp_path_factory.mktemp("ddp")
    runs: list[list[str]] = []

    def train(name: str, tasks: tuple[str, ...], engine: str, *switches: str, **options: Any) -> None:
        config = write_config(root / f"{name}.yaml", tasks, engine, **options)
        runs.append(["train", "--config", str(config), "--output", str(root / name), *switches])

    for name, (tasks, engine) in RUNS.items():
        train(name, tasks, engine, NO_DROPOUT)
    for name, engine in NAN_RUNS.items():
        train(name, ALL_TASKS, engine, NO_DROPOUT, NAN_AT, f"{NAN_STEP}:1", nan_policy="skip")
    for name, engine in ACCUM_RUNS.items():
        train(name, SENTENCE_TASKS, engine, gradient_accumulation_steps=ACCUM)
    train(EVAL_RUN, ALL_TASKS, "loop", dev=True)
    for name, engine in RESUME_RUNS.items():
        resumed = name.startswith("resumed")
        steps = {"max_steps": RESUME_AT} if resumed else {}
        train(name, ALL_TASKS, engine, **RESUME_OPTIONS, **steps)
        if resumed:  # the same run continued to STEPS
            runs.append([*runs[-1], "--resume", f"train.max_steps={STEPS}"])
    argv = [arg for run in runs for arg in [SEPARATOR, *run]][1:]
    launch(argv, KLUE_MTL_TEST_DRAWS="1", KLUE_MTL_TEST_ALLREDUCES="1", KLUE_MTL_TEST_PREDICTIONS="1")
    # A launch of its own, as a user runs it: evaluate must join the process group itself.
    evaluate = ["evaluate", "--checkpoint", str(root / EVAL_RUN / "last"), "--output", str(root / EVALUATED)]
    launch(evaluate, KLUE_MTL_TEST_PREDICTIONS="1")
    # The memory check before step 1, run for real on CPU: its own launch (without the fix it crashed
    # the Trainer's first step, which would fail every run of a shared launch).
    checked = []
    for engine in ENGINES:
        config = write_config(root / f"{MEMORY_CHECK}-{engine}.yaml", ALL_TASKS, engine, max_steps=2)
        checked.append(["train", "--config", str(config), "--output", str(root / f"{MEMORY_CHECK}-{engine}")])
    launch([arg for run in checked for arg in [SEPARATOR, *run]][1:], KLUE_MTL_TEST_MEMORY_CHECK="1")
    return root


@pytest.fixture(scope="module")
def signal_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Each run of SIGNAL_RUNS under ``torchrun`` with SIGTERM sent to rank 1 alone, then resumed.

    A launch per signalled run (a run that exits non-zero ends its launch's sequence), then one for
    both resumes; the outputs' root and each launch. A small ``train.ddp_timeout`` and launch
    timeout: ranks that disagree wait in mismatched collectives, which must fail the test, not hold
    it for an hour.
    """
    root = tmp_path_factory.mktemp("signal")
    launches: dict[str, subprocess.CompletedProcess[str]] = {}
    resumes: list[list[str]] = []
    for name, engine in SIGNAL_RUNS.items():
        config = write_config(root / f"{name}.yaml", ALL_TASKS, engine, ddp_timeout=60, **RESUME_OPTIONS)
        command = ["train", "--config", str(config), "--output", str(root / name)]
        signalled = [*command, SIGNAL_AT, f"{SIGNAL_STEP}:1"]
        launches[name] = launch(signalled, check=False, timeout=300, KLUE_MTL_TEST_STATUS="1")
        if (root / name / LAST).is_dir():  # what the signal saved, before the resume replaces it
            shutil.copytree(root / name / LAST, root / f"{name}-stopped")
        resumes.append([*command, "--resume"])
    argv = [arg for run in resumes for arg in [SEPARATOR, *run]][1:]
    launches["resumed"] = launch(argv, check=False, timeout=300)
    return {"root": root, "launches": launches}


@pytest.fixture(scope="module")
def single_process(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Each run of RUNS in this process, same config: draws, initial and final weights, budget."""
    root = tmp_path_factory.mktemp("single")
    results = {}
    with pytest.MonkeyPatch.context() as mp:
        log_draws(mp.setattr)
        instrument_sessions(no_dropout=True, set_attr=mp.setattr)
        for name, (tasks, engine) in RUNS.items():
            cfg = load_config(write_config(root / f"{name}.yaml", tasks, engine))
            session = mtl.training.session.build_session(cfg, root / name, progress=False)
            without_dropout(session.model)
            budget = [asdict(row) for row in budget_rows(cfg, session.train_sizes())]
            initial = {k: v.detach().clone() for k, v in session.model.state_dict().items()}
            ENGINES[engine](session, progress=False)
            results[name] = {
                "draws": read_draws(root / name / "draws-rank0.jsonl"),
                "initial": initial,
                "final": {k: v.detach().clone() for k, v in session.model.state_dict().items()},
                "budget": budget,
            }
    return results


@pytest.mark.slow
@pytest.mark.parametrize("name", list(RUNS))
def test_ranks_train_the_same_task_on_disjoint_halves_of_the_global_batch(
    name: str, ddp_runs: Path, single_process: dict[str, dict[str, Any]]
) -> None:
    ranks = [read_draws(ddp_runs / name / f"draws-rank{r}.jsonl") for r in range(WORLD)]
    reference = single_process[name]["draws"]
    assert len(reference) == STEPS and all(len(draws) == STEPS for draws in ranks)
    tasks = {row["task"] for row in reference}
    assert len(tasks) >= 3, f"too few tasks drawn to mean anything: {tasks}"
    for step, (single, *shards) in enumerate(zip(reference, *ranks, strict=True), 1):
        assert all(s["task"] == single["task"] for s in shards), f"step {step}: ranks train different tasks"
        parts = [set(s["indices"]) for s in shards]
        assert set.union(*parts) == set(single["indices"]), f"step {step}: shards do not cover the batch"
        assert max(map(len, parts)) <= per_rank_batch_size(BATCH[single["task"]], WORLD)
        if len(single["indices"]) >= WORLD:
            assert not set.intersection(*parts), f"step {step}: ranks share examples"


@pytest.mark.slow
@pytest.mark.parametrize("name", list(RUNS))
def test_ddp_weights_match_single_process_training_with_the_same_global_batch(
    name: str, ddp_runs: Path, single_process: dict[str, dict[str, Any]]
) -> None:
    ddp = load_file(str(ddp_runs / name / "last" / "model.safetensors"))
    initial, final = single_process[name]["initial"], single_process[name]["final"]
    assert ddp.keys() == final.keys()
    difference = sum(float(((ddp[k] - final[k]) ** 2).sum()) for k in final) ** 0.5
    travelled = sum(float(((final[k] - initial[k]) ** 2).sum()) for k in final) ** 0.5
    assert travelled > 0
    tolerance = TOLERANCE[name.split("-")[0]]
    assert difference / travelled <= tolerance, (
        f"relative distance {difference / travelled:.2e} > {tolerance}"
    )
    assert all(torch.isfinite(t).all() for t in ddp.values())


@pytest.mark.slow
def test_a_nan_loss_on_one_rank_is_skipped_by_every_rank(ddp_runs: Path) -> None:
    weights = {}
    for name, engine in NAN_RUNS.items():
        state = load_training_state(ddp_runs / name / "last")
        assert state.step == STEPS and state.extra["skipped_steps"] == 1, engine
        weights[engine] = load_file(str(ddp_runs / name / "last" / "model.safetensors"))
        assert all(torch.isfinite(t).all() for t in weights[engine].values()), engine
    # Both engines skip the same way (no gradient from that batch on any rank): same weights.
    for key, tensor in weights["loop"].items():
        torch.testing.assert_close(tensor, weights["trainer"][key], rtol=1e-4, atol=1e-6, msg=key)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(RUNS))
def test_the_epochs_table_of_two_processes_is_the_one_of_one_process(
    name: str, ddp_runs: Path, single_process: dict[str, dict[str, Any]]
) -> None:
    budget = json.loads((ddp_runs / name / "budget.json").read_text(encoding="utf-8"))
    assert budget["world_size"] == WORLD
    single = {row["task"]: row for row in single_process[name]["budget"]}
    for row in budget["tasks"]:
        assert row["per_rank_batch_size"] == row["batch_size"] // WORLD
        table = ("train_size", "batch_size", "probability", "batches", "examples", "epochs", "target_epochs")
        assert {k: row[k] for k in table} == {k: single[row["task"]][k] for k in table}, row["task"]


@pytest.mark.slow
@pytest.mark.parametrize("name", list(ACCUM_RUNS))
def test_gradients_are_all_reduced_once_per_optimizer_step_under_accumulation(
    name: str, ddp_runs: Path
) -> None:
    for rank in range(WORLD):
        log = (ddp_runs / name / f"allreduces-rank{rank}.txt").read_text(encoding="utf-8")
        # The batches drawn when each all-reduce completed: after the last micro-batch of each step.
        assert [int(n) for n in log.split()] == [ACCUM * step for step in range(1, STEPS + 1)], rank


@pytest.mark.slow
@pytest.mark.parametrize("name", [EVAL_RUN, EVALUATED])
def test_ranks_share_the_evaluation_and_score_what_one_process_scores(
    name: str, ddp_runs: Path, tmp_path: Path
) -> None:
    """The final evaluation of a training run, and ``klue-mtl evaluate`` under torchrun."""
    shared_dir = ddp_runs / name
    predicted = [read_draws(shared_dir / f"predicted-rank{rank}.jsonl") for rank in range(WORLD)]
    for task in ALL_TASKS:
        counts = [sum(row["features"] for row in rows if row["task"] == task) for rows in predicted]
        total = next(row["total"] for row in predicted[0] if row["task"] == task)
        assert sum(counts) == total and max(counts) < total, (task, counts, total)
    # The same weights (the final checkpoint) evaluated by one process: the same scoreboard.
    checkpoint = ddp_runs / EVAL_RUN / "last"
    assert main(["evaluate", "--checkpoint", str(checkpoint), "--output", str(tmp_path)]) == 0
    shared, alone = (
        json.loads((d / "scoreboard.json").read_text(encoding="utf-8")) for d in (shared_dir, tmp_path)
    )
    metrics = {row["task"]: row["metrics"] for row in alone["rows"]}
    assert metrics.keys() == set(ALL_TASKS)
    assert {row["task"]: row["metrics"] for row in shared["rows"]} == metrics


@pytest.mark.slow
@pytest.mark.parametrize("engine", list(ENGINES))
def test_the_memory_check_measures_each_ranks_share_and_leaves_the_first_step_to_ddp(
    engine: str, ddp_runs: Path
) -> None:
    """Under the Trainer the check used to run on the DDP-wrapped model: its backward passes marked
    every head as used, and the first step (one task) stopped with DDP's "undefined gradient" error."""
    run = ddp_runs / f"{MEMORY_CHECK}-{engine}"
    for rank in range(WORLD):
        rows = {row["task"]: row["rows"] for row in read_draws(run / f"memory-rank{rank}.jsonl")}
        assert rows == {t: BATCH[t] // WORLD for t in ALL_TASKS}, rank  # a rank's share, not the global batch
    assert load_training_state(run / "last").step == 2


def test_predict_under_torchrun_is_refused_naming_evaluate(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    out = tmp_path / "p.jsonl"
    assert (
        main(
            ["predict", "--checkpoint", str(tmp_path), "--task", "ynat", "--input", "x", "--output", str(out)]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "without torchrun" in err and "evaluate" in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.parametrize("engine", list(ENGINES))
def test_a_two_process_run_stopped_and_resumed_ends_bitwise_where_the_full_run_ends(
    engine: str, ddp_runs: Path
) -> None:
    full = load_file(str(ddp_runs / f"full-{engine}" / "last" / "model.safetensors"))
    resumed = load_file(str(ddp_runs / f"resumed-{engine}" / "last" / "model.safetensors"))
    for key, tensor in full.items():
        assert torch.equal(tensor, resumed[key]), key
    state = load_training_state(ddp_runs / f"resumed-{engine}" / "last")
    assert state.step == STEPS
    assert len(state.rng) == WORLD
    # Masked LM's mask generators: one per rank, and they differ (each masks its own rows).
    masks = state.sampler["rng"]
    assert len(masks) == WORLD and masks[0] != masks[1]


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SIGNAL_RUNS))
def test_sigterm_on_one_rank_stops_every_rank_after_the_same_step_with_one_checkpoint(
    name: str, signal_runs: dict[str, Any]
) -> None:
    root, done = signal_runs["root"], signal_runs["launches"][name]
    output = done.stdout[-3000:] + done.stderr[-5000:]
    statuses = [root / name / f"status-rank{rank}.txt" for rank in range(WORLD)]
    # Both ranks, rank 0 without a signal of its own, exit as a SIGTERM'd run does: 128 + 15.
    assert [s.read_text(encoding="utf-8").strip() if s.exists() else None for s in statuses] == [
        "143"
    ] * WORLD, output
    assert done.stdout.count(f"stopped at step {SIGNAL_STEP} by SIGTERM") == WORLD, output
    state = load_training_state(root / f"{name}-stopped")
    assert state.step == SIGNAL_STEP
    assert len(state.rng) == WORLD  # gathered from both ranks


@pytest.mark.slow
@pytest.mark.parametrize("engine", list(ENGINES))
def test_a_two_process_run_stopped_by_sigterm_and_resumed_ends_bitwise_where_the_full_run_ends(
    engine: str, signal_runs: dict[str, Any], ddp_runs: Path
) -> None:
    done = signal_runs["launches"]["resumed"]
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    resumed = signal_runs["root"] / f"signal-{engine}" / LAST
    assert load_training_state(resumed).step == STEPS
    full = load_file(str(ddp_runs / f"full-{engine}" / LAST / "model.safetensors"))
    weights = load_file(str(resumed / "model.safetensors"))
    for key, tensor in full.items():
        assert torch.equal(tensor, weights[key]), key


# -- resuming on another number of devices or processes (no launch needed) --------------------------
def test_random_states_of_two_gpus_resume_on_a_machine_with_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    restored: list[int] = []

    def set_rng_state(state: torch.Tensor, device: int = 0) -> None:
        if device >= 1:  # what CUDA says about a device this machine lacks
            raise RuntimeError(f"invalid device ordinal {device}")
        restored.append(device)

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_rng_state", set_rng_state)
    monkeypatch.setattr(torch.cuda.random, "set_rng_state", set_rng_state)
    saved = {**capture_cpu_rng(), "cuda": [torch.zeros(16, dtype=torch.uint8)] * 2}
    restore_rng(saved)
    assert restored == [0]
    assert "2 GPU(s), this machine has 1" in capsys.readouterr().out


def capture_cpu_rng() -> dict[str, Any]:
    state = capture_rng()
    state.pop("cuda", None)
    return state


def resume_session(rank: int, world_size: int, states: list[dict[str, Any]]) -> Any:
    """What :func:`mtl.training.run.start_rng` reads of a session resumed from ``states``."""
    return SimpleNamespace(
        resume_state=TrainingState(rng=states),
        rank=rank,
        world_size=world_size,
        is_main=rank == 0,
        cfg=SimpleNamespace(train=SimpleNamespace(seed=7)),
    )


def test_each_rank_resumes_its_own_random_state_and_a_rank_without_one_is_seeded_anew(
    capsys: pytest.CaptureFixture[str],
) -> None:
    states = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        states.append(capture_cpu_rng())
    expected = [torch.rand(3, generator=torch.Generator().manual_seed(seed)) for seed in (1, 2, 7)]
    for rank in (0, 1):
        start_rng(resume_session(rank, 2, states))
        assert torch.equal(torch.rand(3), expected[rank]), rank
    start_rng(resume_session(2, 3, states))  # a third process: no saved state
    assert torch.equal(torch.rand(3), expected[2])
    assert "no random state for rank 2" in capsys.readouterr().out
    start_rng(resume_session(0, 1, states))  # one process: rank 1's state is left unused
    assert torch.equal(torch.rand(3), expected[0])
    assert "those of rank 1..1 are not used" in capsys.readouterr().out


def test_the_trainer_refuses_to_split_batches_with_data_parallel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # One process seeing two GPUs: the Trainer would wrap the model in nn.DataParallel.
    monkeypatch.setattr(TrainingArguments, "n_gpu", property(lambda self: 2))
    config = write_config(tmp_path / "c.yaml", ("ynat",), "trainer")
    status = main(["train", "--config", str(config), "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert status == 2, err
    assert "torchrun --nproc_per_node 2" in err and "Traceback" not in err
