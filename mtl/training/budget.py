"""Per-task training budgets: how the sampler splits ``max_steps`` among the tasks, shown before step 1.

Each task gets a sampling probability from the temperature rule ``p_i ∝ w_i · min(n_i, cap)^(1/T)``
(``w_i`` = ``tasks.<t>.sample_weight``), unless some tasks declare a target ``tasks.<t>.epochs``: then
those tasks get exactly the share that meets their target within the run
(``epochs · n_i / batch_size`` batches out of ``max_steps x accumulation`` draws), the other tasks
share what is left by the temperature rule, and when every task has a target the shares are scaled
up together so the whole run is used. A run whose targets do not fit in ``max_steps`` is a config
error that says how many steps they need.

The same numbers drive the sampler (:func:`sampler_settings`) and the printed table
(:func:`budget_rows`), so what the user reads is what the run does. ``n_i`` are training units
(features: MRC windows, WoS user turns); before any data is read they come from
``tasks.<t>.train_size`` or the task's ``klue_train_size`` (:func:`declared_sizes`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mtl.config import RunConfig
from mtl.errors import KlueInputError
from samplers import AnnealSchedule, TemperatureSampler
from samplers.groups import expected_group_counts

BUDGET_JSON = "budget.json"
BUDGET_MD = "budget.md"


@dataclass(frozen=True)
class TaskBudget:
    """One task's planned share of the run."""

    task: str
    train_size: int  # training units per epoch
    batch_size: int  # units per batch (per process)
    probability: float  # mean probability of drawing the task over the run
    batches: float  # expected batches of the task over the run (all processes step together)
    examples: float  # expected training units seen (batches x batch size x processes)
    epochs: float  # examples / train_size
    target_epochs: float | None  # tasks.<t>.epochs, if declared
    baseline_epochs: float | None  # KLUE-baseline's epochs for the task, if known


def total_draws(cfg: RunConfig) -> int:
    """Batches drawn over the run: one per micro-batch."""
    return cfg.train.max_steps * cfg.train.gradient_accumulation_steps


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


def sampler_settings(
    cfg: RunConfig, sizes: Mapping[str, int], world_size: int = 1
) -> tuple[float, dict[str, float] | None]:
    """(temperature, weights) of the :class:`TemperatureSampler` that realises the budget.

    Without epoch targets this is the configured temperature with the sample weights (None when all
    are 1, which keeps the sampler state identical to a run without weights). With targets the
    probabilities are fixed: temperature ``inf`` (uniform base) and the solved probabilities as weights.
    """
    tasks = cfg.tasks
    weights = {n: tasks[n].sample_weight for n in sizes}
    if all(tasks[n].epochs is None for n in sizes):
        return cfg.sampler.temperature, None if all(w == 1.0 for w in weights.values()) else weights
    return math.inf, solve_probabilities(cfg, sizes, world_size)


def solve_probabilities(cfg: RunConfig, sizes: Mapping[str, int], world_size: int = 1) -> dict[str, float]:
    """Sampling probabilities that give each task with ``epochs`` exactly its target (see module doc)."""
    draws = total_draws(cfg)
    need = {
        n: cfg.tasks[n].epochs * sizes[n] / (cfg.task_settings(n).batch_size * world_size)  # type: ignore[operator]
        for n in sizes
        if cfg.tasks[n].epochs is not None
    }
    needed = sum(need.values())
    if needed > draws:
        steps = math.ceil(needed / cfg.train.gradient_accumulation_steps)
        raise KlueInputError(
            None,
            "train.max_steps",
            f"the epoch targets ({', '.join(f'{n} {cfg.tasks[n].epochs:g}' for n in need)}) need "
            f"{steps} steps, more than max_steps {cfg.train.max_steps}: raise max_steps or lower the targets",
            kind="key",
        )
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


def build_sampler(cfg: RunConfig, sizes: Mapping[str, int], world_size: int = 1) -> TemperatureSampler:
    """The run's task sampler for ``sizes``, seeded by ``train.seed``."""
    temperature, weights = sampler_settings(cfg, sizes, world_size)
    s = cfg.sampler
    anneal = AnnealSchedule(temperature, s.anneal_to, total_draws(cfg)) if s.anneal_to is not None else None
    return TemperatureSampler(
        dict(sizes),
        temperature=1.0 if anneal else temperature,
        cap=s.cap,
        anneal=anneal,
        seed=cfg.train.seed,
        weights=weights,
    )


def budget_rows(cfg: RunConfig, sizes: Mapping[str, int], world_size: int = 1) -> list[TaskBudget]:
    """The expected share of every task over the whole run."""
    from mtl.tasks import TASKS

    draws = total_draws(cfg)
    # tasks_per_step K: each draw is a group of K distinct tasks, a task's batches are its groups.
    counts = expected_group_counts(build_sampler(cfg, sizes, world_size), draws, cfg.train.tasks_per_step)
    rows = []
    for name, size in sizes.items():
        tc = cfg.task_settings(name)
        examples = counts[name] * tc.batch_size * world_size
        rows.append(
            TaskBudget(
                task=name,
                train_size=int(size),
                batch_size=tc.batch_size,
                probability=counts[name] / draws,
                batches=counts[name],
                examples=examples,
                epochs=examples / size,
                target_epochs=tc.epochs,
                baseline_epochs=getattr(TASKS.get(name), "baseline_epochs", None),
            )
        )
    return rows


def format_table(rows: list[TaskBudget], cfg: RunConfig, source: str) -> str:
    """The budget as a Markdown table with a one-line header (printed and written as budget.md)."""
    t = cfg.train
    head = (
        f"Per-task budget ({source}): max_steps {t.max_steps} x accumulation "
        f"{t.gradient_accumulation_steps} = {total_draws(cfg)} batches, temperature {cfg.sampler.temperature:g}"
        + (f" -> {cfg.sampler.anneal_to:g}" if cfg.sampler.anneal_to is not None else "")
        + strategy_note(cfg)
        + "\n\n"
    )
    lines = [
        "| task | train units | batch | p | batches | examples | epochs | target | KLUE-baseline |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        target = "" if r.target_epochs is None else f"{r.target_epochs:g}"
        base = "" if r.baseline_epochs is None else f"{r.baseline_epochs:g}"
        lines.append(
            f"| {r.task} | {r.train_size:,} | {r.batch_size} | {r.probability:.3f} | {r.batches:,.0f} "
            f"| {r.examples:,.0f} | {r.epochs:.2f} | {target} | {base} |"
        )
    return head + "\n".join(lines) + "\n"


def strategy_note(cfg: RunConfig) -> str:
    """The budget header's note on ``train.tasks_per_step`` and what ``train.aggregator`` costs."""
    t = cfg.train
    if t.tasks_per_step == 1:
        return ""
    note = (
        f"; each draw is {t.tasks_per_step} distinct tasks: {total_draws(cfg) * t.tasks_per_step} batches in all"
        " (p = chance a task is in a draw)"
    )
    if t.aggregator != "sum":
        note += f"; aggregator {t.aggregator}: one encoder backward per task in each draw"
    return note


def write_budget(directory: Path, rows: list[TaskBudget], table: str, source: str) -> None:
    """``budget.json`` (the rows) and ``budget.md`` (the table) in the run folder."""
    directory.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {"sizes_from": source, "tasks": [asdict(r) for r in rows]}
    (directory / BUDGET_JSON).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    (directory / BUDGET_MD).write_text(table, encoding="utf-8")
