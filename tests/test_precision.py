"""train.precision: what each card gets, fp16 with loss scaling in both engines, a conflicting launcher."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import mtl.modeling.precision as precision
import mtl.training.run as run_module
from mtl.cli.main import main
from mtl.modeling.precision import enable_tf32, make_grad_scaler, pick_autocast
from mtl.tracking.curves import read_scalars
from mtl.training.checkpoint import load_training_state
from tests.test_engines import no_eval, run

DEMO = Path(__file__).parent.parent / "configs" / "demo.yaml"
CUDA = torch.device("cuda", 0)
CPU = torch.device("cpu")


def scaler_from(init_scale: float):
    """A stand-in for :func:`make_grad_scaler` whose fp16 loss scale starts at ``init_scale``."""

    def make(dtype: torch.dtype | None, device: torch.device) -> torch.amp.GradScaler | None:
        return torch.amp.GradScaler(device.type, init_scale=init_scale) if dtype is torch.float16 else None

    return make


@pytest.fixture
def capability(monkeypatch: pytest.MonkeyPatch):
    """Pretend the CUDA device has the given compute capability."""

    def set_to(major: int, minor: int) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (major, minor))

    return set_to


def test_auto_is_fp16_with_a_scaler_on_a_t4_bf16_from_ampere_and_fp32_on_cpu(capability) -> None:
    capability(7, 5)  # T4: no bf16 tensor cores
    assert pick_autocast("auto", CUDA) is torch.float16
    assert isinstance(make_grad_scaler(pick_autocast("auto", CUDA), CUDA), torch.amp.GradScaler)
    capability(8, 0)  # A100
    assert pick_autocast("auto", CUDA) is torch.bfloat16
    assert make_grad_scaler(torch.bfloat16, CUDA) is None
    assert pick_autocast("auto", CPU) is None
    # Explicit choices hold on every device.
    for device in (CUDA, CPU):
        assert pick_autocast("fp16", device) is torch.float16
        assert pick_autocast("bf16", device) is torch.bfloat16
        assert pick_autocast("fp32", device) is None
    assert make_grad_scaler(None, CPU) is None


def test_tf32_is_turned_on_for_fp32_matmuls_from_ampere_only(capability, monkeypatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(torch, "set_float32_matmul_precision", calls.append)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", torch.backends.cudnn.allow_tf32)
    capability(7, 5)
    assert not enable_tf32(CUDA) and not calls
    assert not enable_tf32(CPU) and not calls
    capability(9, 0)
    assert enable_tf32(CUDA) and calls == ["high"]


@pytest.mark.parametrize(("launched", "config"), [("bf16", "fp32"), ("fp16", "auto"), ("bf16", "fp16")])
def test_a_launcher_precision_that_contradicts_the_config_is_refused(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    launched: str,
    config: str,
) -> None:
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", launched)
    status = main(
        ["train", "--config", str(DEMO), "--output", str(tmp_path / "out"), f"train.precision={config}"]
    )
    err = capsys.readouterr().err
    assert status == 2, err
    assert "train.precision" in err and f"--mixed_precision {launched}" in err, err
    assert "Traceback" not in err


def test_a_launcher_precision_that_agrees_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "fp16")
    precision.check_launcher_precision("fp16", torch.float16)
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "no")
    precision.check_launcher_precision("auto", None)  # auto on CPU is fp32


@pytest.mark.parametrize(("major", "minor", "dtype"), [(8, 0, torch.bfloat16), (7, 5, torch.float16)])
def test_accelerate_launch_without_the_flag_keeps_the_configs_precision_on_a_gpu(
    monkeypatch: pytest.MonkeyPatch, major: int, minor: int, dtype: torch.dtype
) -> None:
    """`accelerate launch` without --mixed_precision exports "no": `auto` still picks the card's precision."""
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (major, minor))
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "no")
    autocast_dtype = precision.pick_autocast("auto", CUDA)
    assert autocast_dtype is dtype
    precision.check_launcher_precision("auto", autocast_dtype)  # accepted: no exit 2


@pytest.mark.slow
def test_the_demo_trains_in_fp16_on_cpu(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    status = main(
        ["train", "--config", str(DEMO), "--output", str(out), "train.precision=fp16", "train.max_steps=6"]
    )
    assert status == 0, capsys.readouterr().err
    scaler = load_training_state(out / "last").scaler
    assert scaler is not None and scaler["scale"] > 0  # the loss scaler ran and was saved


@pytest.mark.slow
def test_fp16_overflows_are_skipped_and_scaled_down_alike_in_both_engines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A loss scale far too large overflows the first steps: both engines skip those updates, halve
    the scale each time, hold the schedule back, and then train to the same weights."""
    monkeypatch.setattr(run_module, "make_grad_scaler", scaler_from(2.0**120))
    extra = [*no_eval(), "train.precision=fp16"]
    loop, w_loop = run(tmp_path, "loop", 16, extra=extra)
    trainer, w_trainer = run(tmp_path, "trainer", 16, extra=extra)
    assert loop["overflow_steps"] == trainer["overflow_steps"] > 0
    assert loop["skipped_steps"] == trainer["skipped_steps"] == 0  # overflow is no nan_policy event
    assert loop["losses"] == pytest.approx(trainer["losses"], rel=1e-5)
    for name, tensor in w_loop.items():
        torch.testing.assert_close(tensor, w_trainer[name], rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.parametrize(
    "fused", [True, pytest.param(False, marks=pytest.mark.slow)], ids=["fused-adamw", "foreach-adamw"]
)
def test_after_fp16_overflows_both_engines_hold_the_schedule_back_and_train_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fused: bool
) -> None:
    """A loss scale too large for the first steps only: they overflow, the scale halves until the
    later steps train. Neither engine advances the learning-rate schedule on an overflowed step.

    Fused AdamW takes the scaler's step even on overflow (its kernel skips the update), so accelerate
    alone would tell the Trainer the step was not skipped and the Trainer would advance the schedule
    while the loop holds it back: the learning rates, and then the weights, would part.
    """
    monkeypatch.setattr(run_module, "make_grad_scaler", scaler_from(2.0**24))
    steps = 8
    extra = [*no_eval(), "train.precision=fp16", "train.log_every=1", f"train.fused_adamw={fused}"]
    (loop, w_loop), (trainer, w_trainer) = (run(tmp_path, e, steps, extra=extra) for e in ("loop", "trainer"))
    overflows = loop["overflow_steps"]
    assert 0 < overflows <= steps - 2, overflows  # clean steps follow, so a lagging schedule shows
    assert trainer["overflow_steps"] == overflows
    for engine in ("loop", "trainer"):
        # One schedule step per optimizer step that was not skipped.
        schedule = load_training_state(tmp_path / engine / "last").scheduler
        assert schedule["last_epoch"] == steps - overflows, engine
    lrs = {e: read_scalars(tmp_path / e / "tensorboard", prefix="")["lr"] for e in ("loop", "trainer")}
    assert lrs["loop"][0].tolist() == lrs["trainer"][0].tolist() == list(range(1, steps + 1))
    np.testing.assert_allclose(lrs["trainer"][1], lrs["loop"][1], rtol=1e-6)
    assert loop["losses"] == pytest.approx(trainer["losses"], rel=1e-5)
    for name, tensor in w_loop.items():
        torch.testing.assert_close(tensor, w_trainer[name], rtol=1e-4, atol=1e-6, msg=name)
