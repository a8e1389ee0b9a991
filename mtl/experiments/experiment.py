"""``klue-mtl experiment``: evidence that the whole pipeline learns real KLUE data from scratch.

One command, deterministic for a seed:

1. split every real dev file 80/20, leak-free (:mod:`mtl.experiments.split`),
2. score the trivial and the non-neural baselines on the held-out 20% (:mod:`mtl.tasks.baselines`; each
   task's ``trivial_baseline`` / ``nonneural_baseline``), by the same ``score`` code as the model,
3. train the config jointly (the headline run, first of ``--seeds``) and score it on the held-out
   20%; the other seeds repeat the joint run only, for the seed-to-seed spread,
4. comparisons at a smaller budget (``--compare-steps``): joint vs single-task with the same number
   of updates per task, temperature T = 1, 2, 5 (and the config's own T), and the custom loop vs
   the Trainer; a preset's epoch targets are lowered to fit (``train.epoch_targets: scale``),
5. write ``results.json``, ``results.md`` and the per-task training-loss curves as a PNG.
   ``results.json`` and ``results.md`` are rewritten after every run, so nothing finished is lost
   when a later run fails or is stopped.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

from mtl.config import RunConfig, load_config
from mtl.data.io import write_jsonl
from mtl.errors import KlueInputError
from mtl.evaluation.score_file import score
from mtl.experiments.mlm_stage import mlm_stage, render_mlm
from mtl.experiments.split import split_official
from mtl.experiments.strategies import probed_config, render_strategies, strategies_stage
from mtl.layout import FEATURES_CACHE_DIR, LAST, TENSORBOARD_DIR
from mtl.training.budget import build_sampler, total_draws

#: the temperatures every experiment compares (the config's own is added when it is another)
COMPARED_TEMPERATURES = (1.0, 2.0, 5.0)


def _run(cfg: RunConfig, output: Path) -> dict[str, Any]:
    from mtl.cli.commands import run_training

    t0 = time.perf_counter()
    summary = run_training(cfg, output, resume=False)
    if summary.get("stopped"):
        raise KlueInputError(output, None, "the run was interrupted; the experiment stops here")
    summary["wall_seconds"] = time.perf_counter() - t0
    return summary


def updates_per_task(cfg: RunConfig, sizes: dict[str, int]) -> dict[str, int]:
    """How many batches of each task the joint run draws: the run's own sampler, drawn as the run does."""
    return dict(Counter(build_sampler(cfg, sizes).draw(total_draws(cfg))))


def temperature_key(temperature: float) -> str:
    """The key of a temperature in ``results.json`` ("1", "2", "3.5")."""
    return f"{float(temperature):g}"


def baselines(cfg: RunConfig, out: Path) -> dict[str, dict[str, Any]]:
    """Trivial and non-neural baselines of every configured task, scored on its held-out file."""
    from mtl.batching.prepare import resolve_path
    from mtl.tasks import get_task

    results: dict[str, dict[str, Any]] = {}
    for name, tc in cfg.tasks.items():
        task = get_task(name)
        train_path, dev = resolve_path(cfg, tc.train), resolve_path(cfg, tc.dev)  # type: ignore[arg-type]
        train, heldout = task.read(train_path), task.read(dev)
        row: dict[str, Any] = {}
        for kind, fit in (("trivial", task.trivial_baseline), ("nonneural", task.nonneural_baseline)):
            t0 = time.perf_counter()
            preds = fit(train, heldout)
            seconds = time.perf_counter() - t0
            if preds is None:
                row[kind] = None
                continue
            path = out / f"baseline-{kind}-{name}.jsonl"
            write_jsonl(path, preds)
            scored = score(name, dev, path)
            row[kind] = {"metrics": scored["metrics"], "seconds": seconds}
            row["units"] = scored["n"]
        results[name] = row
    return results


def seed_spread(runs: dict[str, dict[str, dict[str, float]]]) -> dict[str, dict[str, dict[str, float]]]:
    """Per task and metric: mean, sample standard deviation, min and max over the seeds' results."""
    spread: dict[str, dict[str, dict[str, float]]] = {}
    first = next(iter(runs.values()))
    for task, metrics in first.items():
        spread[task] = {}
        for metric in metrics:
            values = [r[task][metric] for r in runs.values()]
            spread[task][metric] = {
                "mean": statistics.fmean(values),
                "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
                "min": min(values),
                "max": max(values),
            }
    return spread


def _save(report: dict[str, Any], out: Path) -> None:
    (out / "results.json").write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")


