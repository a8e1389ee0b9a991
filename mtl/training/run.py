"""What both engines do around their optimizer steps, in one place.

The custom loop (:mod:`mtl.training.loop`) and the Trainer subclass (:mod:`mtl.training.trainer`) differ only in how
they run forward, backward and the optimizer step. Everything around that is an :class:`EngineRun`:

- the start: optimizer, schedule and batch stream restored on ``--resume``; the RNG seeded anew or
  restored (:func:`start_rng`); ``train.compile`` applied (:func:`compile_model`);
- each batch: the task's loss weighting (``train.weighting``, :mod:`mtl.training.strategies`), the
  running loss per task (kept on the device);
- with ``train.tasks_per_step`` > 1, each group of task batches (:meth:`EngineRun.group_step`): every
  task's forward and weighted loss, backward of their sum or through ``train.aggregator``;
- each step: the non-finite check under ``train.nan_policy`` on the clipped gradient norm (the one
  host sync of a step; under DDP the norm is of the all-reduced gradients, so every rank decides
  alike), fp16 loss scaling (:mod:`mtl.modeling.precision`), the progress bar or log line (:mod:`mtl.training.progress`), the scalars (``loss/<task>``,
  ``loss/total``, ``lr``) to ``train.report_to`` (:mod:`mtl.tracking.reporters`), evaluation and best-checkpoint
  selection every ``eval_every`` steps, per-task evaluation ``evals_per_epoch`` times per epoch of each
  task, a checkpoint every ``save_every`` steps and on SIGINT/SIGTERM (then the engine stops, and the
  command exits 128 + the signal's number; under DDP a signal on any rank stops every rank after the
  same step, :class:`StopRequested`);
- the end: the final checkpoint, the last evaluation and the run's summary.

Losses stay on the device and are read to the host every ``log_every`` steps (one sync), so outside
logging, evaluation and checkpoint steps the device never waits for Python more than once per step.

Checkpoint selection is twofold. The joint best (``<output>/best``) maximises ``train.select_metric``
over evaluations of all tasks. Each task's own best (``<output>/best-<task>``, listed in
``<output>/task_best.json``) maximises that task's selection metric (:meth:`mtl.tasks.base.Task.select_metric`)
over every evaluation of the task; it is a complete checkpoint (weights only, no optimizer state), so
``evaluate``, ``predict`` and ``finetune`` take it like any other. Checkpoints of one step share one
copy of the weights on disk (:meth:`mtl.training.session.Session.save`).

Both engines therefore write the same tags into ``<output>/tensorboard/<run>`` (one folder per run and
per resume) and the same checkpoints, and report the same summary.
"""

from __future__ import annotations

import json
import math
import signal
import sys
import time
from collections import defaultdict
from contextlib import nullcontext
from typing import Any

import torch
import torch.distributed as dist
from transformers import set_seed

from mtl.batching.stream import MultiTaskStream
from mtl.errors import KlueInputError
from mtl.layout import BEST, INTERACTION_DIR, LAST, TASK_BEST_JSON, task_best_dir
from mtl.modeling.encoder import enable_gradient_checkpointing
from mtl.modeling.precision import autocast, make_grad_scaler
from mtl.tracking.reporters import Reporter
from mtl.training.checkpoint import restore_rng
from mtl.training.memory import check_memory
from mtl.training.progress import Progress, is_terminal
from mtl.training.session import Session
from mtl.training.strategies.aggregation import aggregated_backward, build_aggregator, encoder_outputs


def task_eval_intervals(session: Session) -> dict[str, int]:
    """Steps between evaluations of each task alone (:func:`mtl.training.budget.own_eval_intervals`).

    ``train.evals_per_epoch`` per epoch of the task, with the epochs the budget plans for it (the
    numbers the sampler runs on), for the tasks that ``train.eval_every`` evaluates less often than
    that. Tasks without dev data have none.
    """
    from mtl.training.budget import budget_rows, own_eval_intervals

    rows = budget_rows(session.cfg, session.train_sizes(), session.world_size)
    intervals = own_eval_intervals(session.cfg, rows)
    return {task: every for task, every in intervals.items() if session.data[task].dev is not None}


