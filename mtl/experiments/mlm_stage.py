"""The optional masked-LM stage of ``klue-mtl experiment`` (``--mlm``): does MLM help here?

Two runs beside the headline joint run, on the same split, config, steps and seed:

* **MLM -> joint**: masked LM alone on the training side's text (``@tasks``: every task's training
  file, never a held-out one), then the joint run starting from that encoder and its tokenizer;
* **joint + MLM auxiliary**: the joint run with a masked-LM task mixed in by the sampler.

Every run is scored on the held-out files from its ``last`` checkpoint, and each task's first
metric gets a 95% bootstrap interval over held-out units (as the metric counts them), together with
the paired interval of its difference from the headline run: the same resampled units score both.
Nothing here is tuned against the held-out numbers; the settings are fixed below.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np

from mtl.config import RunConfig, TaskConfig, resolve_path
from mtl.layout import LAST, SCOREBOARD_JSON, STATE_DIR, STATE_FILE

#: masked LM on the text of the training side: steps of the MLM-alone run, and the settings of the
#: task in both runs (fixed in advance, never tuned on held-out numbers)
MLM_STEPS = 1500
MLM_TASK = {"kind": "masked_lm", "train": "@tasks", "batch_size": 32, "max_length": 128}
AUX_LOSS_WEIGHT, AUX_SAMPLE_WEIGHT = 0.5, 0.4
BOOTSTRAP_SAMPLES, BOOTSTRAP_SEED = 1000, 0


def pretrain_config(cfg: RunConfig, steps: int) -> RunConfig:
    """Masked LM alone on the training text of every task of ``cfg``."""
    c = copy.deepcopy(cfg)
    text_from = {name: tc.train for name, tc in cfg.tasks.items() if tc.train}
    c.tasks = {"mlm": TaskConfig(**MLM_TASK, text_from=text_from)}  # type: ignore[arg-type]
    c.train.max_steps, c.train.save_every, c.train.eval_every = steps, 0, 0
    return c


def after_pretraining_config(cfg: RunConfig, checkpoint: Path) -> RunConfig:
    """The joint run from the MLM run's encoder (and its tokenizer, which the checkpoint holds)."""
    c = copy.deepcopy(cfg)
    c.encoder.name, c.encoder.random_init, c.encoder.tokenizer = str(checkpoint), False, None
    c.encoder.architecture = {}
    return c


def auxiliary_config(cfg: RunConfig) -> RunConfig:
    """The joint run with a masked-LM task mixed in."""
    c = copy.deepcopy(cfg)
    c.tasks["mlm"] = TaskConfig(**MLM_TASK, loss_weight=AUX_LOSS_WEIGHT, sample_weight=AUX_SAMPLE_WEIGHT)  # type: ignore[arg-type]
    return c


def run_once(run: Any, cfg: RunConfig, folder: Path) -> dict[str, Any]:
    """Train ``cfg`` into ``folder`` unless a finished run is there already (an interrupted stage, or
    its runs started by hand in parallel, continue without training anything twice)."""
    import json

    state = folder / LAST / STATE_DIR / STATE_FILE
    board = folder / SCOREBOARD_JSON
    if state.is_file() and board.is_file():
        if json.loads(state.read_text(encoding="utf-8"))["step"] >= cfg.train.max_steps:
            rows = json.loads(board.read_text(encoding="utf-8"))["rows"]
            return {"results": {r["task"]: r["metrics"] for r in rows}, "wall_seconds": None}
    return run(cfg, folder)


def heldout_predictions(checkpoint: Path, cfg: RunConfig) -> dict[str, tuple[Any, list[Any], list[Any]]]:
    """Per task of ``cfg``: (the set-up task, gold units, predictions) on its held-out file, in unit order."""
    from mtl.serving.api import KlueMultiTask

    model = KlueMultiTask.from_pretrained(checkpoint)
    out = {}
    for name, tc in cfg.tasks.items():
        task = model.task(name)
        records = task.read(resolve_path(cfg, tc.dev), labeled=True)  # type: ignore[arg-type]
        gold = task.gold_units(records)
        by_key = {task.key_of(p): p for p in model.predict_records(name, records)}
        out[name] = (task, list(gold.values()), [by_key[k] for k in gold])
    return out


