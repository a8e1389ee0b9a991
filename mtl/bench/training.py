"""Training measurements: joint vs plain throughput, engine overhead, Trainer vs loop, compute efficiency.

Every run trains the same session (model, heads, optimizer recipe) with the product's engines; only
the batch stream differs. Step times come from :mod:`mtl.bench.steps`; the first ``warmup`` steps of
each run are left out.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from mtl.bench.machine import CpuWatch
from mtl.bench.steps import BenchSession, FixedStream, PlainStream, replay_bare, run_engine, sync
from mtl.modeling.model import MultiTaskModel
from mtl.training.loop import train_loop
from mtl.training.trainer import train_with_trainer

# Parameter names of the lookup tables: an embedding lookup is a gather, not a matmul.
EMBEDDING_MATRICES = ("word_embeddings", "position_embeddings", "token_type_embeddings")


def matmul_throughput(size: int, repeats: int, device: torch.device) -> dict[str, Any]:
    """FLOP/s of a dense ``size`` x ``size`` fp32 matmul: median and best of ``repeats`` (one warm-up)."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    a @ b
    rates = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        a @ b
        sync(device)
        rates.append(2 * size**3 / (time.perf_counter() - t0))
    return {
        "size": size,
        "dtype": "float32",
        "median_flops": float(np.median(rates)),
        "best_flops": max(rates),
    }


def matmul_parameters(model: MultiTaskModel, task: str) -> int:
    """Parameters of the encoder and ``task``'s head, without the embedding matrices."""
    encoder = sum(
        p.numel() for n, p in model.encoder.named_parameters() if not any(e in n for e in EMBEDDING_MATRICES)
    )
    return encoder + sum(p.numel() for p in model.heads[task].parameters())


def training_flops(model: MultiTaskModel, task: str, rows: int, length: int) -> float:
    """Training FLOPs of one step: 6 x params x tokens, plus the attention scores (12 x layers x T x H per token)."""
    config = model.encoder.config
    tokens = rows * length
    attention = 12 * config.num_hidden_layers * length * config.hidden_size
    return float(tokens * (6 * matmul_parameters(model, task) + attention))


def compute_efficiency(
    session: BenchSession, rows: int, steps: int, warmup: int, peak: dict[str, Any]
) -> dict[str, Any]:
    """Achieved training FLOP/s on sentence-classification batches of ``rows`` x 128 real tokens, as a fraction of the matmul peak."""
    # The first sentence classification task of the run (YNAT in the bench): a head of negligible cost.
    length = 128
    task, td = next((n, td) for n, td in session.data.items() if td.task.head_kind == "classification")
    num_labels = td.task.head_args()["num_labels"]
    vocab = session.model.encoder.get_input_embeddings().num_embeddings
    generator = torch.Generator().manual_seed(0)
    batch = {
        "task": task,
        "input_ids": torch.randint(5, vocab, (rows, length), generator=generator).to(session.device),
        "attention_mask": torch.ones(rows, length, dtype=torch.long, device=session.device),
        "labels": torch.randint(0, num_labels, (rows,), generator=generator).to(session.device),
    }
    log = run_engine(session, train_loop, warmup + steps, lambda s: FixedStream([batch])).timed(warmup)
    flops = training_flops(session.model, task, rows, length)
    achieved = flops / float(np.median(log.seconds))
    return {
        "batch": [rows, length],
        "matmul_parameters": matmul_parameters(session.model, task),
        "flops_per_step": flops,
        "median_step_seconds": round(float(np.median(log.seconds)), 4),
        "achieved_flops": achieved,
        "peak_matmul_flops": peak["best_flops"],
        "fraction_of_peak": round(achieved / peak["best_flops"], 4),
        "counted": "6 x (encoder + head parameters, embedding matrices excluded) x tokens "
        "+ 12 x layers x sequence length x hidden per token (attention scores); "
        "peak = best of the fp32 matmul repeats",
    }


