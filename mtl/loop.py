"""The custom PyTorch training loop: readable in one sitting.

Each optimizer step takes ``gradient_accumulation_steps`` batches from the multi-task stream
(each batch one task, chosen by the temperature sampler), scales each task's loss by its weight and
by the accumulation count, clips, steps AdamW and the schedule. Around that: periodic evaluation
with the official metrics, best-checkpoint selection, TensorBoard, a progress bar with the running
loss per task, checkpoints that ``--resume`` continues bit for bit, and a clean stop on SIGINT/SIGTERM.
"""

from __future__ import annotations

import math
import signal
import time
from collections import defaultdict
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm
from transformers import set_seed

from mtl.checkpoint import restore_rng
from mtl.errors import KlueInputError
from mtl.session import BEST, LAST, Session
from mtl.tensorboard import TensorBoard


class StopRequested:
    """Turns SIGINT/SIGTERM into a flag the loop checks between steps (then it saves and exits)."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopRequested:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = True

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class NonFiniteLoss(KlueInputError):
    """A NaN/inf loss under ``nan_policy: stop``."""


def nonfinite_loss(loss: torch.Tensor, task: str, world_size: int) -> str | None:
    """Why the batch's loss cannot be used (NaN/inf here or, under DDP, on any rank), else None.

    Under DDP every rank must take the same branch: a rank that skipped its backward while the others
    ran theirs would leave them waiting forever in the gradient all-reduce.
    """
    bad = torch.tensor(0.0 if torch.isfinite(loss) else 1.0, device=loss.device)
    if world_size > 1:
        dist.all_reduce(bad, op=dist.ReduceOp.MAX)
    if not bad.item():
        return None
    if torch.isfinite(loss):
        return f"the {task} loss is not finite on another rank"
    return f"the {task} loss is {loss.item()}"


def start_rng(session: Session) -> None:
    """The RNG state at the first step: seeded anew (both engines alike), or restored on resume."""
    if session.resume_state is not None and session.resume_state.rng is not None:
        restore_rng(session.resume_state.rng)
    else:
        set_seed(session.cfg.train.seed)


def train_loop(session: Session, *, progress: bool = True) -> dict[str, Any]:
    """Train with the custom loop; returns a summary (steps, losses per task, final metrics)."""
    cfg, model = session.cfg.train, session.model
    weights = {name: session.cfg.tasks[name].loss_weight for name in session.data}
    accum = cfg.gradient_accumulation_steps
    stream = session.make_stream()
    optimizer, scheduler = session.make_optimizer()
    ddp = DistributedDataParallel(model, find_unused_parameters=True) if session.world_size > 1 else None
    forward = ddp or model

    start, extra = 0, {"best_score": -math.inf, "skipped_batches": 0}
    if session.resume_state is not None:
        state = session.resume_state
        optimizer.load_state_dict(state.optimizer)
        scheduler.load_state_dict(state.scheduler)
        stream.load_state_dict(state.sampler)
        start, extra = state.step, {**extra, **state.extra}
    tb = TensorBoard(session.output_dir / "tensorboard", enabled=session.is_main)
    running: dict[str, list[float]] = defaultdict(list)
    losses: list[float] = []
    device_type = session.device.type
    autocast = session.autocast_dtype

    def checkpoint(step: int) -> None:
        session.save(LAST, session.training_state(step, optimizer, scheduler, stream, extra))

    model.train()
    start_rng(session)
    bar = tqdm(
        total=cfg.max_steps,
        initial=start,
        desc="train",
        unit="step",
        disable=not (progress and session.is_main),
    )
    t0 = time.perf_counter()
    with StopRequested() as stop:
        for step in range(start + 1, cfg.max_steps + 1):
            step_loss = 0.0
            for _ in range(accum):
                batch = next(stream)
                task = batch.pop("task")
                with torch.autocast(
                    device_type, dtype=autocast or torch.float32, enabled=autocast is not None
                ):
                    loss = forward(task, **batch).loss
                problem = nonfinite_loss(loss, task, session.world_size)
                if problem:
                    if cfg.nan_policy == "stop":
                        raise NonFiniteLoss(
                            None,
                            f"step {step}",
                            f"{problem}; stopped, the last checkpoint is kept",
                            kind="at",
                        )
                    extra["skipped_batches"] += 1
                    continue
                scaled = loss * weights[task] / accum
                scaled.backward()
                running[task].append(loss.item())
                step_loss += scaled.item()
            if cfg.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(step_loss)
            bar.update(1)

            if step % cfg.log_every == 0 or step == cfg.max_steps:
                means = {t: sum(v) / len(v) for t, v in running.items() if v}
                bar.set_postfix({t: f"{v:.3f}" for t, v in means.items()})
                for t, v in means.items():
                    tb.scalar(f"loss/{t}", v, step)
                tb.scalar("loss/total", step_loss, step)
                tb.scalar("lr", scheduler.get_last_lr()[0], step)
                running.clear()
            if cfg.eval_every and step % cfg.eval_every == 0 and step != cfg.max_steps:
                _evaluate_and_select(session, step, extra, tb, progress)
            if cfg.save_every and step % cfg.save_every == 0:
                checkpoint(step)
            if stop.requested:
                checkpoint(step)
                bar.close()
                return {"steps": step, "stopped": True, "losses": losses, **extra}
    bar.close()
    elapsed = time.perf_counter() - t0
    checkpoint(cfg.max_steps)
    results = _evaluate_and_select(session, cfg.max_steps, extra, tb, progress)
    checkpoint(cfg.max_steps)  # with the final best score recorded
    tb.close()
    return {
        "steps": cfg.max_steps,
        "stopped": False,
        "losses": losses,
        "results": results,
        "seconds": elapsed,
        **extra,
    }


def _evaluate_and_select(session: Session, step: int, extra: dict, tb: TensorBoard, progress: bool) -> dict:
    results = session.evaluate(progress=progress)
    if not results:
        return results
    for task, metrics in results.items():
        for name, value in metrics.items():
            tb.scalar(f"dev/{task}/{name}", value, step)
    score = session.selection_score(results)
    session.history.append({"step": step, "score": score, "results": results})
    if score > extra["best_score"]:
        extra["best_score"], extra["best_step"] = score, step
        session.save(BEST, None)
    return results
