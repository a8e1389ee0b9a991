"""What both engines do around their optimizer steps, in one place.

The custom loop (:mod:`mtl.loop`) and the Trainer subclass (:mod:`mtl.trainer`) differ only in how
they run forward, backward and the optimizer step. Everything around that is an :class:`EngineRun`:

- the start: optimizer, schedule and batch stream restored on ``--resume``; the RNG seeded anew or
  restored (:func:`start_rng`); ``train.compile`` applied (:func:`compile_model`);
- each batch: the non-finite loss check under ``train.nan_policy`` (all DDP ranks agree), the task's
  loss weight, the running loss per task;
- each step: TensorBoard scalars (``loss/<task>``, ``loss/total``, ``lr``), evaluation and
  best-checkpoint selection every ``eval_every`` steps, a checkpoint every ``save_every`` steps and on
  SIGINT/SIGTERM (then the engine stops);
- the end: the final checkpoint, the last evaluation and the run's summary.

Both engines therefore write the same TensorBoard tags into ``<output>/tensorboard`` and the same
checkpoints, and report the same summary.
"""

from __future__ import annotations

import math
import signal
import time
from collections import defaultdict
from typing import Any

import torch
import torch.distributed as dist
from transformers import set_seed

from mtl.checkpoint import restore_rng
from mtl.errors import KlueInputError
from mtl.session import BEST, LAST, Session
from mtl.stream import MultiTaskStream
from mtl.tensorboard import TensorBoard


class StopRequested:
    """Turns SIGINT/SIGTERM into a flag checked between steps (the engine then saves and stops)."""

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
        self._previous.clear()


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


def compile_model(model: torch.nn.Module) -> None:
    """``torch.compile`` the shared encoder in place (``train.compile``).

    Only the encoder: it holds nearly all the compute, and its inputs are the same two tensors for
    every task, while the heads branch in Python per task (a compiled head would recompile per task
    and per shape). In place (``Module.compile``), so parameter names and checkpoints are unchanged.
    Shapes are dynamic from the start (every batch has its own padded length). Random operations
    (dropout) draw from the same generator as in eager mode (``fallback_random``), so a compiled
    run's losses match an eager run's (tests/test_engines.py: within 1e-4 over 20 demo steps).
    """
    model.encoder.compile(dynamic=True, options={"fallback_random": True})  # type: ignore[operator]


