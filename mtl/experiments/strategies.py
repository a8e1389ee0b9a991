"""The optional multi-task-strategies stage of ``klue-mtl experiment`` (``--strategies``).

Beside the headline joint run (the default recipe: one task per step), on the same split, config
and seed, with the same number of training batches in total:

* **every task, uncertainty**: ``train.tasks_per_step`` = the number of tasks (8 for KLUE: every
  task in every step) with learned uncertainty weights, ``max_steps / K`` steps;
* **every task, UPGrad**: the same with static weights and TorchJD's UPGrad aggregator.

Equal batches in total, not per task: with every task in every step each task gets the same
number of batches, while the default recipe draws them by temperature. Every run is scored on the
held-out files from its ``last`` checkpoint with 95% bootstrap intervals and the paired interval of
its difference from the headline run (:func:`mtl.experiments.mlm_stage.heldout_intervals`). The headline
run measures the task interaction (:mod:`mtl.evaluation.interaction`) at its middle and end
(``train.interaction_every``, which does not change the run); the start is measured on the same
seed's untrained model. A random-init encoder says how tasks interact while an encoder is learned
from scratch on little data, not how they interact when fine-tuning a pretrained one.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from mtl.config import RunConfig
from mtl.experiments.mlm_stage import BOOTSTRAP_SAMPLES, heldout_intervals, run_once

#: the two strategy runs: folder -> train overrides (fixed in advance, never tuned on held-out numbers)
STRATEGY_RUNS = {
    "all-uncertainty": {"weighting": "uncertainty", "aggregator": "sum"},
    "all-upgrad": {"weighting": "static", "aggregator": "upgrad"},
}


def probed_config(cfg: RunConfig) -> RunConfig:
    """The headline run with the interaction probe at its middle and end."""
    c = copy.deepcopy(cfg)
    c.train.interaction_every = max(c.train.max_steps // 2, 1)
    return c


def strategy_config(cfg: RunConfig, overrides: dict[str, Any]) -> RunConfig:
    """``cfg`` with every task in every step and the same total number of batches (``max_steps / K``)."""
    c = copy.deepcopy(cfg)
    c.train.tasks_per_step = len(cfg.tasks)
    for key, value in overrides.items():
        setattr(c.train, key, value)
    c.train.max_steps = max(cfg.train.max_steps // c.train.tasks_per_step, 1)
    c.train.save_every = 0
    return c


def probe_untrained(cfg: RunConfig, folder: Path) -> dict[str, Any]:
    """The interaction of the untrained model of ``cfg``'s seed (the start of the headline run)."""
    from mtl.evaluation.interaction import measure_session, write_interaction
    from mtl.training.session import build_session

    session = build_session(cfg, folder, progress=False)
    result = measure_session(session, source="step 0 (untrained)")
    write_interaction(result, folder / "interaction" / "step-0")
    return json.loads((folder / "interaction" / "step-0" / "interaction.json").read_text(encoding="utf-8"))


def strategies_stage(cfg: RunConfig, out: Path, run: Any) -> dict[str, Any]:
    """Run the strategy variants (``run(config, folder)`` trains one) and score them with the headline run."""
    seconds = {}
    for name, overrides in STRATEGY_RUNS.items():
        seconds[name] = run_once(run, strategy_config(cfg, overrides), out / f"joint-{name}")["wall_seconds"]
    folders = {"joint": out / "joint", **{name: out / f"joint-{name}" for name in STRATEGY_RUNS}}
    intervals = heldout_intervals(cfg, folders)
    interaction = {"start": probe_untrained(cfg, out / "joint-untrained")}
    for label, step in (("middle", max(cfg.train.max_steps // 2, 1)), ("end", cfg.train.max_steps)):
        path = out / "joint" / "interaction" / f"step-{step}" / "interaction.json"
        interaction[label] = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    return {
        "runs": STRATEGY_RUNS,
        "steps": {name: strategy_config(cfg, o).train.max_steps for name, o in STRATEGY_RUNS.items()},
        "seconds": seconds,  # None: a finished run found in place
        "intervals": intervals,
        "interaction": interaction,
        "bootstrap_samples": BOOTSTRAP_SAMPLES,
    }


def render_strategies(stage: dict[str, Any], default_steps: int) -> list[str]:
    """Markdown lines of the stage: the interval table, then the interaction at start, middle, end."""
    names = list(STRATEGY_RUNS)
    k = len(stage["intervals"])
    variants = ", ".join(f"`{n}` ({stage['steps'][n]} steps of {k} tasks)" for n in names)
    lines = [
        "",
        f"Multi-task strategies (`--strategies`): the default recipe ({default_steps} steps, one task per "
        f"step) vs {variants}: the same "
        "number of batches in total. First metric per task on the held-out units, [95% bootstrap interval, "
        f"{stage['bootstrap_samples']} resamples]; Δ = paired interval of the difference from the default run.",
        "",
        "| task | metric | default | " + " | ".join(f"{n} | Δ" for n in names) + " |",
        "|---|---|---|" + "---|---|" * len(names),
    ]
    for task, row in stage["intervals"].items():
        cells = [f"{row['joint']['value']:.2f} [{row['joint']['low']:.1f}, {row['joint']['high']:.1f}]"]
        for n in names:
            r = row[n]
            cells.append(f"{r['value']:.2f} [{r['low']:.1f}, {r['high']:.1f}]")
            cells.append(f"[{r['diff_low']:+.1f}, {r['diff_high']:+.1f}]")
        lines.append(f"| {task} | {row['metric']} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Task interaction of the default run (cosine of the encoder gradients; mean over task pairs):",
        "",
    ]
    for label, result in stage["interaction"].items():
        if result is None:
            lines.append(f"- {label}: not measured (run the joint run with --strategies)")
            continue
        n = len(result["tasks"])
        pairs = [result["cosine"][i][j] for i in range(n) for j in range(i + 1, n)]
        worst = min(
            (
                (result["cosine"][i][j], result["tasks"][i], result["tasks"][j])
                for i in range(n)
                for j in range(i + 1, n)
            ),
        )
        lines.append(
            f"- {label} ({result['source']}): mean {sum(pairs) / len(pairs):+.3f}, most opposed "
            f"{worst[1]}~{worst[2]} {worst[0]:+.3f}"
        )
    return lines