def cmd_experiment(args: argparse.Namespace) -> int:
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    split_dir = out / "split"
    counts = split_official(args.data_dir, split_dir)
    overrides = [f"data_dir={split_dir.resolve()}", *(args.overrides or [])]
    cfg = load_config(args.config, overrides)
    seeds = list(args.seeds or [cfg.train.seed])
    cfg.train.seed = seeds[0]
    report: dict[str, Any] = {"config": args.config, "split_counts": counts, "seed": seeds[0], "seeds": seeds}
    if args.mlm_only:
        # Add the masked-LM stage to a finished experiment in the same folder (same split, same config).
        done = out / "results.json"
        if not done.is_file() or not (out / "joint" / LAST).exists():
            raise KlueInputError(
                out, None, "--mlm-only needs a finished experiment here (results.json, joint/last)"
            )
        report = json.loads(done.read_text(encoding="utf-8"))
        report["mlm"] = mlm_stage(cfg, out, _run)
        return _finish(report, cfg, out)

    t0 = time.perf_counter()
    report["baselines"] = baselines(cfg, out)
    report["baselines_seconds"] = time.perf_counter() - t0
    _save(report, out)
    # --strategies: the headline run also measures the task interaction (which leaves it unchanged)
    main = _run(probed_config(cfg) if args.strategies else cfg, out / "joint")
    report["joint"] = {
        "steps": cfg.train.max_steps,
        "seconds": main["wall_seconds"],
        "results": main["results"],
    }
    _save(report, out)
    by_seed = {str(seeds[0]): main["results"]}
    report["joint_seeds"] = {str(seeds[0]): {"seconds": main["wall_seconds"], "results": main["results"]}}
    for seed in seeds[1:]:
        c = copy.deepcopy(cfg)
        c.train.seed = seed
        c.train.save_every = 0
        run = _run(c, out / f"joint-seed-{seed}")
        by_seed[str(seed)] = run["results"]
        report["joint_seeds"][str(seed)] = {"seconds": run["wall_seconds"], "results": run["results"]}
        report["seed_spread"] = seed_spread(by_seed)
        _save(report, out)
    if args.mlm:
        report["mlm"] = mlm_stage(cfg, out, _run)
        _save(report, out)
    if args.strategies:
        report["strategies"] = strategies_stage(cfg, out, _run)
        _save(report, out)
    if args.no_comparisons:
        return _finish(report, cfg, out)

    small = copy.deepcopy(cfg)
    small.train.max_steps = args.compare_steps
    small.train.save_every = 0
    # A preset's epoch targets need its whole run: keep their shares at the smaller budget.
    small.train.epoch_targets = "scale"
    for tc in small.tasks.values():
        # Comparison runs are scored on a fixed slice of each held-out set to keep them affordable.
        tc.max_dev_examples = args.compare_dev_examples
    report["compare_steps"] = args.compare_steps
    report["compare_dev_examples"] = args.compare_dev_examples
    report["compare_temperature"] = small.sampler.temperature
    report["temperature"] = {}
    runs = {}
    for t in sorted({*COMPARED_TEMPERATURES, small.sampler.temperature}):
        c = copy.deepcopy(small)
        c.sampler.temperature = t
        runs[t] = _run(c, out / f"temperature-{t:g}")
        report["temperature"][temperature_key(t)] = runs[t]["results"]
        _write(report, cfg, out)
    joint_small = runs[small.sampler.temperature]
    report["joint_small"] = joint_small["results"]

    # The joint run at the config's temperature is one engine's run; the other engine repeats it.
    other = copy.deepcopy(small)
    other.train.engine = "trainer" if small.train.engine == "loop" else "loop"
    second = _run(other, out / other.train.engine)
    engines = {small.train.engine: joint_small, other.train.engine: second}
    loop, trainer = engines["loop"], engines["trainer"]
    report["engines"] = {"loop": loop["results"], "trainer": trainer["results"]}
    report["engine_max_rel_loss_diff"] = max(
        abs(a - b) / max(abs(a), 1e-12) for a, b in zip(loop["losses"], trainer["losses"], strict=True)
    )
    _write(report, cfg, out)

    per_task = updates_per_task(small, train_sizes(small, out))
    report["single_task_updates"] = per_task
    report["single"] = {}
    for name in cfg.tasks:
        c = copy.deepcopy(small)
        c.tasks = {name: c.tasks[name]}
        c.train.max_steps = max(per_task.get(name, 0) // c.train.gradient_accumulation_steps, 1)
        report["single"][name] = _run(c, out / f"single-{name}")["results"][name]
        _write(report, cfg, out)
    return _finish(report, cfg, out)


def train_sizes(cfg: RunConfig, out: Path) -> dict[str, int]:
    """Training units (features) of every task of ``cfg``, as the joint run counts them."""
    from mtl.batching.prepare import add_task_tokens, prepare, setup_task
    from mtl.modeling.tokenizer import encoder_tokenizer

    tokenizer = encoder_tokenizer(cfg.encoder)
    add_task_tokens(tokenizer, [setup_task(n, cfg, tokenizer) for n in cfg.tasks])
    data = prepare(
        cfg, tokenizer, splits=("train",), cache_dir=str(out / "joint" / FEATURES_CACHE_DIR), progress=False
    )
    return {n: len(td.train.features) for n, td in data.items()}  # type: ignore[union-attr]


def _write(report: dict[str, Any], cfg: RunConfig, out: Path) -> None:
    """``results.json`` and ``results.md`` with what is done so far."""
    _save(report, out)
    (out / "results.md").write_text(render(report, cfg), encoding="utf-8")


def _finish(report: dict[str, Any], cfg: RunConfig, out: Path) -> int:
    _write(report, cfg, out)
    from mtl.tracking.curves import draw_loss_curves

    draw_loss_curves(out / "joint" / TENSORBOARD_DIR, out / "loss_curves.png")
    print((out / "results.md").read_text(encoding="utf-8"))
    return 0


def _minutes(seconds: float | None) -> str:
    return "time not recorded" if seconds is None else f"{seconds / 60:.1f} min"


def _num(result: dict[str, Any] | None, metric: str) -> str:
    return "—" if result is None else f"{result['metrics'][metric]:.2f}"


def _spread(s: dict[str, float] | None) -> str:
    if s is None:
        return "—"
    return f"{s['mean']:.2f} ± {s['sd']:.2f} ({s['min']:.2f}–{s['max']:.2f})"


def render(report: dict[str, Any], cfg: RunConfig) -> str:
    """The results page (Markdown)."""
    from mtl.tasks import get_task

    seeds = report.get("seeds", [report["seed"]])
    lines = [
        f"Held-out 20% of the real KLUE dev sets (leak-free split); joint run {report['joint']['steps']} steps "
        f"({_minutes(report['joint'].get('seconds'))}), seed {report['seed']}; seed spread over seeds "
        f"{', '.join(map(str, seeds))}. Units are what `score` and the metric count.",
        "",
        "| task | held-out units | metric | trivial | non-neural | joint (seed "
        f"{report['seed']}) | joint, {len(seeds)} seeds: mean ± sd (min–max) |",
        "|---|---:|---|---:|---:|---:|---|",
    ]
    spread = report.get("seed_spread", {})
    for name in cfg.tasks:
        task = get_task(name)
        base = report["baselines"][name]
        trained = report["joint"]["results"][name]
        for i, metric in enumerate(task.metric_names):
            units = f"{base['units']} {task.scoring_unit}s" if i == 0 else ""
            cells = [
                name if i == 0 else "",
                units,
                metric,
                _num(base["trivial"], metric),
                _num(base["nonneural"], metric),
                f"{trained[metric]:.2f}",
                _spread(spread.get(name, {}).get(metric)),
            ]
            lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Baselines (fitted on the training side only, scored by `score`):", ""]
    for name in cfg.tasks:
        task = get_task(name)
        b = report["baselines"][name]
        nonneural = (
            f"{task.nonneural_description} ({b['nonneural']['seconds']:.1f} s)" if b["nonneural"] else "—"
        )
        lines.append(f"- **{name}**: trivial: {task.baseline_description}; non-neural: {nonneural}")
    if "mlm" in report:
        lines += render_mlm(report["mlm"])
    if "strategies" in report:
        lines += render_strategies(report["strategies"], report["joint"]["steps"])
    if "temperature" not in report:
        return "\n".join(lines) + "\n"
    lines += _render_comparisons(report, cfg)
    return "\n".join(lines) + "\n"


def _render_comparisons(report: dict[str, Any], cfg: RunConfig) -> list[str]:
    """The comparison table; runs not finished yet show as —."""
    from mtl.tasks import get_task

    # Keys are normalised so that reports written before temperature_key ("2.0") render too.
    temps = {temperature_key(float(k)): v for k, v in report["temperature"].items()}
    own = temperature_key(report.get("compare_temperature", cfg.sampler.temperature))
    order = sorted(temps, key=float)
    single, updates = report.get("single", {}), report.get("single_task_updates", {})
    engines = report.get("engines", {})

    def cell(results: dict[str, Any] | None, name: str, metric: str) -> str:
        return "—" if not results or name not in results else f"{results[name][metric]:.2f}"

    lines = ["", f"Comparisons ({report['compare_steps']} steps each; first official metric per task):", ""]
    header = [
        "task",
        f"joint T={own}",
        "single-task (same updates)",
        *(f"T={t}" for t in order),
        "loop",
        "Trainer",
    ]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name in cfg.tasks:
        m = get_task(name).main_metric
        alone = "—" if name not in single else f"{single[name][m]:.2f} ({updates.get(name, 0)} updates)"
        row = [
            name,
            cell(temps.get(own), name, m),
            alone,
            *(cell(temps[t], name, m) for t in order),
            cell(engines.get("loop"), name, m),
            cell(engines.get("trainer"), name, m),
        ]
        lines.append("| " + " | ".join(row) + " |")
    if "engine_max_rel_loss_diff" in report:
        lines += [
            "",
            f"Largest relative per-step loss difference loop vs Trainer: {report['engine_max_rel_loss_diff']:.2e}",
        ]
    return lines
