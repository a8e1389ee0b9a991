"""``klue-mtl experiment``: evidence that the whole pipeline learns real KLUE data from scratch.

One command, deterministic for a seed:

1. split every real dev file 80/20 (:mod:`mtl.split`),
2. score the trivial baselines on the held-out 20% (:mod:`mtl.baselines`),
3. train the config jointly (the headline run) and score it on the held-out 20%,
4. comparisons at a smaller budget (``--compare-steps``): joint vs single-task with the same number
   of updates per task, temperature T = 1, 2, 5, and the custom loop vs the Trainer,
5. write ``results.json``, ``results.md`` and the per-task training-loss curves as a PNG.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

from mtl.baselines import DESCRIPTIONS, trivial_predictions
from mtl.config import RunConfig, load_config
from mtl.errors import KlueInputError
from mtl.io import write_jsonl
from mtl.scoring import score
from mtl.split import split_official
from mtl.tasks import klue_tasks
from samplers import TemperatureSampler


def _run(cfg: RunConfig, output: Path) -> dict[str, Any]:
    from mtl.commands import run_training

    t0 = time.perf_counter()
    summary = run_training(cfg, output, resume=False)
    if summary.get("stopped"):
        raise KlueInputError(output, None, "the run was interrupted; the experiment stops here")
    summary["wall_seconds"] = time.perf_counter() - t0
    return summary


def updates_per_task(cfg: RunConfig, sizes: dict[str, int]) -> dict[str, int]:
    """How many batches of each task the joint run draws (the sampler is deterministic)."""
    s = cfg.sampler
    sampler = TemperatureSampler(sizes, temperature=s.temperature, cap=s.cap, seed=cfg.train.seed)
    return dict(Counter(sampler.draw(cfg.train.max_steps * cfg.train.gradient_accumulation_steps)))


def baselines(cfg: RunConfig, split_dir: Path, out: Path) -> dict[str, dict[str, float]]:
    from mtl.pipeline import resolve_path
    from mtl.tasks import get_task

    results = {}
    for name, tc in cfg.tasks.items():
        task = get_task(name)
        train, dev = resolve_path(cfg, tc.train), resolve_path(cfg, tc.dev)  # type: ignore[arg-type]
        preds = trivial_predictions(name, task.read(train), task.read(dev))
        path = out / f"baseline-{name}.jsonl"
        write_jsonl(path, preds)
        results[name] = score(name, dev, path)["metrics"]
    return results


def cmd_experiment(args: argparse.Namespace) -> int:
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    split_dir = out / "split"
    counts = split_official(args.data_dir, split_dir)
    overrides = [f"data_dir={split_dir.resolve()}", *(args.overrides or [])]
    cfg = load_config(args.config, overrides)
    report: dict[str, Any] = {"config": args.config, "split_counts": counts, "seed": cfg.train.seed}

    report["baselines"] = baselines(cfg, split_dir, out)
    main = _run(cfg, out / "joint")
    report["joint"] = {
        "steps": cfg.train.max_steps,
        "seconds": main["wall_seconds"],
        "results": main["results"],
    }

    small = copy.deepcopy(cfg)
    small.train.max_steps = args.compare_steps
    small.train.save_every = 0
    for tc in small.tasks.values():
        # Comparison runs are scored on a fixed slice of each held-out set to keep them affordable.
        tc.max_dev_examples = args.compare_dev_examples
    report["compare_steps"] = args.compare_steps
    report["compare_dev_examples"] = args.compare_dev_examples
    temps = {}
    for t in (1.0, 2.0, 5.0):
        c = copy.deepcopy(small)
        c.sampler.temperature = t
        temps[str(t)] = _run(c, out / f"temperature-{t:g}")
    report["temperature"] = {k: v["results"] for k, v in temps.items()}

    engine_cfg = copy.deepcopy(small)
    engine_cfg.train.engine = "trainer"
    trainer = _run(engine_cfg, out / "trainer")
    loop = temps["2.0"] if small.sampler.temperature == 2.0 else _run(small, out / "loop")
    report["engines"] = {"loop": loop["results"], "trainer": trainer["results"]}
    report["engine_max_rel_loss_diff"] = max(
        abs(a - b) / max(abs(a), 1e-12) for a, b in zip(loop["losses"], trainer["losses"], strict=True)
    )

    from mtl.pipeline import add_task_tokens, prepare, setup_task
    from mtl.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(cfg.encoder.tokenizer or cfg.encoder.name)
    add_task_tokens(tokenizer, [setup_task(n, small, tokenizer) for n in small.tasks])
    sizes = {
        n: len(td.train.features)
        for n, td in prepare(
            small,
            tokenizer,
            splits=("train",),
            cache_dir=str(out / "joint" / ".features-cache"),
            progress=False,
        ).items()
    }  # type: ignore[union-attr]
    per_task = updates_per_task(small, sizes)
    report["single_task_updates"] = per_task
    singles = {}
    for name in cfg.tasks:
        c = copy.deepcopy(small)
        c.tasks = {name: c.tasks[name]}
        c.train.max_steps = max(per_task.get(name, 0) // c.train.gradient_accumulation_steps, 1)
        singles[name] = _run(c, out / f"single-{name}")["results"][name]
    report["single"] = singles
    report["joint_small"] = temps[str(small.sampler.temperature)]["results"]

    (out / "results.json").write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    (out / "results.md").write_text(render(report, cfg), encoding="utf-8")
    from mtl.curves import draw_loss_curves

    draw_loss_curves(out / "joint" / "tensorboard", out / "loss_curves.png")
    print((out / "results.md").read_text(encoding="utf-8"))
    return 0


def _fmt(metrics: dict[str, float] | None, keys: list[str] | None = None) -> str:
    if not metrics:
        return "—"
    return " · ".join(f"{k} {metrics[k]:.2f}" for k in (keys or list(metrics)))


def render(report: dict[str, Any], cfg: RunConfig) -> str:
    """The results page (Markdown)."""
    from mtl.tasks import get_task

    lines = [
        f"Held-out 20% of the real KLUE dev sets; seed {report['seed']}; joint run {report['joint']['steps']} steps "
        f"({report['joint']['seconds'] / 60:.1f} min); comparisons at {report['compare_steps']} steps, "
        f"scored on the first {report['compare_dev_examples']} held-out records of each task.",
        "",
        "| task | held-out units | trained (joint) | trivial baseline | first metric beats baseline? |",
        "|---|---:|---|---|---|",
    ]
    for name in klue_tasks():
        if name not in cfg.tasks:
            continue
        main = get_task(name).main_metric
        trained, base = report["joint"]["results"][name], report["baselines"][name]
        beat = "yes" if trained[main] > base[main] else "**no**"
        lines.append(
            f"| {name} | {report['split_counts'][name]['heldout']} | {_fmt(trained)} | {_fmt(base)} ({DESCRIPTIONS[name]}) | {beat} ({main}) |"
        )
    lines += ["", f"Comparisons ({report['compare_steps']} steps each; first official metric per task):", ""]
    header = ["task", "joint T=2", "single-task (same updates)", "T=1", "T=2", "T=5", "loop", "Trainer"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name in klue_tasks():
        if name not in cfg.tasks:
            continue
        m = get_task(name).main_metric
        row = [
            name,
            f"{report['joint_small'][name][m]:.2f}",
            f"{report['single'][name][m]:.2f} ({report['single_task_updates'].get(name, 0)} updates)",
            *(f"{report['temperature'][t][name][m]:.2f}" for t in ("1.0", "2.0", "5.0")),
            f"{report['engines']['loop'][name][m]:.2f}",
            f"{report['engines']['trainer'][name][m]:.2f}",
        ]
        lines.append("| " + " | ".join(row) + " |")
    lines += [
        "",
        f"Largest relative per-step loss difference loop vs Trainer: {report['engine_max_rel_loss_diff']:.2e}",
    ]
    return "\n".join(lines) + "\n"
