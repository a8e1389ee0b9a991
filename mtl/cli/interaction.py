"""``klue-mtl interaction``: the task-interaction matrix of a checkpoint (:mod:`mtl.evaluation.interaction`)."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from mtl.config import config_from_dict
from mtl.errors import KlueInputError
from mtl.layout import FEATURES_CACHE_DIR, INTERACTION_DIR, RUN_FILE


def cmd_interaction(args: argparse.Namespace) -> int:
    """Measure the interaction of a checkpoint's tasks on their probe batches; write JSON and PNG."""
    from mtl.evaluation.interaction import measure_session, write_interaction
    from mtl.training.checkpoint import require_checkpoint
    from mtl.training.session import build_session

    checkpoint = require_checkpoint(args.checkpoint)
    try:
        run = json.loads((checkpoint / RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise KlueInputError(checkpoint / RUN_FILE, None, f"cannot read the run file ({e})") from None
    if not run.get("config"):
        raise KlueInputError(
            checkpoint, None, "no run config in the checkpoint: the probe needs its training data"
        )
    cfg = config_from_dict(run["config"])
    unknown = [t for t in args.tasks or [] if t not in cfg.tasks]
    if unknown:
        raise KlueInputError(
            checkpoint,
            None,
            f"no task {unknown[0]!r} in the checkpoint's run (it has {', '.join(cfg.tasks)})",
        )
    # Beside the checkpoint, not in it: the next save replaces the checkpoint folder whole.
    out = Path(args.output) if args.output else checkpoint.parent / INTERACTION_DIR / checkpoint.name
    # The probe needs only training data; the run's feature cache is reused when it is there.
    tasks = {n: dataclasses.replace(tc, dev=None) for n, tc in cfg.tasks.items()}
    cache = checkpoint.parent / FEATURES_CACHE_DIR
    cfg = dataclasses.replace(
        cfg, tasks=tasks, cache_dir=str(cache.resolve()) if cache.is_dir() else cfg.cache_dir
    )
    # Every task of the run, even with --tasks: a task's batch order depends on its place in the run.
    session = build_session(cfg, out, init_from=checkpoint, progress=False)
    result = measure_session(session, args.tasks, source=str(checkpoint))
    json_path, png_path, _ = write_interaction(result, out)
    width = max(len(t) for t in result.tasks)
    print(" " * width + " " + " ".join(f"{t:>{max(len(t), 5)}}" for t in result.tasks))
    for task, row in zip(result.tasks, result.cosine, strict=True):
        cells = " ".join(f"{v:>{max(len(t), 5)}.2f}" for t, v in zip(result.tasks, row, strict=True))
        print(f"{task:<{width}} {cells}   |g| {result.grad_norm[task]:.3g}")
    print(f"interaction: {json_path}\nheat map:    {png_path}")
    return 0
