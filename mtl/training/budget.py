"""Per-task training budgets: how the sampler splits ``max_steps`` among the tasks, shown before step 1.

Each task gets a sampling probability from the sampler's rule (``sampler.name``; the default
temperature rule is ``p_i ∝ w_i · min(n_i, cap)^(1/T)`` with ``w_i`` = ``tasks.<t>.sample_weight``),
unless some tasks declare a target ``tasks.<t>.epochs``: then those tasks get exactly the share that
meets their target within the run (``epochs · n_i / batch_size`` batches out of ``max_steps x
accumulation`` draws), the other tasks share what is left by the rule, and when every task has a
target the shares are scaled up together so the whole run is used. A run whose targets do not fit in
``max_steps`` is a config error that says how many steps they need, unless ``train.epoch_targets:
scale`` lowers every target by the same factor (a smoke run of a preset keeps its shares).

``batch_size`` is global: the examples of one optimizer step (of one micro-step under accumulation)
across all processes, each process taking ``batch_size / world_size`` rows
(:func:`per_rank_batch_size`). So the budget (probabilities, batches, epochs) is the same at any
number of processes.

The same numbers drive the sampler (:func:`build_sampler`, the one construction used by training,
``klue-mtl budget`` and ``klue-mtl experiment``), the per-task evaluation cadence
(:func:`own_eval_intervals`) and the printed table (:func:`budget_rows`), so what the user reads is
what the run does. ``n_i`` are training units (features: MRC windows, WoS user turns); before any
data is read they come from ``tasks.<t>.train_size`` or the task's ``klue_train_size``
(:func:`declared_sizes`), and the dev units from ``tasks.<t>.dev_size`` or ``klue_dev_size``.

Work is counted in tokens, each unit as its task's ``max_length`` (an upper bound: batches are
padded to their longest row, not to ``max_length``), and in FLOPs: ``6 · N · tokens`` to train and
``2 · N · tokens`` to evaluate, ``N`` the encoder's parameters (:func:`mtl.modeling.encoder.encoder_parameters`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import samplers
from mtl.config import RunConfig
from mtl.errors import KlueInputError
from mtl.layout import BUDGET_JSON, BUDGET_MD
from samplers import SamplerSpec, TaskSampler
from samplers.groups import expected_group_counts


@dataclass(frozen=True)
class TaskBudget:
    """One task's planned share of the run, and the work it costs."""

    task: str
    train_size: int  # training units per epoch
    batch_size: int  # units per batch, all processes together (global)
    per_rank_batch_size: int  # units per batch on each process
    probability: float  # mean probability of drawing the task over the run
    batches: float  # expected batches of the task over the run (all processes step together)
    examples: float  # expected training units seen (batches x batch size)
    epochs: float  # examples / train_size
    target_epochs: float | None  # the target in force: tasks.<t>.epochs, lowered under epoch_targets: scale
    baseline_epochs: float | None  # KLUE-baseline's epochs for the task, if known
    max_length: int  # tokens per unit counted for the work
    train_tokens: float  # examples x max_length
    dev_size: int | None = None  # dev units per evaluation (None: unknown)
    evaluations: int | None = None  # evaluations of the task over the run (joint, its own, final)
    eval_tokens: float | None = None  # evaluations x dev units x max_length


def total_draws(cfg: RunConfig) -> int:
    """Batches drawn over the run: one per micro-batch."""
    return cfg.train.max_steps * cfg.train.gradient_accumulation_steps


def per_rank_batch_size(batch_size: int, world_size: int, *, task: str | None = None) -> int:
    """Rows of each process's share of a global batch of ``batch_size`` split over ``world_size`` processes.

    ``batch_size`` is global (README "Several GPUs"), so it must divide evenly: a remainder would make
    the processes' shares, and so the budget, depend on the number of processes. ``task`` names the
    config key in the error.

    Raises:
        KlueInputError: ``batch_size`` is not a multiple of ``world_size``.
    """
    if world_size < 1:
        raise ValueError(f"world_size must be >= 1, got {world_size}")
    if batch_size % world_size:
        key = f"tasks.{task}.batch_size" if task else "batch_size"
        raise KlueInputError(
            None,
            key,
            f"{batch_size} does not split over {world_size} processes: batch_size is the global batch "
            f"of one optimizer step and each process takes batch_size / {world_size} rows; use a "
            f"multiple of {world_size} (e.g. {math.ceil(batch_size / world_size) * world_size})",
            kind="key",
        )
    return batch_size // world_size


