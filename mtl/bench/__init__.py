"""``klue-mtl bench``: speed and memory of the product's own code path, measured in one run.

Every figure is a ratio of two measurements taken in the same run, with the absolute numbers beside
it: padding efficiency, joint vs plain training throughput, engine overhead (and Trainer vs loop),
featurization with its cache, evaluation speed, compute efficiency against this machine's matmul
peak, and peak memory of joint vs single-task training. Writes ``bench.json`` and ``bench.md``.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["Progress", "cmd_bench", "run_bench"]


class Progress:
    """One line on stderr per phase, with the time since the run started."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def __call__(self, message: str) -> None:
        print(f"bench [{time.perf_counter() - self.start:6.1f} s]: {message}", file=sys.stderr, flush=True)


def run_bench(
    model_size: str = "tiny", data_dir: str | Path | None = None, *, quick: bool = False
) -> dict[str, Any]:
    """Run every measurement; returns what bench.json holds."""
    import torch

    from mtl.batching.prepare import resolve_path
    from mtl.bench.featurization import load_dev_splits
    from mtl.bench.machine import CpuWatch, environment
    from mtl.bench.memory import memory_ratio
    from mtl.bench.mlm import mlm_step_times
    from mtl.bench.padding import padding_efficiency
    from mtl.bench.plan import MODEL_SIZES, make_plan, max_lengths, run_config
    from mtl.bench.report import check_targets
    from mtl.bench.scoring import predict_speed, scoring_speed
    from mtl.bench.steps import BenchSession
    from mtl.bench.training import (
        compute_efficiency,
        engine_settings,
        matmul_throughput,
        training_runs,
        update_costs,
    )
    from mtl.training.session import build_session

    say, watch = Progress(), CpuWatch()
    plan = make_plan(model_size, data_dir, quick)
    results: dict[str, Any] = {"machine": environment(), "plan": plan.to_dict()}
    with tempfile.TemporaryDirectory(prefix="klue-bench-") as tmp:
        cache = Path(tmp) / "features"  # fresh: the first featurization really tokenizes
        cfg = run_config(plan, cache, Path(tmp) / "runs")
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        say(f"{plan.data.source} data from {plan.data.data_dir}; {model_size} encoder; dense matmul peak")
        results["matmul"] = matmul_throughput(plan.matmul_size, 5, device)

        say("featurization of the eight dev sets (fresh cache, then cached)")
        results["featurization"], dev = load_dev_splits(
            cfg, plan.data.dev, cache, plan.max_dev_records, plan.repeats
        )

        say("building the training session")
        session = BenchSession.wrap(build_session(cfg, Path(tmp) / "runs" / "session", progress=False))
        lengths = {t: td.train.lengths for t, td in session.data.items()}  # type: ignore[union-attr]
        results["padding_efficiency"] = padding_efficiency(
            lengths, plan.batch_sizes, max_lengths(), plan.seed
        )
        results["engine"] = engine_settings(session)
        results["engine"]["update_costs"] = update_costs(session, repeats=2)

        say(f"compute efficiency: {plan.flops_steps} timed steps of {plan.flops_batch_size} x 128 tokens")
        results["compute_efficiency"] = compute_efficiency(
            session, plan.flops_batch_size, plan.flops_steps, plan.warmup_steps, results["matmul"]
        )
        rows, length, steps = (
            (2, 32, 1) if plan.quick else ((8, 128, 2) if plan.model_size == "base" else (16, 128, 3))
        )
        say(f"masked LM: {steps} steps of {rows} x {length} tokens, masked positions only vs every position")
        results["mlm_step"] = mlm_step_times(
            MODEL_SIZES[plan.model_size], len(session.tokenizer), rows, length, steps
        )
        say(f"training: joint loop, bare replay, Trainer, plain recipe ({plan.timed_steps} timed steps each)")
        results.update(
            training_runs(session, plan.warmup_steps, plan.timed_steps, plan.compare_steps, plan.seed)
        )

        say("evaluation: official metrics on the dev predictions, predict speed")
        tasks = {t: td.task for t, td in session.data.items()}
        paths = None if plan.max_dev_records else {t: resolve_path(cfg, f) for t, f in plan.data.dev.items()}
        results["evaluation"] = {
            "scoring": scoring_speed(tasks, dev, paths, plan.repeats),
            "predict": predict_speed(
                session.model, tasks, dev, plan.predict_tokens, session.device, session.autocast_dtype
            ),
            "scored_predictions": "gold with every 5th unit altered (see mtl/bench/scoring.py)",
        }
        scoring = results["evaluation"]["scoring"]
        results["evaluation"]["slowest_metrics_seconds"] = max(r["metrics_seconds"] for r in scoring.values())
        say("serving: the Python API vs transformers.pipeline, per-task speed, memory of 1 vs 8 models")
        from mtl.bench.inference import serving_figures

        dev_files = {t: resolve_path(cfg, f) for t, f in plan.data.dev.items()}
        results["serving"] = serving_figures(session, dev, dev_files, plan, Path(tmp) / "serving")
        say("HTTP serving: analyze vs separate, micro-batching, server memory, a mixed load run")
        results["http_serving"] = _http_serving(
            model_size, data_dir, plan.quick, Path(tmp) / "serving", results["serving"]["memory"], say
        )
        del session, tasks, dev
        gc.collect()

        say("memory: joint vs single-task training, one subprocess each")
        results["memory"] = memory_ratio(cfg.to_dict(), lengths, plan.batch_sizes, torch.get_num_threads())
    results["seconds"] = round(time.perf_counter() - say.start, 1)
    results["machine"]["other_processes_cores"] = watch.others_cores()
    results["targets"] = check_targets(results)
    return results


def _http_serving(
    model_size: str,
    data_dir: str | Path | None,
    quick: bool,
    folder: Path,
    separate_memory: dict[str, Any],
    say: Progress,
) -> dict[str, Any]:
    """The ``klue-mtl serve`` figures (mtl/bench/serving.py) on the checkpoint ``serving_figures`` saved,
    against the eight exports it measured."""
    try:
        from mtl.bench.serving import serving_bench
    except ImportError as err:  # the serve extra is not installed
        return {"skipped": f"{err} (pip install 'klue-mtl[serve]')"}
    return serving_bench(
        model_size,
        data_dir,
        quick=quick,
        checkpoint=folder / "serving-checkpoint",
        separate_memory=separate_memory,
        say=say,
    )


def write_report(results: dict[str, Any], output: str | Path) -> tuple[Path, Path]:
    """bench.json and bench.md in ``output``."""
    from mtl.bench.report import render_markdown

    folder = Path(output)
    folder.mkdir(parents=True, exist_ok=True)
    json_path, md_path = folder / "bench.json", folder / "bench.md"
    json_path.write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")
    markdown = render_markdown(results)
    if "targets" in results.get("http_serving", {}):
        from mtl.bench.serving import render_markdown as serving_markdown

        markdown += "\n" + serving_markdown(results["http_serving"])
    md_path.write_text(markdown, encoding="utf-8")
    return json_path, md_path


def cmd_bench(args: argparse.Namespace) -> int:
    """``klue-mtl bench``: measure, write bench.json + bench.md, print the table."""
    Path(args.output).mkdir(parents=True, exist_ok=True)  # an unwritable folder fails before minutes of work
    results = run_bench(args.model_size, args.data_dir, quick=args.quick)
    _, md_path = write_report(results, args.output)
    print(md_path.read_text(encoding="utf-8"))
    return 0
