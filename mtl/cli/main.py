"""The ``klue-mtl`` command line (also ``python -m mtl``).

Each sub-command imports what it needs when it runs, so ``klue-mtl score`` never imports torch.
Bad input of any kind surfaces as :class:`~mtl.errors.KlueInputError` and ends here with one
paragraph on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from mtl.errors import KlueInputError
from mtl.layout import TASKS_FILE

EXIT_INPUT_ERROR = 2


def _cmd_score(args: argparse.Namespace) -> int:
    from mtl.evaluation.score_file import score

    settings, resources = None, None
    if not args.config:
        from mtl.tasks import KINDS, TASKS

        if args.task not in TASKS:
            raise KlueInputError(
                None,
                None,
                f"unknown task {args.task!r}: not a KLUE task ({', '.join(TASKS)}): a task declared with kind: "
                f"({' | '.join(KINDS)}) is scored with --config naming the config file that declares it "
                f"or a checkpoint trained on it, e.g. --config runs/demo/last",
            )
    else:
        from mtl.config import load_run_config

        cfg = load_run_config(args.config)
        if args.task not in cfg.tasks:
            raise KlueInputError(args.config, None, f"the config declares no task {args.task!r}")
        settings = cfg.task_settings(args.task)
        if settings.train:  # a declared task without labels reads them from its train file
            from mtl.config import resolve_path

            train = resolve_path(cfg, settings.train, f"tasks.{args.task}.train")
            settings = dataclasses.replace(settings, train=train)
        tasks_file = Path(args.config) / TASKS_FILE
        if tasks_file.is_file():  # a checkpoint: its labels, exactly as trained
            resources = json.loads(tasks_file.read_text(encoding="utf-8")).get(args.task)
    print(json.dumps(score(args.task, args.gold, args.pred, settings, resources), ensure_ascii=False))
    return 0


def _cmd_split(args: argparse.Namespace) -> int:
    from mtl.experiments.split import split_official

    counts = split_official(args.data_dir, args.output)
    for task, c in counts.items():
        print(
            f"{task:>5}: {c['train']:>6} train  {c['heldout']:>5} held-out  "
            f"({c['items']} items in {c['groups']} groups, largest {c['largest_group']}; "
            f"{c['formulaic_texts']} formulaic texts not grouping)"
        )
    return 0


def _lazy(name: str):  # noqa: ANN202
    """A handler that imports mtl.cli.commands (and with it torch) only when the command runs."""

    def run(args: argparse.Namespace) -> int:
        from mtl.cli import commands

        commands.quiet_library_bars()
        return getattr(commands, name)(args)

    return run


def _lazy_module(module: str, name: str):  # noqa: ANN202
    """Like :func:`_lazy` for a handler living in another module."""

    def run(args: argparse.Namespace) -> int:
        import importlib

        from mtl.cli import commands

        commands.quiet_library_bars()
        return getattr(importlib.import_module(module), name)(args)

    return run


class _DefaultsFormatter(argparse.HelpFormatter):
    """Shows ``(default: X)`` after every option with a value default its help does not already state."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if "default" in text or default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


README_CONFIG_KEYS = "README.md, section 'Configuration' (every config key, its default and meaning)"


def task_choices_help(what: str = "the task") -> str:
    """``--task`` help: the registered tasks, and where tasks of your own come from."""
    from mtl.tasks import task_names

    return (
        f"{what}: one of {', '.join(task_names())}, or a task your config declares with kind: "
        "(those cannot be listed here)"
    )