def bootstrap(
    task: Any,
    golds: list[Any],
    runs: dict[str, list[Any]],
    metric: str,
    reference: str,
    samples: int = BOOTSTRAP_SAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> dict[str, dict[str, float]]:
    """Point value and 95% percentile interval of ``metric`` per run, and of each run's difference from
    ``reference`` (paired: the same resampled units score every run)."""
    rng = np.random.default_rng(seed)
    n = len(golds)
    values: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(samples):
        idx = rng.integers(0, n, n)
        g = [golds[i] for i in idx]
        for name, preds in runs.items():
            values[name].append(task.compute_metrics(g, [preds[i] for i in idx])[metric])
    out: dict[str, dict[str, float]] = {}
    for name, preds in runs.items():
        v = np.asarray(values[name])
        point = task.compute_metrics(golds, preds)[metric]
        out[name] = {
            "value": point,
            "low": float(np.percentile(v, 2.5)),
            "high": float(np.percentile(v, 97.5)),
        }
        if name != reference:
            d = v - np.asarray(values[reference])
            out[name]["diff_low"], out[name]["diff_high"] = (
                float(np.percentile(d, 2.5)),
                float(np.percentile(d, 97.5)),
            )
    return out


def heldout_intervals(cfg: RunConfig, folders: dict[str, Path]) -> dict[str, dict[str, Any]]:
    """Per task of ``cfg``: its first metric with :func:`bootstrap` intervals for every run in
    ``folders`` (name -> run folder, scored from its ``last`` checkpoint), paired against ``"joint"``."""
    predictions = {name: heldout_predictions(folder / LAST, cfg) for name, folder in folders.items()}
    intervals = {}
    for task_name in cfg.tasks:
        task, golds, _ = predictions["joint"][task_name]
        runs = {name: p[task_name][2] for name, p in predictions.items()}
        intervals[task_name] = {
            "metric": task.main_metric,
            "units": len(golds),
            **bootstrap(task, golds, runs, task.main_metric, reference="joint"),
        }
    return intervals


def mlm_stage(cfg: RunConfig, out: Path, run: Any, steps: int = MLM_STEPS) -> dict[str, Any]:
    """Run the two MLM variants (``run(config, folder)`` trains one) and score all three runs."""
    pretrain = run_once(run, pretrain_config(cfg, steps), out / "mlm-pretrain")
    after = run_once(run, after_pretraining_config(cfg, out / "mlm-pretrain" / LAST), out / "joint-after-mlm")
    aux = run_once(run, auxiliary_config(cfg), out / "joint-mlm-aux")
    folders = {
        "joint": out / "joint",
        "mlm_then_joint": out / "joint-after-mlm",
        "joint_mlm_aux": out / "joint-mlm-aux",
    }
    intervals = heldout_intervals(cfg, folders)
    return {
        "mlm_steps": steps,
        "settings": {
            "task": MLM_TASK,
            "aux_loss_weight": AUX_LOSS_WEIGHT,
            "aux_sample_weight": AUX_SAMPLE_WEIGHT,
        },
        "pretrain_results": pretrain["results"],
        "pretrain_seconds": pretrain["wall_seconds"],  # None: a finished run found in place
        "after_seconds": after["wall_seconds"],
        "aux_seconds": aux["wall_seconds"],
        "aux_mlm_results": aux["results"].get("mlm"),
        "intervals": intervals,
        "bootstrap_samples": BOOTSTRAP_SAMPLES,
    }


def render_mlm(stage: dict[str, Any]) -> list[str]:
    """Markdown lines of the MLM stage's table."""
    lines = [
        "",
        f"Masked LM (`--mlm`): MLM alone {stage['mlm_steps']} steps on the training side's text, then the joint "
        "run from that encoder; and the joint run with MLM as an auxiliary task (loss weight "
        f"{stage['settings']['aux_loss_weight']}, sample weight {stage['settings']['aux_sample_weight']}). First "
        f"metric per task on the held-out units, [95% bootstrap interval, {stage['bootstrap_samples']} resamples]; "
        "Δ = paired interval of the difference from the joint run.",
        "",
        "| task | metric | joint | MLM → joint | Δ | joint + MLM aux | Δ |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in stage["intervals"].items():

        def cell(r: dict[str, float]) -> str:
            return f"{r['value']:.2f} [{r['low']:.1f}, {r['high']:.1f}]"

        def delta(r: dict[str, float]) -> str:
            return f"[{r['diff_low']:+.1f}, {r['diff_high']:+.1f}]"

        j, a, x = row["joint"], row["mlm_then_joint"], row["joint_mlm_aux"]
        lines.append(
            f"| {name} | {row['metric']} | {cell(j)} | {cell(a)} | {delta(a)} | {cell(x)} | {delta(x)} |"
        )
    pre = stage["pretrain_results"].get("mlm", {})
    if pre:
        lines += [
            "",
            f"The MLM-alone run reached masked accuracy {pre['masked_accuracy']:.1f}% (perplexity "
            f"{pre['perplexity']:.1f}) on its held-aside text.",
        ]
    return lines
