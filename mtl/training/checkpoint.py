"""Checkpoint folders: written atomically, read without unpickling anything.

Layout::

    config.json          encoder config + head specs        (MultiTaskModel.save_pretrained)
    model.safetensors    "encoder.*", "heads.<task>.*"
    tokenizer files      tokenizer.save_pretrained
    tasks.json           per task: label names and other vocabularies (WoS slots and values)
    run.json             resolved run config, seed, library versions
    training_state/      optimizer tensors (safetensors) + JSON for the rest, for --resume

A checkpoint is assembled in a temporary sibling folder, renamed to a versioned hidden folder, and
the checkpoint's name is a symlink switched to it atomically, so a crash never leaves a half-written
checkpoint behind the name.
"""

from __future__ import annotations

import json
import os
import platform
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from mtl.config import RUN_FILE
from mtl.errors import KlueInputError
from mtl.modeling.model import CONFIG_NAME, WEIGHTS_NAME, MultiTaskModel

TASKS_NAME = "tasks.json"
RUN_NAME = RUN_FILE
STATE_DIR = "training_state"
TOKENIZER_CONFIG_NAME = "tokenizer_config.json"
# Vocabulary files a saved transformers tokenizer holds (one of them, depending on its kind).
TOKENIZER_VOCAB_NAMES = (
    "tokenizer.json",
    "vocab.txt",
    "vocab.json",
    "sentencepiece.bpe.model",
    "spiece.model",
)


@dataclass
class TrainingState:
    """Everything besides the weights that ``--resume`` needs to continue bit for bit."""

    step: int = 0
    optimizer: dict[str, Any] | None = None
    scheduler: dict[str, Any] | None = None
    sampler: dict[str, Any] | None = None
    rng: list[dict[str, Any]] | None = None  # one capture_rng() per DDP rank, in rank order
    extra: dict[str, Any] = field(default_factory=dict)  # best score so far, skipped steps...
    scaler: dict[str, Any] | None = None  # fp16 loss scale and its growth counter (JSON numbers)


def library_versions() -> dict[str, str]:
    """Versions saved with every checkpoint, for reproducibility."""
    import datasets
    import transformers

    import mtl

    return {
        "klue_mtl": mtl.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "datasets": datasets.__version__,
        "numpy": np.__version__,
    }


# -- RNG state --------------------------------------------------------------------------------
def capture_rng() -> dict[str, Any]:
    """The Python, NumPy and torch generator states (tensors kept as tensors)."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": _to_json(random.getstate()),
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng`, on whatever GPUs this machine has.

    The CUDA states of devices this machine lacks (a run saved on 8 GPUs, resumed on 1) are skipped
    with a note; so are all of them on a machine without CUDA.
    """
    random.setstate(_to_tuple(state["python"]))
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    saved = state.get("cuda") or []
    present = torch.cuda.device_count() if torch.cuda.is_available() else 0
    for device, device_state in enumerate(saved[:present]):
        torch.cuda.set_rng_state(device_state, device)
    if len(saved) > present:
        print(
            f"note: the checkpoint holds the random state of {len(saved)} GPU(s), this machine has "
            f"{present}: the state of GPU {present}..{len(saved) - 1} is not restored"
        )


def _rank_states(rng: list[dict[str, Any]] | dict[str, Any] | None) -> list[dict[str, Any]] | None:
    # Checkpoints written before the states were saved per rank hold one state (a dict): rank 0's.
    return [rng] if isinstance(rng, dict) else rng


def _to_json(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_to_json(v) for v in value]
    return value


def _to_tuple(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_to_tuple(v) for v in value)
    return value