def add_overwrite(p: argparse.ArgumentParser) -> None:
    """``--overwrite`` of the commands that write a run folder (train, finetune)."""
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="start over in an output folder that holds a run: removes its checkpoints and logs "
        "(default: such a folder is an error)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    parser = argparse.ArgumentParser(
        prog="klue-mtl",
        description="Train one KLUE-RoBERTa encoder on all eight KLUE tasks and score it with the official metrics.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    fmt = _DefaultsFormatter

    def add_overrides(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "overrides",
            nargs="*",
            metavar="key=value",
            help="config overrides, anywhere on the line, e.g. train.max_steps=100 (default: none)",
        )

    engine_help = "custom loop or the Trainer subclass (default: train.engine of the config, loop)"
    p = sub.add_parser(
        "train",
        help="train the tasks of a config jointly; ends with the scoreboard",
        formatter_class=fmt,
        epilog=f"Config keys: {README_CONFIG_KEYS}.",
    )
    p.add_argument("--config", help="YAML config (see configs/); with --resume, default: the run's own")
    p.add_argument("--engine", choices=("loop", "trainer"), help=engine_help)
    p.add_argument("--output", help="output folder (default: output_dir of the config)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in <output> from <output>/last, with its own config (default: a new run)",
    )
    add_overwrite(p)
    add_overrides(p)
    p.set_defaults(func=_lazy("cmd_train"))

    p = sub.add_parser(
        "budget",
        help="per-task sampling probability, batches, examples, epochs, training and evaluation "
        "tokens and FLOPs of a config's run, without data",
        formatter_class=fmt,
    )
    p.add_argument("--config", required=True, help="YAML config (see configs/)")
    p.add_argument(
        "--nproc",
        type=int,
        default=1,
        help="processes the run will use (torchrun --nproc_per_node): adds each process's batch size; "
        "the shares do not change, batch_size being global",
    )
    p.add_argument("--json", action="store_true", help="print the budget as JSON (for scripts)")
    add_overrides(p)
    p.set_defaults(func=_lazy("cmd_budget"))

    p = sub.add_parser(
        "finetune",
        help="keep the encoder and one head of a joint checkpoint and train that task alone",
        formatter_class=fmt,
    )
    p.add_argument("--from", dest="from_", required=True, metavar="CKPT", help="joint checkpoint folder")
    p.add_argument("--task", required=True, help=task_choices_help("the task to fine-tune"))
    p.add_argument("--config", help="YAML config (default: the checkpoint's own run config)")
    p.add_argument("--engine", choices=("loop", "trainer"), help=engine_help)
    p.add_argument("--output", help="output folder (default: <output_dir of the config>-finetune-<task>)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted fine-tuning from <output>/last (default: a new run)",
    )
    add_overwrite(p)
    add_overrides(p)
    p.set_defaults(func=_lazy("cmd_finetune"))

    p = sub.add_parser(
        "evaluate", help="per-task scoreboard of a checkpoint on dev data", formatter_class=fmt
    )
    p.add_argument("--checkpoint", required=True, help="checkpoint folder, e.g. runs/demo/last")
    p.add_argument(
        "--tasks",
        "--task",
        nargs="+",
        help=task_choices_help("tasks to evaluate (default: all heads of the checkpoint)"),
    )
    p.add_argument("--data-dir", help="folder holding the dev files (default: the checkpoint's run config)")
    p.add_argument(
        "--output",
        help="where scoreboard.json/.md, reports and confusion matrices go "
        "(default: <run folder>/eval/<checkpoint name>)",
    )
    p.add_argument("--cache-dir", help="featurization cache folder (default: none)")
    p.set_defaults(func=_lazy("cmd_evaluate"))

    p = sub.add_parser(
        "predict",
        help="write a predictions file (JSON Lines) for an input file of one task",
        formatter_class=fmt,
    )
    p.add_argument("--checkpoint", required=True, help="checkpoint folder, e.g. runs/demo/last")
    p.add_argument("--task", required=True, help=task_choices_help())
    p.add_argument("--input", required=True, help="input file (official release format or hub export)")
    p.add_argument("--output", required=True, help="predictions file to write (.jsonl)")
    p.set_defaults(func=_lazy("cmd_predict"))

    p = sub.add_parser(
        "export",
        help="one task of a joint checkpoint as a plain transformers model folder (Auto* class)",
        formatter_class=fmt,
    )
    p.add_argument("--checkpoint", required=True, help="checkpoint folder, e.g. runs/demo/last")
    p.add_argument("--task", required=True, help=task_choices_help("the task to export"))
    p.add_argument("--output", required=True, help="folder to write (created; must be empty if it exists)")
    p.add_argument(
        "--encoder-only", action="store_true", help="export the bare encoder (AutoModel) whatever the task"
    )
    p.set_defaults(func=_lazy("cmd_export"))

    p = sub.add_parser(
        "interaction",
        help="task x task cosine similarity of the tasks' encoder gradients on fixed probe batches",
        formatter_class=fmt,
    )
    p.add_argument("--checkpoint", required=True, help="checkpoint folder, e.g. runs/demo/last")
    p.add_argument("--tasks", nargs="+", help="tasks to probe (default: every task of the checkpoint's run)")
    p.add_argument(
        "--output",
        help="folder for interaction.json and interaction.png (default: <run>/interaction/<checkpoint>)",
    )
    p.set_defaults(func=_lazy_module("mtl.cli.interaction", "cmd_interaction"))

    p = sub.add_parser(
        "serve",
        help="serve every task of a checkpoint over HTTP, with a demo page at / (README, Serving)",
        formatter_class=fmt,
    )
    p.add_argument("--checkpoint", required=True, help="checkpoint folder, e.g. runs/demo/best")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0 exposes it to the network)")
    p.add_argument("--port", type=int, default=8000, help="TCP port")
    p.add_argument("--device", default="cpu", help="where the model runs (cpu, cuda, cuda:1...)")
    p.add_argument("--max-batch", type=int, default=32, help="inputs per micro-batch (one model call)")
    p.add_argument("--max-wait-ms", type=float, default=5.0, help="how long a request waits for others")
    p.add_argument("--max-queue", type=int, default=512, help="inputs waiting at once; beyond: 503")
    p.add_argument("--max-inputs", type=int, default=64, help="inputs per request; beyond: 413")
    p.add_argument("--max-body-bytes", type=int, default=1_000_000, help="request body size; beyond: 413")
    p.set_defaults(func=_lazy_module("mtl.serving.server", "cmd_serve"))

    p = sub.add_parser(
        "compare-engines",
        help="train one config with the custom loop and the Trainer; compare",
        formatter_class=fmt,
    )
    p.add_argument("--config", required=True, help="YAML config (see configs/)")
    p.add_argument("--output", help="output folder (default: <output_dir>-compare)")
    p.add_argument("--quiet", action="store_true", help="no progress bars (default: progress bars)")
    add_overrides(p)
    p.set_defaults(func=_lazy("cmd_compare_engines"))

    p = sub.add_parser(
        "bench",
        help="measure batching, throughput, overhead, featurization, evaluation, memory",
        formatter_class=fmt,
    )
    p.add_argument(
        "--model-size",
        choices=("tiny", "base"),
        default="tiny",
        help="encoder size (base = roberta-base shape)",
    )
    p.add_argument("--data-dir", help="KLUE data folder (default: $KLUE_DATA_DIR, else the bundled samples)")
    p.add_argument("--output", default="runs/bench", help="folder for bench.json and bench.md")
    p.add_argument(
        "--quick",
        action="store_true",
        help="tiny inputs, a few steps, what the tests run (default: the full bench)",
    )
    p.set_defaults(func=_lazy_module("mtl.bench", "cmd_bench"))

    p = sub.add_parser(
        "split",
        help="deterministic 80/20 train/held-out split of the real KLUE dev files",
        formatter_class=fmt,
    )
    p.add_argument(
        "--data-dir", required=True, help="KLUE data folder (with official/ or the official files)"
    )
    p.add_argument("--output", required=True, help="folder for <task>_train.* and <task>_heldout.*")
    p.set_defaults(func=_cmd_split)

    p = sub.add_parser(
        "experiment",
        help="from-scratch joint training on the split real dev data vs trivial baselines",
        formatter_class=fmt,
    )
    p.add_argument("--config", default="configs/scratch_real.yaml", help="YAML config of the runs")
    p.add_argument("--data-dir", required=True, help="KLUE data folder (e.g. $KLUE_DATA_DIR)")
    p.add_argument("--output", default="runs/experiment", help="output folder")
    p.add_argument("--compare-steps", type=int, default=400, help="steps of each comparison run")
    p.add_argument(
        "--compare-dev-examples",
        type=int,
        default=200,
        help="held-out records scored per task in comparisons",
    )
    p.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        help="seeds of the joint run: the first is the headline run, the others repeat it for the spread",
    )
    p.add_argument(
        "--no-comparisons", action="store_true", help="stop after the joint runs (no 400-step comparisons)"
    )
    p.add_argument(
        "--mlm",
        action="store_true",
        help="also run masked LM -> joint and joint + masked LM auxiliary, with bootstrap intervals (off by default)",
    )
    p.add_argument(
        "--strategies",
        action="store_true",
        help="also run every task in every step with uncertainty weights and with UPGrad (same batches in total), "
        "with bootstrap intervals, and the default run's task interaction at start, middle and end (off by default)",
    )
    p.add_argument(
        "--mlm-only",
        action="store_true",
        help="add the --mlm stage to the finished experiment in --output (its split, config and joint run)",
    )
    add_overrides(p)
    p.set_defaults(func=_lazy_module("mtl.experiments.experiment", "cmd_experiment"))

    p = sub.add_parser(
        "score",
        help="official KLUE metrics of a predictions file against a gold file (JSON)",
        formatter_class=fmt,
    )
    p.add_argument("--task", required=True, help=task_choices_help())
    p.add_argument("--gold", required=True, help="gold file (official release format or hub-schema export)")
    p.add_argument("--pred", required=True, help="predictions, JSON Lines (see README)")
    p.add_argument(
        "--config",
        help="config file or checkpoint folder declaring the task (needed for tasks declared with kind:)",
    )
    p.set_defaults(func=_cmd_score)

    return parser


