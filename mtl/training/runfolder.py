"""A run's output folder: one run per folder, never clobbered, resumed only with its own recipe.

``train`` into a folder that already holds a run stops unless ``--resume`` (continue it) or
``--overwrite`` (clear it first) is given. ``--resume`` continues with the run's saved config
(``last/run.json``); an override may change what is logged, evaluated and saved, and may raise
``train.max_steps``, but nothing that would change the sampled sequence or the model.
"""

from __future__ import annotations

import fnmatch
import json
import shutil
from pathlib import Path
from typing import Any

from mtl.config import RunConfig, config_from_dict
from mtl.errors import KlueInputError
from mtl.layout import (
    BEST,
    LAST,
    RUN_FILE,
    RUN_OUTPUTS,
    STATE_DIR,
    STATE_FILE,
    hidden_siblings,
    task_best_dir,
)
from mtl.training.checkpoint import current_checkpoint

_MISSING = object()
#: config keys a resume may change: they decide what is logged, evaluated or saved, not what is
#: trained (``train.max_steps`` is checked on its own: it may only grow)
RESUMABLE_KEYS = (
    "output_dir",
    "cache_dir",
    "train.eval_every",
    "train.save_every",
    "train.log_every",
    "train.select_metric",
    "train.nan_policy",
    "train.compile",
    "train.report_to",
    "train.progress",
    "train.interaction_every",
    "train.ddp_timeout",
    "tasks.*.dev",
    "tasks.*.eval_batch_size",
    "tasks.*.max_dev_examples",
)


def holds_run(output: Path) -> bool:
    """Whether ``output`` already holds a run's checkpoint."""
    return any(current_checkpoint(output / name).exists() for name in (LAST, BEST))


def clear_run(output: Path) -> list[str]:
    """Remove a previous run's checkpoints and logs from ``output``; returns what was removed.

    The featurization cache stays: it is keyed by content, never stale.
    """
    removed = []
    checkpoints = (LAST, BEST, task_best_dir("*"))
    for pattern in (*checkpoints, *map(hidden_siblings, checkpoints), *RUN_OUTPUTS):
        for path in sorted(output.glob(pattern)):
            if path.is_symlink() or path.is_file():
                path.unlink()
            else:
                shutil.rmtree(path)
            if not path.name.startswith("."):
                removed.append(path.name)
    return removed


def check_fresh_output(output: Path, *, overwrite: bool) -> None:
    """Stop (exit 2) when ``output`` holds a run, unless ``overwrite``: then clear it and say so."""
    if not holds_run(output):
        return
    if not overwrite:
        raise KlueInputError(
            output,
            None,
            "already holds a run (a checkpoint in last/ or best/). Continue it with --resume, or start "
            "over with --overwrite (removes its checkpoints, scoreboard and TensorBoard logs), or pick "
            "another --output",
        )
    removed = clear_run(output)
    print(f"--overwrite: removed the previous run in {output} ({', '.join(removed)})", flush=True)


def saved_step(output: Path) -> int:
    """The optimizer step of ``output/last``'s training state."""
    meta = current_checkpoint(output / LAST) / STATE_DIR / STATE_FILE
    if not meta.is_file():
        raise KlueInputError(output / LAST, None, "nothing to resume: no checkpoint with training state here")
    return int(json.loads(meta.read_text(encoding="utf-8"))["step"])


def saved_config(output: Path) -> dict[str, Any]:
    """The config ``output/last`` was trained with (its ``run.json``)."""
    run_file = current_checkpoint(output / LAST) / RUN_FILE
    if not run_file.is_file():
        raise KlueInputError(output / LAST, None, "nothing to resume: no run.json in the checkpoint")
    return json.loads(run_file.read_text(encoding="utf-8"))["config"]


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict) and data:
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: data}


def _show(value: Any) -> str:
    return "(unset)" if value is _MISSING else repr(value)


def _resumable(key: str) -> bool:
    return any(fnmatch.fnmatchcase(key, pattern) for pattern in RESUMABLE_KEYS)


def changed_keys(saved: dict[str, Any], requested: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(key, saved value, requested value)`` of every setting that differs, dotted keys, sorted."""
    a, b = _flatten(saved), _flatten(requested)
    return [
        (k, a.get(k, _MISSING), b.get(k, _MISSING))
        for k in sorted(set(a) | set(b))
        if a.get(k, _MISSING) != b.get(k, _MISSING)
    ]


def resume_config(output: Path, requested: RunConfig) -> RunConfig:
    """The config to resume ``output``'s run with: its saved one, plus the allowed changes of ``requested``.

    Any other difference is an input error naming each key with both values.
    """
    saved = saved_config(output)
    step = saved_step(output)
    wanted = requested.to_dict()
    # Keys a newer version added (or an older one dropped) are no changes of the recipe.
    base = config_from_dict(saved).to_dict()
    refused = []
    for key, old, new in changed_keys(base, wanted):
        if key == "train.max_steps":
            if new < step:
                refused.append(f"train.max_steps: {new!r} is before the saved step {step}")
        elif not _resumable(key):
            refused.append(f"{key}: {_show(old)} in the run, {_show(new)} now")
    if refused:
        raise KlueInputError(
            output / LAST / RUN_FILE,
            None,
            "--resume continues the run with its own recipe; these settings would change the sampled "
            "sequence or the model: " + "; ".join(refused) + ". Drop them (raising train.max_steps is "
            "allowed), or start a new run with another --output or --overwrite",
        )
    return requested


def finished(output: Path, cfg: RunConfig) -> int | None:
    """The saved step when the run in ``output`` already reached ``cfg.train.max_steps``, else None."""
    step = saved_step(output)
    return step if step >= cfg.train.max_steps else None