class StopRequested:
    """Turns SIGINT/SIGTERM into a request read between steps (the engine then saves and stops).

    Under DDP each process gets its signals at its own point of a step, or alone (a signal sent to one
    worker): a rank that stopped by itself would wait in the checkpoint's gather while the others run
    the next step's gradient all-reduce. So the ranks agree once per step (:meth:`agreed`).
    """

    def __init__(self, world_size: int = 1) -> None:
        self.signal: int | None = None  # the last signal this process received
        self._previous: dict[int, Any] = {}
        self._distributed = world_size > 1
        # Agreed on a CPU tensor over gloo, so that on NCCL the device stream gets no extra sync. Every
        # rank builds its EngineRun at the same point, as new_group requires.
        self._group: dist.ProcessGroup | None = None  # None: the default group
        if self._distributed and dist.get_backend() != dist.Backend.GLOO:
            self._group = dist.new_group(backend=dist.Backend.GLOO)

    def __enter__(self) -> StopRequested:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.signal = signum

    def agreed(self) -> int | None:
        """The signal that stops every rank after this step (None: go on); call once per step.

        Under DDP, the largest signal number any rank received (SIGTERM over SIGINT), from an
        all-reduce MAX, so that every rank saves, stops and exits alike. One process: no collective.
        """
        received = self.signal  # read once: the handler may set it at any moment
        if not self._distributed:
            return received
        flag = torch.tensor([received or 0])
        dist.all_reduce(flag, op=dist.ReduceOp.MAX, group=self._group)
        return int(flag.item()) or None

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


class NonFiniteLoss(KlueInputError):
    """A NaN/inf loss or gradient under ``nan_policy: stop``."""