_OVERRIDE = re.compile(r"[A-Za-z_][\w-]*(\.[\w-]+)*=")


def split_overrides(parser: argparse.ArgumentParser, argv: list[str]) -> tuple[list[str], list[str]]:
    """Pull ``key=value`` overrides out of ``argv`` wherever they stand (also after an option).

    argparse takes a ``nargs="*"`` positional only once, so ``--output O a=1 --resume b=2`` would be
    "unrecognized arguments". A token is an override when it looks like ``key=value`` and is not the
    value of the option before it.
    """
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))  # noqa: SLF001
    if not argv or argv[0] not in sub.choices:
        return argv, []
    command = sub.choices[argv[0]]
    if not any(a.dest == "overrides" for a in command._actions):  # noqa: SLF001
        return argv, []
    takes_value = {s for a in command._actions if a.nargs != 0 for s in a.option_strings}  # noqa: SLF001
    rest, overrides = [argv[0]], []
    for i, token in enumerate(argv[1:], start=1):
        if _OVERRIDE.match(token) and argv[i - 1] not in takes_value:
            overrides.append(token)
        else:
            rest.append(token)
    return rest, overrides


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    parser = build_parser()
    rest, overrides = split_overrides(parser, list(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(rest)
    if hasattr(args, "overrides"):
        args.overrides = [*(args.overrides or []), *overrides]
    try:
        return int(args.func(args) or 0)
    except KlueInputError as err:
        print(f"klue-mtl {args.command}: error: {err}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except OSError as err:
        # Unreadable or unwritable paths given by the user (permissions, full disk...).
        print(f"klue-mtl {args.command}: error: {err}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except KeyboardInterrupt:
        print(f"klue-mtl {args.command}: interrupted", file=sys.stderr)
        return 130
