"""The two engines: same batches, same losses, same weights; resume continues bit for bit."""

from __future__ import annotations

import signal
from pathlib import Path

import numpy as np
import pytest
import torch

from mtl.batching.stream import MultiTaskStream
from mtl.config import load_config
from mtl.tracking.curves import draw_loss_curves, read_scalars
from mtl.training.loop import train_loop
from mtl.training.session import build_session
from mtl.training.trainer import train_with_trainer

ENGINES = {"loop": train_loop, "trainer": train_with_trainer}


def tiny_config(tmp_path: Path, steps: int, extra: list[str] | None = None):
    overrides = [
        "encoder.architecture.hidden_size=32",
        "encoder.architecture.num_hidden_layers=1",
        "encoder.architecture.num_attention_heads=2",
        "encoder.architecture.intermediate_size=64",
        f"train.max_steps={steps}",
        "train.gradient_accumulation_steps=2",
        "train.log_every=5",
        "train.learning_rate=3e-3",
        f"output_dir={tmp_path}",
        f"cache_dir={tmp_path / 'cache'}",
        *(extra or []),
    ]
    return load_config(Path(__file__).parent.parent / "configs" / "demo.yaml", overrides)


def run(tmp_path: Path, engine: str, steps: int, *, resume: bool = False, extra: list[str] | None = None):
    cfg = tiny_config(tmp_path, steps, extra)
    session = build_session(cfg, tmp_path / engine, resume=resume, progress=False)
    summary = ENGINES[engine](session, progress=False)
    return summary, {k: v.detach().clone() for k, v in session.model.state_dict().items()}


def no_eval() -> list[str]:
    # Parity and resume are about training; evaluation is exercised elsewhere.
    return [f"tasks.{t}.dev=null" for t in ("ynat", "nli", "sts", "ner", "re", "dp", "mrc", "wos")]


@pytest.mark.slow
def test_loop_and_trainer_see_the_same_batches_and_reach_the_same_weights(tmp_path: Path) -> None:
    loop, w_loop = run(tmp_path, "loop", 50, extra=no_eval())
    trainer, w_trainer = run(tmp_path, "trainer", 50, extra=no_eval())
    assert len(loop["losses"]) == len(trainer["losses"]) == 50
    for step, (a, b) in enumerate(zip(loop["losses"], trainer["losses"], strict=True)):
        assert abs(a - b) <= 1e-5 * max(abs(a), 1e-8), f"step {step + 1}: loop {a} vs trainer {b}"
    for name, tensor in w_loop.items():
        torch.testing.assert_close(tensor, w_trainer[name], rtol=1e-4, atol=1e-6, msg=name)

    # Both engines log the same TensorBoard tags (loss per task, total, lr) at the same steps into
    # <output>/tensorboard, so the loss-curve picture works for either.
    logs = {engine: read_scalars(tmp_path / engine / "tensorboard", prefix="") for engine in ENGINES}
    assert {"loss/total", "lr"} < set(logs["loop"]) and any(t.startswith("loss/n") for t in logs["loop"])
    assert logs["trainer"].keys() == logs["loop"].keys()
    for tag, (steps, values) in logs["loop"].items():
        # Every 5 steps; a task's loss where that task was drawn since the last log.
        assert set(steps.tolist()) <= set(range(5, 51, 5)), tag
        assert tag.startswith("loss/") and tag != "loss/total" or len(steps) == 10, tag
        assert steps.tolist() == logs["trainer"][tag][0].tolist(), tag
        np.testing.assert_allclose(values, logs["trainer"][tag][1], rtol=1e-5, err_msg=tag)
    assert not (tmp_path / "trainer" / "trainer" / "runs").exists()  # no second log folder
    picture = draw_loss_curves(tmp_path / "trainer" / "tensorboard", tmp_path / "curves.png")
    assert picture.stat().st_size > 1000


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["loop", "trainer"])
def test_interrupted_and_resumed_run_ends_bitwise_equal(tmp_path: Path, engine: str, monkeypatch) -> None:
    _, uninterrupted = run(tmp_path / "a", engine, 12, extra=no_eval())

    # Send a real SIGTERM while the 6th optimizer step draws its batches: the engine finishes
    # that step, saves a checkpoint and stops; --resume then continues to step 12.
    original = MultiTaskStream.__next__
    draws = {"n": 0}

    def next_with_sigterm(self):
        draws["n"] += 1
        if draws["n"] == 11:  # 2 draws per step (gradient accumulation 2)
            signal.raise_signal(signal.SIGTERM)
        return original(self)

    monkeypatch.setattr(MultiTaskStream, "__next__", next_with_sigterm)
    stopped, _ = run(tmp_path / "b", engine, 12, extra=no_eval())
    monkeypatch.setattr(MultiTaskStream, "__next__", original)
    assert stopped["stopped"] and stopped["steps"] == 6
    resumed, weights = run(tmp_path / "b", engine, 12, resume=True, extra=no_eval())
    assert not resumed["stopped"]
    for name, tensor in uninterrupted.items():
        assert torch.equal(tensor, weights[name]), name


@pytest.mark.slow
def test_compiled_encoder_trains_like_eager(tmp_path: Path) -> None:
    """``train.compile``: 20 demo steps with the encoder compiled give the eager run's losses."""
    eager, w_eager = run(tmp_path / "eager", "loop", 20, extra=no_eval())
    cfg = tiny_config(tmp_path / "compiled", 20, [*no_eval(), "train.compile=true"])
    session = build_session(cfg, tmp_path / "compiled" / "loop", progress=False)
    compiled = train_loop(session, progress=False)
    assert session.model.encoder._compiled_call_impl is not None  # the encoder really ran compiled
    for step, (a, b) in enumerate(zip(eager["losses"], compiled["losses"], strict=True)):
        assert abs(a - b) <= 1e-4 * abs(a), f"step {step + 1}: eager {a} vs compiled {b}"
    # Compiled in place: the state dict (what checkpoints save) has the eager parameter names. The
    # weights themselves are not compared: where a gradient is ~0, Adam's normalised step turns
    # float-rounding differences into differences of the order of the learning rate.
    assert session.model.state_dict().keys() == w_eager.keys()
