"""Checkpoints: safetensors + JSON, atomic replacement, nothing unpickled."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from mtl.checkpoint import (
    TrainingState,
    capture_rng,
    load_checkpoint,
    load_training_state,
    restore_rng,
    save_checkpoint,
)
from mtl.config import EncoderConfig
from mtl.encoder import build_encoder
from mtl.errors import KlueInputError
from mtl.model import MultiTaskModel
from mtl.tokenizer import build_offline_tokenizer

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


def test_training_state_round_trip(tmp_path: Path) -> None:
    tokenizer = build_offline_tokenizer()
    model = tiny_model(len(tokenizer))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(
        "sts",
        input_ids=torch.tensor([[0, 10, 2]]),
        attention_mask=torch.ones(1, 3, dtype=torch.long),
        labels=torch.tensor([1.0]),
    ).loss.backward()
    opt.step()
    rng = capture_rng()
    save(
        tmp_path,
        model,
        tokenizer,
        TrainingState(step=3, optimizer=opt.state_dict(), sampler={"a": 1}, rng=rng),
    )
    state = load_training_state(tmp_path / "ckpt")
    assert state.step == 3 and state.sampler == {"a": 1}
    fresh = torch.optim.AdamW(model.parameters(), lr=1e-3)
    fresh.load_state_dict(state.optimizer)
    for k, v in opt.state_dict()["state"].items():
        for name, tensor in v.items():
            assert torch.equal(tensor, fresh.state_dict()["state"][k][name])
    expected = torch.rand(3)
    restore_rng(state.rng)
    assert torch.equal(torch.rand(3), expected)


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
