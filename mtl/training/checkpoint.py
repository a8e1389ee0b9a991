"""Checkpoint folders: real folders, replaced atomically, read without unpickling anything.

The files of a checkpoint are named in :mod:`mtl.layout`. A checkpoint is assembled in a hidden
sibling ``.<name>.tmp-<pid>`` and renamed into place, so a crash never leaves a half-written
checkpoint behind the name. Checkpoints are plain folders (no symlinks): ``cp -r`` of one is a working
checkpoint, and runs live on file systems without symlinks (see :func:`save_checkpoint` for the one
moment the name is absent and how readers cope).
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

from mtl.errors import KlueInputError
from mtl.layout import (
    LAST,
    RUN_FILE,
    STATE_DIR,
    STATE_FILE,
    STATE_TENSORS_FILE,
    TASKS_FILE,
    TOKENIZER_CONFIG_FILE,
    TOKENIZER_VOCAB_FILES,
    moved_aside_dir,
    temporary_dir,
)
from mtl.modeling.model import CONFIG_NAME, WEIGHTS_NAME, MultiTaskModel


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
    *,
    same_weights_as: str | Path | None = None,
) -> Path:
    """Write a complete checkpoint as the real folder ``directory``, replacing any previous one.

    The files go to ``.<name>.tmp-<pid>`` and are flushed to disk; then the previous checkpoint is
    renamed to ``.<name>.old``, the new folder renamed to ``directory``, and the old one removed.
    A crash leaves ``directory`` either complete (old or new) or, between the two renames, absent
    with the previous checkpoint complete in ``.<name>.old``: :func:`current_checkpoint` (used by
    every reader, ``--resume`` included) then reads that one, and the next save puts it back first.
    (Without symlinks, two renames are the price of atomicity on every file system.)

    ``same_weights_as``: a checkpoint of this very model state (the same step), whose files
    (``training_state/`` and ``run.json`` aside) are hard-linked instead of written again, or copied where the file
    system has no hard links. Every folder stays a complete checkpoint, while tasks whose best falls
    on the same step share one copy of the weights on disk.
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    _finish_interrupted_save(directory)
    tmp = temporary_dir(directory, os.getpid())
    if tmp.exists():
        shutil.rmtree(tmp)
    if same_weights_as is not None:
        shutil.copytree(
            same_weights_as,
            tmp,
            ignore=shutil.ignore_patterns(STATE_DIR, RUN_FILE),
            copy_function=_link_or_copy,
        )
    else:
        tmp.mkdir()
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(str(tmp))
        _write_json(tmp / TASKS_FILE, task_resources)
    _write_json(tmp / RUN_FILE, {"config": run_config, "versions": library_versions()})
    if training_state is not None:
        _save_training_state(tmp / STATE_DIR, training_state)
    _fsync_tree(tmp)

    aside = moved_aside_dir(directory)
    if directory.is_symlink():  # a run of an older version: its name was a link to a hidden folder
        old_target = directory.resolve()
        directory.unlink()
        shutil.rmtree(old_target, ignore_errors=True)
    elif directory.exists():
        os.replace(directory, aside)
    os.replace(tmp, directory)
    _fsync_dir(directory.parent)
    shutil.rmtree(aside, ignore_errors=True)
    for stale in directory.parent.glob(temporary_dir(directory, "*").name):
        # Left by a process killed mid-write (never the folder just renamed).
        shutil.rmtree(stale, ignore_errors=True)
    return directory


def current_checkpoint(directory: str | Path) -> Path:
    """``directory``, or its moved-aside previous version while a save is between its two renames."""
    directory = Path(directory)
    aside = moved_aside_dir(directory)
    return aside if not directory.exists() and aside.is_dir() else directory


def _finish_interrupted_save(directory: Path) -> None:
    """Undo what a save killed between its renames left: the previous checkpoint goes back in place."""
    aside = moved_aside_dir(directory)
    if not aside.exists():
        return
    if directory.exists():
        shutil.rmtree(aside)  # the new checkpoint was published; only the removal was missed
    else:
        os.replace(aside, directory)


def _link_or_copy(source: str, target: str) -> None:
    """A hard link where the file system has them (files are never modified in place), else a copy."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


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
    save_file(tensors, str(directory / STATE_TENSORS_FILE))
    _write_json(directory / STATE_FILE, meta)


def load_training_state(directory: str | Path) -> TrainingState:
    """Read ``training_state/`` of a checkpoint (safetensors + JSON only)."""
    directory = current_checkpoint(directory) / STATE_DIR
    meta_path, tensor_path = directory / STATE_FILE, directory / STATE_TENSORS_FILE
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


def require_checkpoint(directory: str | Path) -> Path:
    """``directory`` as a checkpoint folder; a run folder (which holds ``last``) is an input error that
    names the checkpoint to pass instead."""
    directory = Path(directory)
    if (directory / LAST).is_dir() and not (directory / CONFIG_NAME).is_file():
        raise KlueInputError(
            directory,
            None,
            f"is a run folder, not a checkpoint: use one of its checkpoints, e.g. --checkpoint {directory / LAST}",
        )
    return directory


def load_checkpoint(directory: str | Path) -> tuple[MultiTaskModel, Any, dict[str, Any], dict[str, Any]]:
    """(model, tokenizer, task resources, run info) of a checkpoint folder."""
    from transformers import AutoTokenizer

    directory = current_checkpoint(directory)
    if not directory.is_dir():
        raise KlueInputError(directory, None, "checkpoint folder not found")
    for name in (CONFIG_NAME, WEIGHTS_NAME, TASKS_FILE):
        if not (directory / name).is_file():
            raise KlueInputError(directory / name, None, "checkpoint file missing")
    if not (directory / TOKENIZER_CONFIG_FILE).is_file() or not any(
        (directory / name).is_file() for name in TOKENIZER_VOCAB_FILES
    ):
        # Without these, AutoTokenizer silently builds an empty tokenizer from config.json alone.
        raise KlueInputError(
            directory,
            None,
            f"checkpoint tokenizer files missing (need {TOKENIZER_CONFIG_FILE} and one of "
            f"{', '.join(TOKENIZER_VOCAB_FILES)})",
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
    resources = json.loads((directory / TASKS_FILE).read_text(encoding="utf-8"))
    run = (
        json.loads((directory / RUN_FILE).read_text(encoding="utf-8"))
        if (directory / RUN_FILE).is_file()
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