def declared_sizes(cfg: RunConfig) -> dict[str, int]:
    """Training units per task without reading data: ``tasks.<t>.train_size``, else the KLUE train size."""
    from mtl.tasks import TASKS

    sizes = {}
    for name, tc in cfg.tasks.items():
        size = tc.train_size or getattr(TASKS.get(name), "klue_train_size", None)
        if size is None:
            raise KlueInputError(
                None,
                f"tasks.{name}.train_size",
                "no known train size: declare it to plan the budget",
                kind="key",
            )
        sizes[name] = int(size)
    return sizes


def declared_dev_sizes(cfg: RunConfig) -> dict[str, int | None]:
    """Dev units per task without reading data: ``tasks.<t>.dev_size``, else the KLUE dev size, else None."""
    from mtl.tasks import TASKS

    return {
        name: tc.dev_size if tc.dev_size is not None else getattr(TASKS.get(name), "klue_dev_size", None)
        for name, tc in cfg.tasks.items()
    }


def _batches_for(cfg: RunConfig, sizes: Mapping[str, int], epochs: Mapping[str, float]) -> dict[str, float]:
    """Batches each task needs for its epochs."""
    return {n: e * sizes[n] / cfg.task_settings(n).batch_size for n, e in epochs.items()}


def epoch_targets(cfg: RunConfig, sizes: Mapping[str, int]) -> tuple[dict[str, float], float]:
    """The epoch targets in force and the factor they were lowered by (1: as configured).

    Targets that need more draws than the run has are an error naming the steps they need, or,
    under ``train.epoch_targets: scale``, all lowered by one factor so that they fill the run.
    """
    targets = {n: float(cfg.tasks[n].epochs) for n in sizes if cfg.tasks[n].epochs is not None}  # type: ignore[arg-type]
    needed = sum(_batches_for(cfg, sizes, targets).values())
    draws = total_draws(cfg)
    if needed <= draws:
        return targets, 1.0
    if cfg.train.epoch_targets == "scale":
        untargeted = [n for n in sizes if n not in targets]
        if untargeted:
            raise KlueInputError(
                None,
                "train.epoch_targets",
                f"'scale' lowers the targets until they fill the run, so {', '.join(untargeted)} (no "
                "tasks.<t>.epochs) would never be trained: give every task a target or raise max_steps",
                kind="key",
            )
        factor = draws / needed
        return {n: t * factor for n, t in targets.items()}, factor
    steps = math.ceil(needed / cfg.train.gradient_accumulation_steps)
    raise KlueInputError(
        None,
        "train.max_steps",
        f"the epoch targets ({', '.join(f'{n} {t:g}' for n, t in targets.items())}) need {steps} steps, "
        f"more than max_steps {cfg.train.max_steps}: raise max_steps, lower the targets, or set "
        "train.epoch_targets=scale to lower them all by one factor (a short run with the same shares)",
        kind="key",
    )


def solve_probabilities(cfg: RunConfig, sizes: Mapping[str, int]) -> dict[str, float]:
    """Sampling probabilities that give each task with ``epochs`` exactly its target (see module doc)."""
    draws = total_draws(cfg)
    need = _batches_for(cfg, sizes, epoch_targets(cfg, sizes)[0])
    needed = sum(need.values())
    rest = [n for n in sizes if n not in need]
    if not rest:
        return {n: need[n] / needed for n in sizes}
    cap = cfg.sampler.cap
    share = {
        n: cfg.tasks[n].sample_weight * min(sizes[n], cap or sizes[n]) ** (1.0 / cfg.sampler.temperature)
        for n in rest
    }
    left = 1.0 - needed / draws
    total = sum(share.values())
    probs = {n: need[n] / draws if n in need else left * share[n] / total for n in sizes}
    # A task left with no share could never be drawn; the sampler needs every probability > 0.
    zero = [n for n, p in probs.items() if p <= 0]
    if zero:
        raise KlueInputError(
            None,
            "train.max_steps",
            f"the epoch targets use the whole run: {', '.join(zero)} would never be trained",
            kind="key",
        )
    return probs