def update_costs(session: BenchSession, repeats: int) -> dict[str, Any]:
    """Seconds of the per-step work that does not depend on the batch: clipping and the AdamW step.

    Measured over the encoder's parameters with gradients set (every step has them: the embedding
    gradient is dense), with the product's optimizer; explains the fixed part of every step time.
    """
    params = [p for p in session.model.encoder.parameters() if p.requires_grad]
    for p in params:
        p.grad = torch.zeros_like(p)
    optimizer, _ = session.make_optimizer(session.model.encoder)
    optimizer.step()  # allocates the moment estimates
    clip, step = [], []
    for _ in range(repeats):
        sync(session.device)
        t0 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(params, session.cfg.train.max_grad_norm or 1.0)
        sync(session.device)
        t1 = time.perf_counter()
        optimizer.step()
        sync(session.device)
        clip.append(t1 - t0)
        step.append(time.perf_counter() - t1)
    optimizer.zero_grad(set_to_none=True)
    del optimizer
    return {
        "parameters": sum(p.numel() for p in params),
        "clip_seconds": round(float(np.median(clip)), 4),
        "adamw_step_seconds": round(float(np.median(step)), 4),
    }


def per_step_ratio(a: list[float], b: list[float]) -> float:
    """Median over steps of a[i] / b[i] (the same batches): robust to a noisy step."""
    return float(np.median(np.asarray(a) / np.asarray(b)))


def training_runs(session: BenchSession, warmup: int, steps: int, compare: int, seed: int) -> dict[str, Any]:
    """Joint (custom loop) vs plain throughput; bare steps and the Trainer over the joint run's first batches."""
    busy: dict[str, float | None] = {}  # cores other processes used during each run
    watch = CpuWatch()
    joint_all = run_engine(session, train_loop, warmup + steps)
    joint = joint_all.timed(warmup)
    busy["joint_loop"], watch = watch.others_cores(), CpuWatch()
    compare = min(compare, steps)
    engine = joint.seconds[:compare]
    bare = replay_bare(session, joint_all, warmup + compare)[warmup:]
    busy["bare"], watch = watch.others_cores(), CpuWatch()
    trainer = run_engine(session, train_with_trainer, warmup + compare).timed(warmup)
    busy["trainer"], watch = watch.others_cores(), CpuWatch()
    # The Trainer draws from the same seeded stream, so it sees the loop's batches in the same order.
    same_batches = (
        trainer.tasks == joint.tasks[:compare] and trainer.real_tokens == joint.real_tokens[:compare]
    )

    # The plain recipe trains the same number of batches of each task, one task after the other.
    counts = {t: joint.tasks.count(t) for t in session.data if t in joint.tasks}
    order = [(joint.tasks[0], warmup)] + list(counts.items())
    plain = run_engine(
        session,
        train_loop,
        warmup + steps,
        lambda s: PlainStream(s.data, order, seed, s.device),
    ).timed(warmup)
    busy["plain_recipe"] = watch.others_cores()

    joint_rate = sum(joint.real_tokens) / joint.total_seconds
    plain_rate = sum(plain.real_tokens) / plain.total_seconds
    return {
        "throughput": {
            "joint_loop": joint.summary(),
            "plain_recipe": plain.summary(),
            "speedup": round(joint_rate / plain_rate, 3),
        },
        "other_processes_cores": busy,
        "engine_overhead": {
            "steps": compare,
            "engine_seconds_per_step": round(sum(engine) / compare, 4),
            "bare_seconds_per_step": round(sum(bare) / compare, 4),
            "overhead": round(per_step_ratio(engine, bare) - 1, 4),
            "overhead_of_totals": round(sum(engine) / sum(bare) - 1, 4),
            "measured": "median over steps of loop step time / bare step time (forward, backward, clipping, "
            "AdamW and schedule steps only) on the same batches",
        },
        "trainer_vs_loop": {
            "steps": compare,
            "trainer_seconds_per_step": round(trainer.total_seconds / compare, 4),
            "loop_seconds_per_step": round(sum(engine) / compare, 4),
            "difference": round(per_step_ratio(trainer.seconds, engine) - 1, 4),
            "same_batches": same_batches,
        },
    }


def engine_settings(session: BenchSession) -> dict[str, Any]:
    """What the engines ran with: device, autocast, optimizer implementation, compile switch."""
    optimizer, _ = session.make_optimizer()
    defaults = optimizer.defaults
    return {
        "device": str(session.device),
        "autocast_dtype": str(session.autocast_dtype).replace("torch.", "")
        if session.autocast_dtype
        else None,
        "param_dtype": str(next(session.model.parameters()).dtype).replace("torch.", ""),
        "optimizer": f"AdamW (fused={bool(defaults.get('fused'))}, foreach={defaults.get('foreach')})",
        "compile": session.cfg.train.compile,
        "gradient_accumulation_steps": session.cfg.train.gradient_accumulation_steps,
    }
