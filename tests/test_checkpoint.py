"""Checkpoints: safetensors + JSON, atomic replacement, nothing unpickled."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from mtl.batching.stream import MultiTaskStream
from mtl.config import EncoderConfig, load_config
from mtl.errors import KlueInputError
from mtl.modeling.encoder import build_encoder
from mtl.modeling.model import MultiTaskModel
from mtl.modeling.tokenizer import build_offline_tokenizer
from mtl.training.checkpoint import (
    TrainingState,
    load_checkpoint,
    load_training_state,
    restore_rng,
    save_checkpoint,
)
from mtl.training.session import Session, build_session

DEMO = Path(__file__).parent.parent / "configs" / "demo.yaml"
ARCH = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64}


def tiny_model(vocab: int) -> MultiTaskModel:
    torch.manual_seed(0)
    encoder = build_encoder(EncoderConfig(random_init=True, architecture=ARCH), vocab)
    return MultiTaskModel(
        encoder,
        {
            "ynat": {"kind": "classification", "args": {"num_labels": 7}},
            "sts": {"kind": "regression", "args": {}},
        },
    )


def save(tmp_path: Path, model: MultiTaskModel, tokenizer, state: TrainingState | None = None) -> Path:
    return save_checkpoint(
        tmp_path / "ckpt", model, tokenizer, {"ynat": {"labels": list("abcdefg")}}, {"seed": 1}, state
    )


def test_round_trip_restores_weights_heads_tokenizer(tmp_path: Path) -> None:
    tokenizer = build_offline_tokenizer()
    tokenizer.add_tokens(["[SUBJ:PER]"], special_tokens=True)
    model = tiny_model(len(tokenizer))
    path = save(tmp_path, model, tokenizer)
    names = {p.name for p in path.iterdir()}
    assert {"config.json", "model.safetensors", "tasks.json", "run.json"} <= names
    assert not [n for n in names if n.endswith((".bin", ".pt", ".pkl", ".pth"))]
    loaded, tok, resources, run = load_checkpoint(path)
    assert loaded.tasks == ["ynat", "sts"] and resources["ynat"]["labels"] == list("abcdefg")
    assert "torch" in run["versions"] and run["config"] == {"seed": 1}
    assert tok.convert_tokens_to_ids("[SUBJ:PER]") == tokenizer.convert_tokens_to_ids("[SUBJ:PER]")
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    config = json.loads((path / "config.json").read_text())
    assert config["klue_mtl"]["heads"]["ynat"] == {"kind": "classification", "args": {"num_labels": 7}}
    assert all(k.startswith(("encoder.", "heads.ynat.", "heads.sts.")) for k in loaded.state_dict())


def real_training(tmp_path: Path, steps: int) -> tuple[Session, Any, Any, MultiTaskStream]:
    """A demo session after ``steps`` real optimizer steps: (session, optimizer, scheduler, stream)."""
    overrides = [f"encoder.architecture.{k}={v}" for k, v in ARCH.items()]
    overrides += ["train.max_steps=10", "train.warmup_ratio=0.3", f"cache_dir={tmp_path / 'cache'}"]
    session = build_session(load_config(DEMO, overrides), tmp_path / "run", progress=False)
    stream = session.make_stream()
    optimizer, scheduler = session.make_optimizer()
    for _ in range(steps):
        batch = next(stream)
        task = batch.pop("task")
        session.model(task, **batch).loss.backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
    return session, optimizer, scheduler, stream


def draws(stream: MultiTaskStream, n: int) -> list[dict[str, Any]]:
    return [next(stream) for _ in range(n)]


def signature(batches: list[dict[str, Any]]) -> list[tuple[str, tuple[int, ...]]]:
    return [(b["task"], tuple(b["input_ids"].shape)) for b in batches]


def assert_same_batches(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> None:
    for x, y in zip(a, b, strict=True):
        assert x.keys() == y.keys() and x["task"] == y["task"]
        for key, value in x.items():
            if isinstance(value, torch.Tensor):
                assert torch.equal(value, y[key]), key


def test_training_state_round_trip_restores_real_optimizer_scheduler_sampler_and_rng(tmp_path: Path) -> None:
    session, optimizer, scheduler, stream = real_training(tmp_path, steps=3)
    extra = {"best_score": 12.5, "best_step": 2, "skipped_steps": 1}
    # An fp16 loss scaler that has backed off once and counted clean steps since.
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**16, growth_interval=5)
    scaler.load_state_dict({**scaler.state_dict(), "scale": 2.0**15, "_growth_tracker": 3})
    state = session.training_state(3, optimizer, scheduler, stream, extra, scaler)  # captures the RNG now
    expected_rng = (random.random(), float(np.random.rand()), torch.rand(4))
    session.save("last", state)
    loaded = load_training_state(tmp_path / "run" / "last")
    assert loaded.step == 3 and loaded.extra == extra

    # The loss scaler continues from the same scale and growth counter.
    fresh_scaler = torch.amp.GradScaler("cpu")
    fresh_scaler.load_state_dict(loaded.scaler)
    assert fresh_scaler.state_dict() == {
        "scale": 2.0**15,
        "growth_factor": 2.0,
        "backoff_factor": 0.5,
        "growth_interval": 5,
        "_growth_tracker": 3,
    }

    # AdamW: a fresh optimizer over the same parameters gets every moment and step count back.
    fresh_optimizer, fresh_scheduler = session.make_optimizer()
    fresh_optimizer.load_state_dict(loaded.optimizer)
    saved, restored = optimizer.state_dict(), fresh_optimizer.state_dict()
    assert restored["param_groups"] == saved["param_groups"]
    assert saved["state"] and restored["state"].keys() == saved["state"].keys()
    for index, moments in saved["state"].items():
        assert moments.keys() == restored["state"][index].keys()
        for name, tensor in moments.items():
            assert torch.equal(tensor, restored["state"][index][name]), (index, name)
    assert any(m["exp_avg"].abs().sum() > 0 for m in saved["state"].values())
    assert all(float(m["step"]) >= 1 for m in saved["state"].values())

    # Schedule: same position in the warm-up, and the same learning rate at the next step.
    fresh_scheduler.load_state_dict(loaded.scheduler)
    assert fresh_scheduler.last_epoch == scheduler.last_epoch == 3
    scheduler.step()
    fresh_scheduler.step()
    assert fresh_scheduler.get_last_lr() == scheduler.get_last_lr()

    # Sampler and per-task batch orders: the restored stream draws exactly the batches that follow.
    fresh_stream, unrestored = session.make_stream(), session.make_stream()
    fresh_stream.load_state_dict(loaded.sampler)
    following = draws(stream, 12)
    assert_same_batches(following, draws(fresh_stream, 12))
    # (A stream that did not load the state draws other batches: the comparison above can fail.)
    assert signature(draws(unrestored, 12)) != signature(following)

    # Python, NumPy and torch generators continue where they were when the state was captured.
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    restore_rng(loaded.rng[0])
    assert random.random() == expected_rng[0] and float(np.random.rand()) == expected_rng[1]
    assert torch.equal(torch.rand(4), expected_rng[2])


def test_overwrite_is_atomic_and_leaves_no_temporaries(tmp_path: Path) -> None:
    tokenizer = build_offline_tokenizer()
    model = tiny_model(len(tokenizer))
    save(tmp_path, model, tokenizer)
    with torch.no_grad():
        next(model.parameters()).add_(1.0)
    save(tmp_path, model, tokenizer)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".ckpt.v2", "ckpt"]
    loaded, *_ = load_checkpoint(tmp_path / "ckpt")
    assert torch.equal(next(loaded.parameters()), next(model.parameters()))


def test_pickle_files_are_never_loaded(tmp_path: Path) -> None:
    tokenizer = build_offline_tokenizer()
    model = tiny_model(len(tokenizer))
    path = save(tmp_path, model, tokenizer)
    marker = tmp_path / "pwned"
    # A pickle that would create `marker` if anything unpickled it.
    import pickle

    class Boom:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    for name in ("pytorch_model.bin", "training_args.bin", "optimizer.pt", "rng_state.pth"):
        (path / name).write_bytes(pickle.dumps(Boom()))
    load_checkpoint(path)
    load_training_state(path) if (path / "training_state").exists() else None
    assert not marker.exists()


def test_missing_or_foreign_checkpoint_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(KlueInputError, match="not found"):
        load_checkpoint(tmp_path / "nope")
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "config.json").write_text("{}")
    with pytest.raises(KlueInputError, match="missing"):
        load_checkpoint(tmp_path / "x")


def test_a_saved_config_with_the_retired_num_workers_key_still_loads() -> None:
    from mtl.config import RunConfig, config_from_dict

    data = RunConfig(tasks={"ynat": load_config(DEMO).tasks["ynat"]}).to_dict()
    data["train"]["num_workers"] = 0  # what checkpoints of earlier versions saved
    assert config_from_dict(data).train == RunConfig().train
    with pytest.raises(KlueInputError, match="train.num_workers"):
        load_config(DEMO, ["train.num_workers=2"])  # a user's config naming it is told it is unknown