def sampler_spec(cfg: RunConfig, sizes: Mapping[str, int]) -> SamplerSpec:
    """What the run's sampler is built from: the ``sampler`` section, the seed and the solved targets.

    Sample weights are None when all are 1, which keeps the sampler state identical to a run
    without weights; with epoch targets the probabilities are fixed (:func:`solve_probabilities`).
    """
    s = cfg.sampler
    weights = {n: cfg.tasks[n].sample_weight for n in sizes}
    targeted = any(cfg.tasks[n].epochs is not None for n in sizes)
    return SamplerSpec(
        sizes=dict(sizes),
        seed=cfg.train.seed,
        total_draws=total_draws(cfg),
        temperature=s.temperature,
        cap=s.cap,
        anneal_to=s.anneal_to,
        weights=None if all(w == 1.0 for w in weights.values()) else weights,
        probabilities=solve_probabilities(cfg, sizes) if targeted else None,
    )


def build_sampler(cfg: RunConfig, sizes: Mapping[str, int]) -> TaskSampler:
    """The run's task sampler for ``sizes`` (``sampler.name`` from the registry), seeded by ``train.seed``.

    The one construction: training (:class:`mtl.batching.stream.MultiTaskStream`), the budget table
    and the experiment's single-task comparisons all draw from what this returns.
    """
    return samplers.build_sampler(cfg.sampler.name, sampler_spec(cfg, sizes))


def own_eval_intervals(cfg: RunConfig, rows: list[TaskBudget]) -> dict[str, int]:
    """Steps between evaluations of each task alone, for the tasks the joint cadence is too coarse for.

    A task wants ``train.evals_per_epoch`` evaluations per epoch of its own (every ``max_steps /
    (epochs x evals_per_epoch)`` steps); when the joint evaluation (every ``train.eval_every`` steps)
    already comes at least that often it is enough, and the task gets no evaluations of its own.
    """
    t = cfg.train
    if not t.evals_per_epoch:
        return {}
    intervals = {}
    for row in rows:
        if row.epochs <= 0:
            continue
        every = max(1, round(t.max_steps / (row.epochs * t.evals_per_epoch)))
        if not t.eval_every or t.eval_every > every:
            intervals[row.task] = every
    return intervals


def evaluation_counts(cfg: RunConfig, intervals: Mapping[str, int], tasks: list[str]) -> dict[str, int]:
    """Evaluations of each task over the run, as :class:`mtl.training.run.EngineRun` schedules them.

    Joint evaluations at every multiple of ``eval_every`` before the last step, a task's own at every
    multiple of its interval that is not a joint one, and the final evaluation of every task.
    """
    last, every = cfg.train.max_steps - 1, cfg.train.eval_every
    joint = last // every if every else 0
    counts = {}
    for task in tasks:
        own = 0
        if task in intervals:
            n = intervals[task]
            own = last // n - (last // math.lcm(n, every) if every else 0)
        counts[task] = joint + own + 1
    return counts


def budget_rows(
    cfg: RunConfig,
    sizes: Mapping[str, int],
    world_size: int = 1,
    dev_sizes: Mapping[str, int | None] | None = None,
) -> list[TaskBudget]:
    """The expected share of every task over the whole run, and its training and evaluation work.

    The shares do not depend on ``world_size``; it only gives each process's rows per batch (and is
    refused when a task's batch does not split evenly). Without ``dev_sizes`` the evaluation
    columns are None.
    """
    from mtl.tasks import TASKS

    draws = total_draws(cfg)
    # tasks_per_step K: each draw is a group of K distinct tasks, a task's batches are its groups.
    counts = expected_group_counts(build_sampler(cfg, sizes), draws, cfg.train.tasks_per_step)
    targets, _ = epoch_targets(cfg, sizes)
    rows = []
    for name, size in sizes.items():
        tc = cfg.task_settings(name)
        examples = counts[name] * tc.batch_size
        rows.append(
            TaskBudget(
                task=name,
                train_size=int(size),
                batch_size=tc.batch_size,  # type: ignore[arg-type]
                per_rank_batch_size=per_rank_batch_size(tc.batch_size, world_size, task=name),  # type: ignore[arg-type]
                probability=counts[name] / draws,
                batches=counts[name],
                examples=examples,
                epochs=examples / size,
                target_epochs=targets.get(name),
                baseline_epochs=getattr(TASKS.get(name), "baseline_epochs", None),
                max_length=tc.max_length,  # type: ignore[arg-type]
                train_tokens=examples * tc.max_length,  # type: ignore[operator]
            )
        )
    if dev_sizes is None:
        return rows
    evaluated = [r.task for r in rows if dev_sizes.get(r.task) != 0]
    evals = evaluation_counts(cfg, own_eval_intervals(cfg, rows), evaluated)
    out = []
    for r in rows:
        dev = dev_sizes.get(r.task)
        n = evals.get(r.task, 0)
        tokens = None if dev is None else float(n * dev * r.max_length)
        out.append(TaskBudget(**{**asdict(r), "dev_size": dev, "evaluations": n, "eval_tokens": tokens}))
    return out


