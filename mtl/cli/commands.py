"""What each ``klue-mtl`` sub-command does (the CLI parses, these run)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from mtl.config import RunConfig, config_from_dict, load_config
from mtl.errors import KlueInputError
from mtl.layout import (
    BEST,
    CLASSIFICATION_REPORT,
    EVAL_DIR,
    LAST,
    RUN_FILE,
    SCOREBOARD_JSON,
    SCOREBOARD_MD,
    TASK_BEST_JSON,
    TENSORBOARD_DIR,
    confusion_png,
    task_best_dir,
)
from mtl.tasks.base import Task


def quiet_library_bars() -> None:
    """Our commands show their own progress. transformers' and huggingface_hub's bars ("Loading
    weights", "Writing model shards", downloads) never show; datasets' (featurization) only on a
    terminal: a log file or a pipe gets no carriage returns."""
    import datasets
    from transformers.utils import logging

    from mtl.training.progress import is_terminal

    logging.disable_progress_bar()
    if not is_terminal(sys.stderr):
        datasets.disable_progress_bars()


def find_dev_file(data_dir: Path, task: Task) -> Path:
    """The dev file of ``task`` under ``data_dir``: exactly one must match the task's ``dev_patterns``."""
    patterns = task.dev_patterns
    found = sorted({p for pattern in patterns for p in data_dir.rglob(pattern)})
    if not found:
        raise KlueInputError(
            data_dir, None, f"no {task.name} dev file here (looked for {', '.join(patterns) or 'nothing'})"
        )
    if len(found) > 1:
        raise KlueInputError(
            data_dir, None, f"several {task.name} dev files match: {', '.join(map(str, found))}"
        )
    return found[0]


def _train_config(args: argparse.Namespace) -> RunConfig:
    overrides = list(args.overrides or [])
    if args.engine:
        overrides.append(f"train.engine={args.engine}")
    return load_config(args.config, overrides)


def _print_board(
    results: dict[str, dict[str, float]],
    counts: dict[str, int],
    out_dir: Path,
    task_best: dict[str, dict[str, Any]] | None = None,
) -> None:
    from mtl.evaluation.scoreboard import build_scoreboard, render_markdown, write_scoreboard

    board = build_scoreboard(results, counts, task_best)
    write_scoreboard(board, out_dir)
    print(render_markdown(board))


def run_training(
    cfg: RunConfig,
    output: Path,
    *,
    resume: bool,
    init_from: str | None = None,
    tasks: list[str] | None = None,
) -> dict[str, Any]:
    """Build the session and train it with the configured engine; prints and writes the scoreboard."""
    from mtl.training.session import build_session

    session = build_session(cfg, output, resume=resume, init_from=init_from, only_tasks=tasks)
    if session.is_main:
        _show_budget(cfg, session, output)
    if cfg.train.engine == "trainer":
        from mtl.training.trainer import train_with_trainer

        summary = train_with_trainer(session)
    else:
        from mtl.training.loop import train_loop

        summary = train_loop(session)
    if session.is_main and summary.get("results"):
        counts = {n: len(td.task.gold_units(td.dev.records)) for n, td in session.data.items() if td.dev}
        _print_board(summary["results"], counts, output, summary.get("task_best"))
        if summary.get("best_step") is not None:
            print(
                f"joint best: {output / BEST} (step {summary['best_step']}, {cfg.train.select_metric}); "
                f"each task's own best: {output / task_best_dir('<task>')} (see {TASK_BEST_JSON})"
            )
    return summary


def _budget(
    cfg: RunConfig,
    sizes: dict[str, int],
    dev_sizes: dict[str, int | None],
    source: str,
    world: int,
) -> tuple[dict[str, Any], str]:
    """The per-task budget as plain data and as the Markdown table."""
    from mtl.modeling.encoder import encoder_parameters
    from mtl.training.budget import budget_report, budget_rows, format_table

    rows = budget_rows(cfg, sizes, world, dev_sizes)
    report = budget_report(cfg, rows, source, world, encoder_parameters(cfg.encoder))
    return report, format_table(cfg, report)


def _show_budget(cfg: RunConfig, session: Any, output: Path) -> None:
    """Print the run's per-task budget table and write budget.json / budget.md into ``output``."""
    from mtl.training.budget import write_budget

    dev_sizes = {n: len(td.dev.features) if td.dev else 0 for n, td in session.data.items()}
    report, table = _budget(
        cfg, session.train_sizes(), dev_sizes, "featurized train and dev data", session.world_size
    )
    print(table, flush=True)
    write_budget(output, report, table)


def cmd_budget(args: argparse.Namespace) -> int:
    """The per-task budget of a config from declared train sizes, without reading any data."""
    from mtl.training.budget import declared_dev_sizes, declared_sizes

    if args.nproc < 1:
        raise KlueInputError(None, "--nproc", f"must be >= 1, got {args.nproc}", kind="key")
    cfg = load_config(args.config, args.overrides)
    report, table = _budget(
        cfg, declared_sizes(cfg), declared_dev_sizes(cfg), "declared train and dev sizes", args.nproc
    )
    print(json.dumps(report, indent=2) if args.json else table, end="\n" if args.json else "")
    return 0


def where_things_are(output: Path, checkpoint: Path | None, board_dir: Path | None) -> None:
    """The closing lines of train, finetune and evaluate: checkpoint, scoreboard, logs, TensorBoard."""
    if checkpoint is not None:
        print(f"checkpoint:  {checkpoint}")
    if board_dir is not None and (board_dir / SCOREBOARD_MD).is_file():
        print(f"scoreboard:  {board_dir / SCOREBOARD_MD} (and {SCOREBOARD_JSON})")
    logs = output / TENSORBOARD_DIR
    if logs.is_dir():
        print(f"logs:        {logs}")
        print(f"  tensorboard --logdir {logs}")


def _prepare_output(args: argparse.Namespace, cfg: RunConfig, output: Path) -> RunConfig | None:
    """Check the output folder before any work; the config to run, or None when there is nothing to do.

    Without ``--resume`` a folder holding a run is an error unless ``--overwrite``; with it, the run
    continues with its own saved config (only log/eval/save settings and a larger max_steps may change).
    """
    from mtl.training.runfolder import check_fresh_output, finished, resume_config

    if not args.resume:
        check_fresh_output(output, overwrite=getattr(args, "overwrite", False))
        return cfg
    if getattr(args, "overwrite", False):
        raise KlueInputError(output, None, "--resume and --overwrite contradict each other: pick one")
    cfg = resume_config(output, cfg)
    step = finished(output, cfg)
    if step is not None:
        print(
            f"the run in {output} already finished at step {step} (train.max_steps {cfg.train.max_steps}); "
            "nothing to do. Raise train.max_steps to train further."
        )
        where_things_are(output, output / LAST, output)
        return None
    return cfg


def _resume_base(args: argparse.Namespace) -> RunConfig:
    """With ``--resume`` and no ``--config``: the run's saved config plus the command line's overrides."""
    from mtl.config import apply_overrides
    from mtl.training.runfolder import saved_config

    if not args.output:
        raise KlueInputError(None, None, "--resume without --config needs --output (the run folder)")
    data = saved_config(Path(args.output))
    overrides = list(args.overrides or [])
    if args.engine:
        overrides.append(f"train.engine={args.engine}")
    return config_from_dict(apply_overrides(data, overrides))


def cmd_train(args: argparse.Namespace) -> int:
    if args.config:
        cfg = _train_config(args)
    elif args.resume:
        cfg = _resume_base(args)
    else:
        raise KlueInputError(None, None, "train needs --config (or --resume --output <run folder>)")
    output = Path(args.output or cfg.output_dir)
    cfg = _prepare_output(args, cfg, output)
    if cfg is None:
        return 0
    summary = run_training(cfg, output, resume=args.resume)
    where_things_are(output, output / LAST, output)
    return exit_status(summary, output)


def exit_status(summary: dict[str, Any], output: Path) -> int:
    """0 for a finished run; 128 + the signal's number (130 SIGINT, 143 SIGTERM) for an interrupted
    one, as shells report a process killed by that signal, so a script can tell the two apart."""
    if not summary.get("stopped"):
        return 0
    import signal

    name = signal.Signals(summary["signal"]).name
    status = 128 + summary["signal"]
    print(
        f"stopped at step {summary['steps']} by {name}; checkpoint saved in {output / LAST} "
        f"(continue with --resume); exit status {status}",
        flush=True,
    )
    return status


def cmd_finetune(args: argparse.Namespace) -> int:
    source = Path(args.from_)
    if not source.is_dir():
        raise KlueInputError(
            source, None, "checkpoint not found (--from names a checkpoint folder, e.g. runs/demo/last)"
        )
    if args.config:
        cfg = load_config(args.config, args.overrides)
    else:
        run_file = source / RUN_FILE
        if not run_file.is_file():
            raise KlueInputError(run_file, None, "no run config in the checkpoint: pass --config")
        data = json.loads(run_file.read_text(encoding="utf-8"))["config"]
        # Where the joint run cached its features is no part of the recipe (and a checkpoint is
        # untrusted input: it must not choose where this run writes).
        data["cache_dir"] = None
        from mtl.config import apply_overrides

        cfg = config_from_dict(apply_overrides(data, list(args.overrides or [])))
    if args.task not in cfg.tasks:
        raise KlueInputError(
            args.config or source, None, f"the config has no settings for task {args.task!r}"
        )
    cfg.tasks = {args.task: cfg.tasks[args.task]}
    if args.engine:
        cfg.train.engine = args.engine
    output = Path(args.output or f"{cfg.output_dir}-finetune-{args.task}")
    cfg = _prepare_output(args, cfg, output)
    if cfg is None:
        return 0
    summary = run_training(
        cfg, output, resume=args.resume, init_from=None if args.resume else str(source), tasks=[args.task]
    )
    where_things_are(output, output / LAST, output)
    return exit_status(summary, output)


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Score a checkpoint on dev data. Under ``torchrun`` the ranks share the batches (one GPU each)
    and rank 0 alone writes and prints: the scoreboard is the one a single process gets."""
    from mtl.batching.prepare import featurize_split, read_split
    from mtl.evaluation.inference import evaluate_split
    from mtl.serving.api import KlueMultiTask
    from mtl.tracking.tensorboard import TensorBoard
    from mtl.training.session import check_writable, init_distributed, pick_device

    checkpoint = Path(args.checkpoint)
    rank, _ = init_distributed()
    main = rank == 0
    # The run's own precision (train.precision in the checkpoint's run config), on this rank's device.
    model = KlueMultiTask.from_pretrained(checkpoint, device=pick_device(rank), dtype="auto")
    tasks = [model.task(name) for name in args.tasks or model.tasks]
    # Not into the checkpoint: the next save of the run replaces its folder.
    out = Path(args.output) if args.output else checkpoint.parent / EVAL_DIR / checkpoint.name
    check_writable(out)
    # Every dev file is read and validated before any evaluation starts.
    prepared = []
    for task in tasks:
        if args.data_dir:
            path = str(find_dev_file(Path(args.data_dir), task))
        elif task.settings.dev:  # resolved against the run's data_dir when the task was set up
            path = str(task.settings.dev)
        else:
            raise KlueInputError(checkpoint, None, f"no dev file known for {task.name}: pass --data-dir")
        prepared.append((task, path, read_split(task, path, "dev", None)))
    results, counts, reported = {}, {}, []
    for task, path, records in prepared:
        split = featurize_split(task, records, source=path, cache_dir=args.cache_dir)
        predictions, metrics = evaluate_split(
            model.model,
            task,
            split,
            batch_size=task.settings.eval_batch_size,
            device=model.device,
            autocast_dtype=model.dtype,
            progress=main,
        )
        results[task.name], counts[task.name] = metrics, len(task.gold_units(records))
        reported.append((task, records, predictions))
    if not main:  # every rank holds every result; one writes them
        return 0
    tb = TensorBoard(out / TENSORBOARD_DIR)
    details = [
        _classification_text(task, records, predictions, tb, out) for task, records, predictions in reported
    ]
    tb.close()
    _print_board(results, counts, out)
    text = "\n".join(d for d in details if d)
    if text:
        (out / CLASSIFICATION_REPORT).write_text(text, encoding="utf-8")
        print(f"classification reports: {out / CLASSIFICATION_REPORT}")
        pngs = sorted(out.glob(confusion_png("*")))
        print(f"confusion matrices:     {', '.join(str(p) for p in pngs)}")
    where_things_are(out, None, out)
    return 0


def _classification_text(task: Task, records: list[dict], predictions: list[dict], tb: Any, out: Path) -> str:
    """Classification report of a task with one label per unit; its confusion matrix as a labelled
    heat map, ``confusion_<task>.png`` in ``out`` and in TensorBoard."""
    pairs = task.label_pairs(records, predictions)
    if pairs is None:
        return ""
    from mtl.evaluation.reports import save_confusion_png
    from mtl.evaluation.scoreboard import classification_details

    labels, gold, pred = pairs
    report, matrix = classification_details(labels, gold, pred)
    tb.text(f"{task.name}/classification_report", "    " + report.replace("\n", "\n    "))
    title = f"{task.name}: confusion matrix"
    pixels = save_confusion_png(matrix, labels, title, out / confusion_png(task.name))
    tb.image(f"{task.name}/confusion_matrix", pixels)
    return f"== {task.name}: classification report ==\n{report}"


def cmd_predict(args: argparse.Namespace) -> int:
    import torch

    from mtl.batching.prepare import read_split
    from mtl.data.io import write_jsonl
    from mtl.serving.api import KlueMultiTask

    checkpoint, output = Path(args.checkpoint), Path(args.output)
    if output.is_dir():
        raise KlueInputError(output, None, "is a folder; --output names the predictions file to write")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise KlueInputError(
            output,
            None,
            "predict runs in one process (every rank would write this file): run it without torchrun "
            "or accelerate; `klue-mtl evaluate` shares its work across ranks",
        )
    folder = output.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise KlueInputError(folder, None, f"cannot create the --output folder ({e.strerror})") from None
    if not os.access(folder, os.W_OK):
        raise KlueInputError(folder, None, "the --output folder is not writable")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = KlueMultiTask.from_pretrained(checkpoint, device=device, dtype="auto")  # the run's precision
    task = model.task(args.task)
    records = read_split(task, args.input, "test", None, labeled=False)
    # The Python API's code path: one implementation, two front ends.
    predictions = model.predict_records(args.task, records)
    write_jsonl(output, predictions)
    print(f"wrote {len(predictions)} {args.task} predictions to {args.output}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """One task of a joint checkpoint as a plain transformers model folder."""
    from mtl.serving.api import KlueMultiTask
    from mtl.serving.export import export_task

    model = KlueMultiTask.from_pretrained(args.checkpoint)
    report = export_task(model, args.task, args.output, encoder_only=args.encoder_only)
    print(f"exported {args.task} as {report['class']} to {args.output} (logits checked: {report['checked']})")
    return 0


def cmd_compare_engines(args: argparse.Namespace) -> int:
    """Train the same config with both engines and print losses, speed and scores side by side."""
    import time

    from mtl.training.loop import train_loop
    from mtl.training.session import build_session
    from mtl.training.trainer import train_with_trainer

    cfg = load_config(args.config, args.overrides)
    output = Path(args.output or f"{cfg.output_dir}-compare")
    runs: dict[str, dict[str, Any]] = {}
    for engine, train in (("loop", train_loop), ("trainer", train_with_trainer)):
        session = build_session(cfg, output / engine, progress=False)
        t0 = time.perf_counter()
        summary = train(session, progress=not args.quiet)
        summary["seconds_per_step"] = (time.perf_counter() - t0) / max(summary["steps"], 1)
        runs[engine] = summary
    loop, trainer = runs["loop"]["losses"], runs["trainer"]["losses"]
    every = max(1, len(loop) // 20)
    print(f"{'step':>6} {'loop loss':>12} {'trainer loss':>13} {'rel. diff':>10}")
    worst = 0.0
    for i, (a, b) in enumerate(zip(loop, trainer, strict=True)):
        rel = abs(a - b) / max(abs(a), 1e-12)
        worst = max(worst, rel)
        if (i + 1) % every == 0 or i == 0:
            print(f"{i + 1:>6} {a:>12.6f} {b:>13.6f} {rel:>10.2e}")
    print(f"largest relative loss difference over {len(loop)} steps: {worst:.2e}")
    print(
        f"time per step (incl. evaluation): loop {runs['loop']['seconds_per_step']:.3f} s, "
        f"trainer {runs['trainer']['seconds_per_step']:.3f} s"
    )
    for task in runs["loop"].get("results") or {}:
        a, b = runs["loop"]["results"][task], runs["trainer"]["results"][task]
        print(f"{task:>5}: " + "  ".join(f"{k} {a[k]:.2f} | {b[k]:.2f}" for k in a))
    report = {
        e: {k: v for k, v in r.items() if k != "losses"} | {"losses": r["losses"]} for e, r in runs.items()
    }
    output.mkdir(parents=True, exist_ok=True)
    (output / "compare.json").write_text(json.dumps(report, indent=2, default=float), encoding="utf-8")
    return 0