class EngineRun:
    """The bookkeeping of one training run, shared by the custom loop and the Trainer.

    Use as a context manager around the engine's steps: SIGINT/SIGTERM only set a flag while inside,
    and the TensorBoard writer is closed on the way out. The engine calls, in order:
    :meth:`begin` before the first step; :meth:`batch_loss` for each batch and :meth:`add_step_loss`
    with the part of the step's loss that batch contributed; :meth:`end_step` after each optimizer
    step (True: a stop was requested, the checkpoint is saved, stop now); then :meth:`finish`, or
    :meth:`stopped` when it stopped early.
    """

    def __init__(
        self,
        session: Session,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        stream: MultiTaskStream,
        *,
        progress: bool = True,
    ) -> None:
        self.session = session
        self.cfg = session.cfg.train
        self.optimizer, self.scheduler, self.stream = optimizer, scheduler, stream
        self.progress = progress
        self.weights = {name: session.cfg.tasks[name].loss_weight for name in session.data}
        # Saved with every checkpoint: the best selection score so far and the skipped-batch count.
        self.extra: dict[str, Any] = {"best_score": -math.inf, "skipped_batches": 0}
        self.start_step = 0
        if session.resume_state is not None:
            state = session.resume_state
            optimizer.load_state_dict(state.optimizer)
            scheduler.load_state_dict(state.scheduler)
            stream.load_state_dict(state.sampler)
            self.start_step = state.step
            self.extra.update(state.extra)
        self.losses: list[float] = []  # the weighted loss of every optimizer step
        self.task_means: dict[str, float] = {}  # mean loss per task over the last logging window
        self.stopped_at: int | None = None
        self._step_loss = 0.0
        self._running: dict[str, list[float]] = defaultdict(list)
        self._stop = StopRequested()
        self._t0 = 0.0
        self.tb = TensorBoard(session.output_dir / "tensorboard", enabled=session.is_main)

    def __enter__(self) -> EngineRun:
        self._stop.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.__exit__(*exc)
        self.tb.close()

    # -- the start ---------------------------------------------------------------------------------
    def begin(self) -> None:
        """Train mode, ``train.compile``, and the RNG state of the first step."""
        model = self.session.model
        model.train()
        if self.cfg.compile:
            compile_model(model)
        start_rng(self.session)
        self._t0 = time.perf_counter()

    # -- each batch --------------------------------------------------------------------------------
    def batch_loss(self, task: str, loss: torch.Tensor, step: int) -> torch.Tensor | None:
        """The batch's loss times its task's weight, or None when ``nan_policy: skip`` drops it.

        ``step`` is the run's own optimizer step (counted across resumes), named in the error that
        ``nan_policy: stop`` raises.
        """
        problem = nonfinite_loss(loss, task, self.session.world_size)
        if problem:
            if self.cfg.nan_policy == "stop":
                raise NonFiniteLoss(
                    None, f"step {step}", f"{problem}; stopped, the last checkpoint is kept", kind="at"
                )
            self.extra["skipped_batches"] += 1
            return None
        self._running[task].append(loss.item())
        return loss * self.weights[task]

    def add_step_loss(self, value: float) -> None:
        """Add a batch's share (weighted, divided by the accumulation count) to the step's loss."""
        self._step_loss += value

    # -- each step ---------------------------------------------------------------------------------
    def end_step(self, step: int) -> bool:
        """Log, evaluate and save as configured after optimizer step ``step``; True: stop now."""
        cfg = self.cfg
        self.losses.append(self._step_loss)
        if step % cfg.log_every == 0 or step == cfg.max_steps:
            self.task_means = {t: sum(v) / len(v) for t, v in self._running.items() if v}
            for task, value in self.task_means.items():
                self.tb.scalar(f"loss/{task}", value, step)
            self.tb.scalar("loss/total", self._step_loss, step)
            self.tb.scalar("lr", self.scheduler.get_last_lr()[0], step)
            self._running.clear()
        self._step_loss = 0.0
        if cfg.eval_every and step % cfg.eval_every == 0 and step != cfg.max_steps:
            self.evaluate_and_select(step)
        if (cfg.save_every and step % cfg.save_every == 0) or self._stop.requested:
            self.checkpoint(step)
        if self._stop.requested:
            self.stopped_at = step
        return self._stop.requested

    def checkpoint(self, step: int) -> None:
        """Weights and training state as ``<output>/last`` (what ``--resume`` continues from)."""
        state = self.session.training_state(step, self.optimizer, self.scheduler, self.stream, self.extra)
        self.session.save(LAST, state)

    def evaluate_and_select(self, step: int) -> dict[str, dict[str, float]]:
        """Dev metrics of every task; ``<output>/best`` when ``train.select_metric`` improved."""
        session = self.session
        results = session.evaluate(progress=self.progress)
        if not results:
            return results
        for task, metrics in results.items():
            for name, value in metrics.items():
                self.tb.scalar(f"dev/{task}/{name}", value, step)
        score = session.selection_score(results)
        session.history.append({"step": step, "score": score, "results": results})
        if score > self.extra["best_score"]:
            self.extra["best_score"], self.extra["best_step"] = score, step
            session.save(BEST, None)
        return results

    # -- the end -----------------------------------------------------------------------------------
    def finish(self) -> dict[str, Any]:
        """After the last step: save, evaluate and select, save again with the final best score.

        Returns the summary: ``steps``, ``stopped`` (False), ``losses`` (per step), ``results`` (the
        final dev metrics), ``seconds`` (training time, without the final evaluation), and ``extra``'s
        ``best_score``, ``best_step``, ``skipped_batches``.
        """
        seconds = time.perf_counter() - self._t0
        step = self.cfg.max_steps
        self.checkpoint(step)
        results = self.evaluate_and_select(step)
        self.checkpoint(step)
        return {
            "steps": step,
            "stopped": False,
            "losses": self.losses,
            "results": results,
            "seconds": seconds,
            **self.extra,
        }

    def stopped(self) -> dict[str, Any]:
        """The summary of a run stopped by a signal (its checkpoint is saved by :meth:`end_step`)."""
        return {"steps": self.stopped_at, "stopped": True, "losses": self.losses, **self.extra}