# -- tensors <-> (safetensors, JSON) ------------------------------------------------------------
def _split_tensors(obj: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """Replace every tensor in a nested structure by a reference, collecting the tensors."""
    if isinstance(obj, torch.Tensor):
        tensors[prefix] = obj.detach().cpu().contiguous()
        return {"__tensor__": prefix}
    if isinstance(obj, dict):
        return {str(k): _split_tensors(v, f"{prefix}.{k}", tensors) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_split_tensors(v, f"{prefix}.{i}", tensors) for i, v in enumerate(obj)]
    if callable(obj):
        return None
    return obj


def _join_tensors(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {"__tensor__"}:
            return tensors[obj["__tensor__"]]
        return {k: _join_tensors(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_join_tensors(v, tensors) for v in obj]
    return obj


def _optimizer_from_json(state: dict[str, Any]) -> dict[str, Any]:
    # torch expects integer parameter ids as keys of "state"; JSON made them strings. JSON also made
    # the group settings' tuples (AdamW's betas) lists: back to what the optimizer saved.
    state = dict(state)
    state["state"] = {int(k): v for k, v in state["state"].items()}
    state["param_groups"] = [
        {k: tuple(v) if isinstance(v, list) and k != "params" else v for k, v in group.items()}
        for group in state["param_groups"]
    ]
    return state


# -- saving and loading -------------------------------------------------------------------------
def save_checkpoint(
    directory: str | Path,
    model: MultiTaskModel,
    tokenizer: Any,
    task_resources: dict[str, Any],
    run_config: dict[str, Any],
    training_state: TrainingState | None = None,
) -> Path:
    """Write a complete checkpoint and make ``directory`` name it, atomically.

    The files go to a hidden temporary folder, are flushed to disk, and the folder is renamed to a
    versioned sibling (``.<name>.v<N>``); ``directory`` is then a symlink switched to it with one
    atomic rename. A crash at any moment leaves ``directory`` naming either the previous complete
    checkpoint or the new one, never a half-written folder. Older versions are removed after.
    """
    directory = Path(directory)
    parent = directory.parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = parent / f".{directory.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(str(tmp))
    _write_json(tmp / TASKS_NAME, task_resources)
    _write_json(tmp / RUN_NAME, {"config": run_config, "versions": library_versions()})
    if training_state is not None:
        _save_training_state(tmp / STATE_DIR, training_state)
    _fsync_tree(tmp)

    versions = sorted(_versions(directory), key=lambda p: int(p.name.rsplit(".v", 1)[1]))
    number = int(versions[-1].name.rsplit(".v", 1)[1]) + 1 if versions else 1
    final = parent / f".{directory.name}.v{number}"
    os.replace(tmp, final)
    link = parent / f".{directory.name}.link-{os.getpid()}"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(final.name)
    if directory.exists() and not directory.is_symlink():
        shutil.rmtree(directory)  # a plain folder from an older layout: replaced by the link
    os.replace(link, directory)
    _fsync_dir(parent)
    for old in versions:
        shutil.rmtree(old, ignore_errors=True)
    for stale in parent.glob(f".{directory.name}.tmp-*"):
        # Left by a process killed mid-write (never the folder just renamed).
        shutil.rmtree(stale, ignore_errors=True)
    return directory


def _versions(directory: Path) -> list[Path]:
    return [p for p in directory.parent.glob(f".{directory.name}.v*") if p.name.rsplit(".v", 1)[1].isdigit()]


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _save_training_state(directory: Path, state: TrainingState) -> None:
    directory.mkdir()
    tensors: dict[str, torch.Tensor] = {}
    meta = {
        "step": state.step,
        "optimizer": _split_tensors(state.optimizer, "optimizer", tensors),
        "scheduler": _split_tensors(state.scheduler, "scheduler", tensors),
        "sampler": state.sampler,
        "rng": _split_tensors(state.rng, "rng", tensors),
        "extra": state.extra,
        "scaler": state.scaler,
    }
    save_file(tensors, str(directory / "tensors.safetensors"))
    _write_json(directory / "state.json", meta)


def load_training_state(directory: str | Path) -> TrainingState:
    """Read ``training_state/`` of a checkpoint (safetensors + JSON only)."""
    directory = Path(directory) / STATE_DIR
    meta_path, tensor_path = directory / "state.json", directory / "tensors.safetensors"
    if not meta_path.is_file() or not tensor_path.is_file():
        raise KlueInputError(directory, None, "no training state to resume from (was it saved by `train`?)")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    tensors = load_file(str(tensor_path))
    optimizer = _join_tensors(meta["optimizer"], tensors)
    return TrainingState(
        step=meta["step"],
        optimizer=_optimizer_from_json(optimizer) if optimizer else None,
        scheduler=_join_tensors(meta["scheduler"], tensors),
        sampler=meta["sampler"],
        rng=_rank_states(_join_tensors(meta["rng"], tensors)),
        extra=meta["extra"],
        scaler=meta.get("scaler"),  # absent from checkpoints written before fp16 training existed
    )


def load_checkpoint(directory: str | Path) -> tuple[MultiTaskModel, Any, dict[str, Any], dict[str, Any]]:
    """(model, tokenizer, task resources, run info) of a checkpoint folder."""
    from transformers import AutoTokenizer

    directory = Path(directory)
    if not directory.is_dir():
        raise KlueInputError(directory, None, "checkpoint folder not found")
    for name in (CONFIG_NAME, WEIGHTS_NAME, TASKS_NAME):
        if not (directory / name).is_file():
            raise KlueInputError(directory / name, None, "checkpoint file missing")
    if not (directory / TOKENIZER_CONFIG_NAME).is_file() or not any(
        (directory / name).is_file() for name in TOKENIZER_VOCAB_NAMES
    ):
        # Without these, AutoTokenizer silently builds an empty tokenizer from config.json alone.
        raise KlueInputError(
            directory,
            None,
            f"checkpoint tokenizer files missing (need {TOKENIZER_CONFIG_NAME} and one of "
            f"{', '.join(TOKENIZER_VOCAB_NAMES)})",
        )
    model = MultiTaskModel.from_pretrained(directory)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(directory))
    except (OSError, ValueError) as e:
        raise KlueInputError(directory, None, f"cannot load the tokenizer files: {e}") from None
    embeddings = model.encoder.get_input_embeddings().num_embeddings
    if len(tokenizer) > embeddings:
        raise KlueInputError(
            directory,
            None,
            f"the tokenizer has {len(tokenizer)} tokens but the encoder only {embeddings} embeddings",
        )
    resources = json.loads((directory / TASKS_NAME).read_text(encoding="utf-8"))
    run = (
        json.loads((directory / RUN_NAME).read_text(encoding="utf-8"))
        if (directory / RUN_NAME).is_file()
        else {}
    )
    return model, tokenizer, resources, run


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")


def _fsync_tree(directory: Path) -> None:
    """Flush every file so the rename publishes complete data even after a power cut."""
    for path in directory.rglob("*"):
        if path.is_file():
            with open(path, "rb") as f:
                os.fsync(f.fileno())