def budget_report(
    cfg: RunConfig,
    rows: list[TaskBudget],
    source: str,
    world_size: int,
    parameters: int | None,
) -> dict[str, Any]:
    """The budget as plain data (``klue-mtl budget --json`` and ``budget.json``): tasks, totals, world size."""
    _, factor = epoch_targets(cfg, {r.task: r.train_size for r in rows})

    def flops(per_token: int, tokens: float | None) -> float | None:
        return None if parameters is None or tokens is None else per_token * parameters * tokens

    tasks = [
        {**asdict(r), "train_flops": flops(6, r.train_tokens), "eval_flops": flops(2, r.eval_tokens)}
        for r in rows
    ]
    known = [r.eval_tokens for r in rows if r.eval_tokens is not None]
    train_tokens = sum(r.train_tokens for r in rows)
    eval_tokens = sum(known) if known else None
    return {
        "sizes_from": source,
        "world_size": world_size,
        "max_steps": cfg.train.max_steps,
        "gradient_accumulation_steps": cfg.train.gradient_accumulation_steps,
        "draws": total_draws(cfg),
        "sampler": cfg.sampler.name,
        "epoch_targets": cfg.train.epoch_targets,
        "target_scale": factor,
        "encoder_parameters": parameters,
        "tasks": tasks,
        "totals": {
            "batches": sum(r.batches for r in rows),
            "examples": sum(r.examples for r in rows),
            "train_tokens": train_tokens,
            "eval_tokens": eval_tokens,
            "eval_share": None if eval_tokens is None else eval_tokens / train_tokens,
            "eval_tokens_unknown_for": [r.task for r in rows if r.eval_tokens is None],
            "train_flops": flops(6, train_tokens),
            "eval_flops": flops(2, eval_tokens),
        },
    }


def _how_sampled(cfg: RunConfig, report: dict[str, Any]) -> str:
    """Where the probabilities come from, naming the temperature only when it plays a part."""
    tasks = report["tasks"]
    targeted = [t["task"] for t in tasks if t["target_epochs"] is not None]
    s = cfg.sampler
    rule = f"sampler {s.name!r}" if s.name != "temperature" else f"temperature {s.temperature:g}"
    if s.name == "temperature" and s.anneal_to is not None:
        rule += f" -> {s.anneal_to:g}"
    if not targeted:
        return f"Probabilities from the {rule} rule and tasks.<t>.sample_weight."
    if len(targeted) == len(tasks):
        text = (
            "Every task has an epoch target (tasks.<t>.epochs of the config): the probabilities are "
            "solved to meet them, scaled together to fill the run; the sampler's rule plays no part."
        )
    else:
        text = (
            f"Tasks with an epoch target (tasks.<t>.epochs of the config: {', '.join(targeted)}) get "
            f"exactly their share; the others share the rest by the {rule} rule."
        )
    if report["target_scale"] != 1.0:
        text += (
            f" train.epoch_targets=scale lowered every target x{report['target_scale']:.4g} to fit "
            f"max_steps (the shares are kept); the target column shows the lowered targets."
        )
    return text


def strategy_note(cfg: RunConfig) -> list[str]:
    """The budget header's line on ``train.tasks_per_step`` and what ``train.aggregator`` costs."""
    t = cfg.train
    if t.tasks_per_step == 1:
        return []
    note = (
        f"Each draw is {t.tasks_per_step} distinct tasks: {total_draws(cfg) * t.tasks_per_step} batches in "
        "all; p is the chance that a task is in a draw."
    )
    if t.aggregator != "sum":
        note += f" Aggregator {t.aggregator}: one encoder backward per task in each draw."
    return [note]