def start_rng(session: Session) -> None:
    """The RNG state at the first step: seeded anew (both engines alike), or restored on resume.

    Each rank restores its own saved state. Resumed on more processes than saved, the new ranks are
    seeded anew; on fewer, the states of the missing ranks are left unused (a note says so).
    """
    saved = session.resume_state.rng if session.resume_state is not None else None
    if saved and session.rank < len(saved):
        restore_rng(saved[session.rank])
    else:
        if saved:
            print(f"note: the checkpoint has no random state for rank {session.rank}: seeded anew")
        set_seed(session.cfg.train.seed)
    if saved and session.is_main and len(saved) > session.world_size:
        print(
            f"note: the checkpoint holds the random states of {len(saved)} processes, this run has "
            f"{session.world_size}: those of rank {session.world_size}..{len(saved) - 1} are not used"
        )


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
    with the part of the step's loss that batch contributed; :meth:`update_allowed` with the clipped
    gradient norm before the optimizer step (False: skip it), and the schedule's step unless
    :attr:`advance_schedule` is then False; :meth:`end_step` after each optimizer
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
        # Evaluation's per-task bars only on a terminal (elsewhere they would be carriage-return spam).
        self.progress = progress and is_terminal(sys.stderr)
        self.weighting = session.weighting
        self.aggregator = build_aggregator(self.cfg.aggregator)
        # Saved with every checkpoint: the best selection score so far and the skipped-batch count.
        # task_best: per task {"metric", "value", "step"} of its own best evaluation so far.
        # overflow_steps: fp16 steps the loss scaler skipped (it then halves the scale).
        self.extra: dict[str, Any] = {
            "best_score": -math.inf,
            "skipped_steps": 0,
            "overflow_steps": 0,
            "task_best": {},
        }
        #: fp16's loss scaler (None under bf16/fp32); the Trainer engine hands it to accelerate
        self.scaler = make_grad_scaler(session.autocast_dtype, session.device)
        #: whether the current step advances the learning-rate schedule (:meth:`update_allowed` decides)
        self.advance_schedule = True
        self.start_step = 0
        if session.resume_state is not None:
            state = session.resume_state
            optimizer.load_state_dict(state.optimizer)
            scheduler.load_state_dict(state.scheduler)
            stream.load_state_dict(state.sampler)
            if self.scaler is not None and state.scaler is not None:
                self.scaler.load_state_dict(state.scaler)
            self.start_step = state.step
            self.extra.update(state.extra)
            line = self.resume_line()  # on every rank: it also sets a stretched schedule's rate
            if session.is_main:
                print(line, flush=True)
            self.weighting.load_state(self.extra.get("weighting", {}))
        self.losses: list[float] = []  # the weighted loss of every optimizer step (NaN: not finite)
        self.task_means: dict[str, float] = {}  # mean loss per task over the last logging window
        self.stopped_at: int | None = None
        self.stop_signal: int | None = None  # the signal the ranks agreed to stop on
        self.eval_intervals = task_eval_intervals(session)
        # On the device until the next logging step: this step's loss and its batches' (task, loss),
        # the step losses not read yet, and the batch losses of the logging window per task.
        self._step_loss: torch.Tensor | None = None
        self._step_batches: list[tuple[str, torch.Tensor]] = []
        self._unread: list[torch.Tensor] = []
        self._running: dict[str, list[torch.Tensor]] = defaultdict(list)
        self._window: list[float] = []  # the finite step losses since the last log
        self._stop = StopRequested(session.world_size)
        self._t0 = 0.0
        self.tb = Reporter(
            session.output_dir,
            self.cfg.report_to,
            start_step=self.start_step,
            config=session.cfg.to_dict(),
            enabled=session.is_main,
        )
        self.progress_bar = Progress(
            self.cfg.max_steps, self.start_step, list(session.data), enabled=progress and session.is_main
        )

    def resume_line(self) -> str:
        """The step a resume continues from; when ``train.max_steps`` changed, the rescaled schedule.

        Another ``max_steps`` (larger, or smaller but not before the step) keeps the schedule's shape
        over the new length (warm-up ratio and decay to the new last step), so the learning rate jumps
        from the old schedule's value to the new one's at the same step: the groups start from it
        now, and the line says both ends.
        """
        step, total = self.start_step, self.cfg.max_steps
        planned = self.session.resumed_max_steps or total
        text = f"resuming from step {step} of {total}"
        if planned == total:
            return text
        scheduler = self.scheduler
        for group, base, factor in zip(
            self.optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas, strict=True
        ):
            group["lr"] = base * factor(step)
        now, end = self.optimizer.param_groups[0]["lr"], self.lr_at(total)
        return (
            f"{text}: train.max_steps {planned} -> {total}, the learning-rate schedule is "
            f"{'stretched' if total > planned else 'shortened'} to "
            f"{total} steps (its shape kept): lr {now:.3g} now (the old schedule's was "
            f"{scheduler.get_last_lr()[0]:.3g}), {end:.3g} at step {total}"
        )

    def lr_at(self, step: int) -> float:
        """The first group's learning rate at ``step`` under the current schedule."""
        return self.scheduler.base_lrs[0] * self.scheduler.lr_lambdas[0](step)

    def __enter__(self) -> EngineRun:
        self._stop.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.__exit__(*exc)
        self.progress_bar.close()
        self.tb.close()

    # -- the start ---------------------------------------------------------------------------------
    def prepare(self) -> None:
        """The memory check, gradient checkpointing and ``train.compile``, on the bare model.

        Before the engine wraps the model in ``DistributedDataParallel``: the check's backward passes
        on a wrapped model would fire DDP's gradient hooks and mark every head as used, and the
        first step, which trains one task, would then stop with DDP's "gradient which is undefined,
        but still allreduced" error.
        """
        model = self.session.model
        model.train()
        check_memory(self.session)  # may turn train.gradient_checkpointing on
        if self.cfg.gradient_checkpointing:
            enable_gradient_checkpointing(model.encoder)
        if self.cfg.compile:
            compile_model(model)

    def begin(self) -> None:
        """Train mode and the RNG state of the first step (set after :meth:`prepare`, whose forward
        passes draw dropout masks), just before it."""
        self.session.model.train()
        start_rng(self.session)
        self._t0 = time.perf_counter()

    # -- each batch --------------------------------------------------------------------------------
    def batch_loss(self, task: str, loss: torch.Tensor) -> torch.Tensor:
        """The batch's loss times its task's weight; the loss is kept (on the device) for the logs."""
        self._step_batches.append((task, loss.detach()))
        return self.weighting.weigh(task, loss)

    def add_step_loss(self, value: torch.Tensor) -> None:
        """Add a batch's share (weighted, divided by the accumulation count) to the step's loss."""
        value = value.detach()
        self._step_loss = value if self._step_loss is None else self._step_loss + value

    def group_step(
        self, forward: Any, group: dict[str, dict[str, Any]], *, sync: bool = True
    ) -> torch.Tensor:
        """One micro-step of ``train.tasks_per_step`` tasks: each task's forward, weighted loss, backward.

        ``forward`` is the model or its DDP wrapper; ``group`` maps each task to its batch. Each
        weighted loss is divided by the accumulation count and added to the step's loss. Under
        ``train.aggregator: sum`` every task back-propagates right after its forward (the gradient of
        the sum, one task's activations in memory at a time; under DDP only the last backward of a
        ``sync`` micro-step all-reduces). Otherwise the K losses go through the aggregator together:
        each head gets its own gradient, the encoder the aggregate. Both engines call this. Returns the
        group's share of the step's loss (on the device).
        """
        session, accum, scaler = self.session, self.cfg.gradient_accumulation_steps, self.scaler
        ddp = forward if isinstance(forward, torch.nn.parallel.DistributedDataParallel) else None
        losses: dict[str, torch.Tensor] = {}
        shares: list[torch.Tensor] = []
        capture = encoder_outputs(session.model.encoder) if self.aggregator else nullcontext([])
        with capture as features:
            for i, (task, batch) in enumerate(group.items()):
                last = sync and i == len(group) - 1
                with nullcontext() if ddp is None or last else ddp.no_sync():
                    with autocast(session.device, session.autocast_dtype):
                        loss = forward(task, **batch).loss
                    scaled = self.batch_loss(task, loss) / accum
                    self.add_step_loss(scaled)
                    shares.append(scaled.detach())
                    scaled = scaler.scale(scaled) if scaler is not None else scaled
                    if self.aggregator is None:
                        scaled.backward()
                    else:
                        losses[task] = scaled
        if self.aggregator is not None:
            params = list(self.weighting.parameters())
            aggregated_backward(self.aggregator, losses, features, session.model, params)
        return torch.stack(shares).sum()

    # -- each step ---------------------------------------------------------------------------------
    def update_allowed(self, grad_norm: torch.Tensor, step: int) -> bool:
        """Whether optimizer step ``step`` may apply its gradients, from their (clipped) norm.

        Reading the norm is the step's one host sync. A finite norm: yes. Under fp16 loss scaling
        with the scale still above 1, a non-finite norm is an overflow of the scaled gradients: no,
        the scaler skips the update and halves the scale (counted in ``overflow_steps``). Otherwise
        the step is not finite: ``nan_policy: stop`` raises :class:`NonFiniteLoss` naming the step and
        the batch, ``skip`` drops the gradients (the optimizer then leaves every parameter and its
        state alone, like a skipped fp16 step) and counts it in ``skipped_steps``.

        Sets :attr:`advance_schedule`: the learning-rate schedule holds back on a step the fp16 loss
        scaler skips (any non-finite step under fp16, as torch's amp recipe and accelerate do) and
        advances on every other, a step skipped under ``nan_policy: skip`` without a scaler included.
        """
        finite = bool(torch.isfinite(grad_norm).item())
        self.advance_schedule = finite or self.scaler is None
        if finite:
            return True
        if self.scaler is not None and self.scaler.get_scale() > 1.0:
            self.extra["overflow_steps"] += 1
            return False
        if self.cfg.nan_policy == "stop":
            raise NonFiniteLoss(
                None,
                f"step {step}",
                f"{self._nonfinite_cause()}; stopped, the last checkpoint is kept",
                kind="at",
            )
        self.extra["skipped_steps"] += 1
        self.optimizer.zero_grad(set_to_none=True)
        return False

    def _nonfinite_cause(self) -> str:
        """Which batch of the step made it non-finite (read only when one did)."""
        for task, loss in self._step_batches:
            if not torch.isfinite(loss):
                return f"the {task} loss is {loss.item()}"
        return "the gradient norm is not finite (every loss on this rank is: another rank's batch or the backward pass)"

    # -- each step ---------------------------------------------------------------------------------
    def end_step(self, step: int) -> bool:
        """Log, evaluate and save as configured after optimizer step ``step``; True: stop now.

        A stop asked by SIGINT/SIGTERM (on any rank, under DDP) is read once, at the start: every rank
        then saves ``last`` at this step and stops.
        """
        cfg = self.cfg
        stop = self._stop.agreed()
        if self._step_loss is not None:
            self._unread.append(self._step_loss)
        for task, loss in self._step_batches:
            self._running[task].append(loss)
        self._step_loss, self._step_batches = None, []
        logged = step % cfg.log_every == 0 or step == cfg.max_steps
        if logged or stop:
            self.read_losses()
        lr = self.scheduler.get_last_lr()[0]
        window_mean = sum(self._window) / len(self._window) if self._window else math.nan
        if logged:
            for task, value in self.task_means.items():
                self.tb.scalar(f"loss/{task}", value, step)
            # The mean over the window, like the per-task losses (one step's loss is one task's batch).
            self.tb.scalar("loss/total", window_mean, step)
            self.tb.scalar("lr", lr, step)
        self.progress_bar.step(step, self.task_means if logged else None, window_mean, lr)
        self.strategy_step(step, logged)
        if logged:
            self._window.clear()
        if step != cfg.max_steps:  # the final evaluation is finish()'s
            if cfg.eval_every and step % cfg.eval_every == 0:
                self.evaluate_and_select(step)
            else:
                due = [t for t, every in self.eval_intervals.items() if step % every == 0]
                if due:
                    self.evaluate_tasks(step, due)
        if (cfg.save_every and step % cfg.save_every == 0) or stop:
            self.checkpoint(step)
        if stop:
            self.stopped_at, self.stop_signal = step, stop
        return stop is not None

    def read_losses(self) -> None:
        """Bring the step and batch losses kept on the device to the host, in one sync.

        Non-finite values (a step skipped under ``nan_policy: skip``) stay in ``losses`` as NaN but
        out of the window's means.
        """
        tasks = [t for t, v in self._running.items() if v]
        parts = [*self._unread, *(v for t in tasks for v in self._running[t])]
        if not parts:
            return
        values = torch.stack([p.float() for p in parts]).tolist()
        steps, values = values[: len(self._unread)], values[len(self._unread) :]
        self.losses.extend(steps)
        self._window.extend(v for v in steps if math.isfinite(v))
        means = {}
        for task in tasks:
            n = len(self._running[task])
            finite = [v for v in values[:n] if math.isfinite(v)]
            values = values[n:]
            if finite:
                means[task] = sum(finite) / len(finite)
        self.task_means = means
        self._unread.clear()
        self._running.clear()

    def strategy_step(self, step: int, logged: bool) -> None:
        """After each step: the weighting's running state, its weights logged, the interaction probe."""
        self.weighting.end_step(step)
        # The Trainer zeroes only the model's gradients; learned weights must not accumulate theirs.
        self.weighting.zero_grad(set_to_none=True)
        if logged and self.cfg.weighting != "static":
            for task, weight in self.weighting.weights().items():
                self.tb.scalar(f"weight/{task}", weight, step)
        every = self.cfg.interaction_every
        if every and step % every == 0 and self.session.is_main:
            from mtl.evaluation.interaction import measure_session, report_interaction

            result = measure_session(self.session, source=f"step {step}")
            report_interaction(
                result, self.session.output_dir / INTERACTION_DIR / f"step-{step}", self.tb, step
            )

    def checkpoint(self, step: int) -> None:
        """Weights and training state as ``<output>/last`` (what ``--resume`` continues from)."""
        state = self.weighting.state()
        if state:  # absent for static weights: their checkpoints stay as they were
            self.extra["weighting"] = state
        state = self.session.training_state(
            step, self.optimizer, self.scheduler, self.stream, self.extra, self.scaler
        )
        self.session.save(LAST, state, step)

    def evaluate_and_select(self, step: int) -> dict[str, dict[str, float]]:
        """Dev metrics of every task; ``<output>/best`` when ``train.select_metric`` improved."""
        session = self.session
        results = self.evaluate_tasks(step, None)
        if not results:
            return results
        score = session.selection_score(results)
        session.history.append({"step": step, "score": score, "results": results})
        if score > self.extra["best_score"]:
            self.extra["best_score"], self.extra["best_step"] = score, step
            session.save(BEST, None, step)
            self.write_task_best()
        return results

    def evaluate_tasks(self, step: int, tasks: list[str] | None) -> dict[str, dict[str, float]]:
        """Dev metrics of ``tasks`` (None: all), logged; each task's own best kept and saved."""
        results = self.session.evaluate(progress=self.progress, tasks=tasks)
        for task, metrics in results.items():
            for name, value in metrics.items():
                self.tb.scalar(f"dev/{task}/{name}", value, step)
        self.select_task_best(step, results)
        return results

    def select_task_best(self, step: int, results: dict[str, dict[str, float]]) -> None:
        """Save ``best-<task>`` for every task whose selection metric beat its best so far."""
        best = self.extra["task_best"]
        improved = []
        for task, metrics in results.items():
            metric = self.session.data[task].task.select_metric()
            value = metrics[metric]
            if task not in best or value > best[task]["value"]:
                best[task] = {"metric": metric, "value": value, "step": step}
                improved.append(task)
        for task in improved:
            if self.cfg.save_task_best:
                self.session.save(task_best_dir(task), None, step)
            self.tb.scalar(f"best/{task}/{best[task]['metric']}", best[task]["value"], step)
        if improved:
            self.write_task_best()

    def write_task_best(self) -> None:
        """``<output>/task_best.json``: the joint best and each task's own best, with steps and folders."""
        if not self.session.is_main:
            return
        tasks = {
            task: {**entry, "checkpoint": task_best_dir(task) if self.cfg.save_task_best else None}
            for task, entry in self.extra["task_best"].items()
        }
        joint = {
            "select_metric": self.cfg.select_metric,
            "score": self.extra["best_score"] if math.isfinite(self.extra["best_score"]) else None,
            "step": self.extra.get("best_step"),
            "checkpoint": BEST,
        }
        text = json.dumps({"joint": joint, "tasks": tasks}, indent=2, ensure_ascii=False)
        (self.session.output_dir / TASK_BEST_JSON).write_text(text + "\n", encoding="utf-8")

    # -- the end -----------------------------------------------------------------------------------
    def finish(self) -> dict[str, Any]:
        """After the last step: save, evaluate and select, save again with the final best score.

        Returns the summary: ``steps``, ``stopped`` (False), ``losses`` (per step), ``results`` (the
        final dev metrics), ``seconds`` (training time, without the final evaluation), and ``extra``'s
        ``best_score``, ``best_step``, ``skipped_steps``, ``overflow_steps``.
        """
        seconds = time.perf_counter() - self._t0
        step = self.cfg.max_steps
        self.checkpoint(step)
        results = self.evaluate_and_select(step)
        self.checkpoint(step)
        self.report_final(step, results)
        return {
            "steps": step,
            "stopped": False,
            "losses": self.losses,
            "results": results,
            "seconds": seconds,
            **self.extra,
        }

    def report_final(self, step: int, results: dict[str, dict[str, float]]) -> None:
        """The scoreboard as a table and the final evaluation's confusion matrices, to every reporter."""
        if not results or not self.session.is_main:
            return
        best = self.extra["task_best"]
        rows = []
        for task, metrics in results.items():
            own = best.get(task, {})
            for name, value in metrics.items():
                mine = own.get("metric") == name
                rows.append(
                    [task, name, value, own.get("value") if mine else None, own.get("step") if mine else None]
                )
        columns = ["task", "metric", f"step {step}", "task's best", "task's best step"]
        self.tb.table("scoreboard", columns, rows, step)
        from mtl.evaluation.scoreboard import classification_details, confusion_image

        for task, predictions in self.session.last_predictions.items():
            td = self.session.data[task]
            pairs = td.task.label_pairs(td.dev.records, predictions)  # type: ignore[union-attr]
            if pairs is not None:
                labels = pairs[0]
                _, matrix = classification_details(*pairs)
                image = confusion_image(matrix, labels, f"{task}: confusion matrix (step {step})")
                self.tb.image(f"{task}/confusion_matrix", image, step)

    def stopped(self) -> dict[str, Any]:
        """The summary of a run stopped by a signal (its checkpoint is saved by :meth:`end_step`);
        ``signal`` is the signal's number, the same on every rank (:meth:`StopRequested.agreed`)."""
        return {
            "steps": self.stopped_at,
            "stopped": True,
            "signal": self.stop_signal,
            "losses": self.losses,
            **self.extra,
        }