def _epochs(value: float) -> str:
    # Two decimals for real runs; three significant digits for the fractions of a smoke run.
    return f"{value:.2f}" if value >= 0.1 else f"{value:.3g}"


def _si(value: float | None) -> str:
    if value is None:
        return "?"
    for unit, scale in (("E", 1e18), ("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.1f} {unit}"
    return f"{value:.0f}"


def format_table(cfg: RunConfig, report: dict[str, Any]) -> str:
    """The budget as Markdown: the shares, then the work (printed and written as budget.md)."""
    t = cfg.train
    world = report["world_size"]
    procs = f"; {world} processes, batch = global batch, per process batch / {world}" if world > 1 else ""
    tasks = report["tasks"]
    lines = [
        f"Per-task budget ({report['sizes_from']}{procs}): max_steps {t.max_steps} x accumulation "
        f"{t.gradient_accumulation_steps} = {report['draws']} batches.",
        _how_sampled(cfg, report),
        *strategy_note(cfg),
    ]
    if any(r["baseline_epochs"] is not None for r in tasks):
        lines.append(
            "KLUE-baseline: the epochs KLUE-baseline trains the task for on its own (its run_all.sh), "
            "for comparison; the presets take them as their targets."
        )
    per_rank = world > 1
    head = ["task", "train units", "batch", *(["per process"] if per_rank else []), "p", "batches"]
    head += ["examples", "epochs", "target", "KLUE-baseline"]
    lines += ["", "| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for r in tasks:
        cells = [r["task"], f"{r['train_size']:,}", str(r["batch_size"])]
        cells += [str(r["per_rank_batch_size"])] if per_rank else []
        cells += [
            f"{r['probability']:.3f}",
            f"{r['batches']:,.0f}",
            f"{r['examples']:,.0f}",
            _epochs(r["epochs"]),
        ]
        cells += ["" if r["target_epochs"] is None else f"{r['target_epochs']:.3g}"]
        cells += ["" if r["baseline_epochs"] is None else f"{r['baseline_epochs']:g}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += _work_table(cfg, report)
    return "\n".join(lines) + "\n"


def _work_table(cfg: RunConfig, report: dict[str, Any]) -> list[str]:
    t, totals, params = cfg.train, report["totals"], report["encoder_parameters"]
    cadence = f"joint evaluation every {t.eval_every} steps" if t.eval_every else "no joint evaluation"
    if t.evals_per_epoch:
        cadence += f", each task alone {t.evals_per_epoch:g}x per epoch of its own where that is more often"
    lines = [
        "",
        f"Work ({cadence}; the final evaluation covers every task). Tokens: units x max_length, an upper "
        "bound (batches are padded to their longest row). FLOPs: 6 x N x tokens to train, 2 x N x "
        "tokens to evaluate, "
        + (f"N = {_si(params)} encoder parameters." if params is not None else "encoder size unknown."),
        "",
        "| task | max length | train tokens | dev units | evaluations | eval tokens | train FLOPs | eval FLOPs |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["tasks"]:
        dev = "?" if r["dev_size"] is None else f"{r['dev_size']:,}"
        evals = "" if r["evaluations"] is None else str(r["evaluations"])
        lines.append(
            f"| {r['task']} | {r['max_length']} | {_si(r['train_tokens'])} | {dev} | {evals} "
            f"| {_si(r['eval_tokens'])} | {_si(r['train_flops'])} | {_si(r['eval_flops'])} |"
        )
    share = totals["eval_share"]
    lines.append(
        f"| total | | {_si(totals['train_tokens'])} | | | {_si(totals['eval_tokens'])} "
        f"| {_si(totals['train_flops'])} | {_si(totals['eval_flops'])} |"
    )
    if share is not None:
        lines += ["", f"Evaluation is {share:.1%} of the training tokens."]
    if totals["eval_tokens_unknown_for"]:
        names = ", ".join(totals["eval_tokens_unknown_for"])
        lines.append(f"Dev size unknown for {names}: declare tasks.<t>.dev_size to count its evaluation.")
    return lines


def write_budget(directory: Path, report: dict[str, Any], table: str) -> None:
    """``budget.json`` (:func:`budget_report`) and ``budget.md`` (the table) in the run folder."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / BUDGET_JSON).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (directory / BUDGET_MD).write_text(table, encoding="utf-8")
