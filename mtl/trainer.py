"""``MultiTaskTrainer``: the same model, batches, optimizer and schedule, driven by ``transformers.Trainer``.

The Trainer's train dataloader is the session's :class:`~mtl.stream.MultiTaskStream`, its optimizer
and scheduler come from :mod:`mtl.optim`, and ``compute_loss`` routes each batch to its task's head.
Loss scaling under gradient accumulation happens exactly once: the model declares
``accepts_loss_kwargs = False``, so the Trainer divides by the accumulation count, as the custom
loop does. Checkpoints use the project's own safetensors format (the Trainer's own pickled
optimizer/RNG files are never written or read), so ``--resume`` works the same for both engines.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import torch
from transformers import Trainer, TrainerCallback, TrainingArguments

from mtl.loop import NonFiniteLoss, StopRequested, _evaluate_and_select, nonfinite_loss, start_rng
from mtl.session import LAST, Session
from mtl.stream import MultiTaskStream
from mtl.tensorboard import TensorBoard


class MultiTaskTrainer(Trainer):
    """A Trainer whose batches each carry a ``task`` key naming the head to train."""

    def __init__(
        self, *args: Any, session: Session, stream: MultiTaskStream, extra: dict[str, Any], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.session = session
        self.stream = stream
        self.session_extra = extra  # best score, skipped batches: saved with the checkpoints
        # The Trainer counts steps from 0 again on --resume; messages name the run's own step.
        self.session_start = session.resume_state.step if session.resume_state is not None else 0
        self.stopped_at: int | None = None
        self.step_losses: list[float] = []  # per optimizer step, as the custom loop reports them
        self._step_loss = 0.0
        self.task_losses: dict[str, list[float]] = defaultdict(list)
        self.loss_weights = {name: session.cfg.tasks[name].loss_weight for name in session.data}

    def training_step(
        self, model: torch.nn.Module, inputs: dict[str, Any], num_items_in_batch: Any = None
    ) -> torch.Tensor:
        loss = super().training_step(model, inputs, num_items_in_batch)
        self._step_loss += loss.item()
        return loss

    def save_state_checkpoint(self, step: int) -> None:
        """The project's checkpoint (weights + training state) as ``<output>/last``."""
        self.session.save(
            LAST,
            self.session.training_state(
                step, self.optimizer, self.lr_scheduler, self.stream, self.session_extra
            ),
        )

    def get_train_dataloader(self) -> MultiTaskStream:  # type: ignore[override]
        # The stream shards per rank itself; accelerate must not re-shard or re-batch it.
        return self.stream

    def create_optimizer(self, model: Any = None) -> torch.optim.Optimizer:
        if self.optimizer is None:
            self.optimizer, self._mtl_scheduler = self.session.make_optimizer(self.model)
        return self.optimizer

    def create_scheduler(self, num_training_steps: int, optimizer: Any = None) -> Any:
        if self.lr_scheduler is None:
            self.lr_scheduler = self._mtl_scheduler
        return self.lr_scheduler

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> Any:
        """Run the batch's task head; the loss is weighted per task (never normalised here by tokens)."""
        inputs = dict(inputs)
        task = inputs.pop("task")
        output = model(task, **inputs)
        loss = output.loss
        problem = nonfinite_loss(loss, task, self.session.world_size)
        if problem:
            if self.session.cfg.train.nan_policy == "stop":
                raise NonFiniteLoss(
                    None,
                    f"step {self.session_start + self.state.global_step + 1}",
                    f"{problem}; stopped, the last checkpoint is kept",
                    kind="at",
                )
            # Skipped: a fresh zero leaf, so the Trainer's backward reaches no parameter. Backpropagating
            # through the poisoned graph (even times 0) would turn every gradient into NaN (0 * inf).
            # The parameters keep no gradient from this batch, exactly as the custom loop's skip.
            self.session_extra["skipped_batches"] += 1
            zero = torch.zeros((), device=loss.device, requires_grad=True)
            return (zero, output.outputs) if return_outputs else zero
        else:
            self.task_losses[task].append(loss.item())
        loss = loss * self.loss_weights[task]
        return (loss, output.outputs) if return_outputs else loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        for task, values in self.task_losses.items():
            if values:
                logs[f"loss_{task}"] = sum(values) / len(values)
        self.task_losses.clear()
        super().log(logs, start_time)


class _SessionCallback(TrainerCallback):
    """Seeds/restores RNG at the start, and does the project's evaluation, checkpoints and SIGTERM stop."""

    def __init__(
        self,
        trainer_ref: list[MultiTaskTrainer],
        start_step: int,
        stop: StopRequested,
        tb: TensorBoard,
        progress: bool,
    ) -> None:
        self.trainer_ref = trainer_ref
        self.start = start_step
        self.stop = stop
        self.tb = tb
        self.progress = progress

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.trainer_ref[0].model.train()
        start_rng(self.trainer_ref[0].session)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        trainer = self.trainer_ref[0]
        session, cfg = trainer.session, trainer.session.cfg.train
        step = self.start + state.global_step
        trainer.step_losses.append(trainer._step_loss)
        trainer._step_loss = 0.0
        if cfg.eval_every and step % cfg.eval_every == 0 and step != cfg.max_steps:
            _evaluate_and_select(session, step, trainer.session_extra, self.tb, self.progress)
        if (cfg.save_every and step % cfg.save_every == 0) or self.stop.requested:
            trainer.save_state_checkpoint(step)
        if self.stop.requested:
            trainer.stopped_at = step
            control.should_training_stop = True


def _save_state_checkpoint(self: MultiTaskTrainer, step: int) -> None:
    self.session.save(
        LAST,
        self.session.training_state(step, self.optimizer, self.lr_scheduler, self.stream, self.session_extra),
    )


MultiTaskTrainer.save_state_checkpoint = _save_state_checkpoint  # type: ignore[attr-defined]


def train_with_trainer(session: Session, *, progress: bool = True) -> dict[str, Any]:
    """Train with :class:`MultiTaskTrainer`; same summary as :func:`mtl.loop.train_loop`."""
    cfg = session.cfg.train
    start = session.resume_state.step if session.resume_state is not None else 0
    stream = session.make_stream()
    extra: dict[str, Any] = {"best_score": -math.inf, "skipped_batches": 0}
    if session.resume_state is not None:
        stream.load_state_dict(session.resume_state.sampler)
        extra.update(session.resume_state.extra)
    args = TrainingArguments(
        output_dir=str(session.output_dir / "trainer"),
        max_steps=cfg.max_steps - start,
        per_device_train_batch_size=1,  # batches come ready-made from the stream
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        learning_rate=cfg.learning_rate,
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        logging_steps=cfg.log_every,
        save_strategy="no",
        eval_strategy="no",
        report_to=["tensorboard"] if session.is_main else [],
        remove_unused_columns=False,
        seed=cfg.seed,
        bf16=session.autocast_dtype is torch.bfloat16,
        use_cpu=session.device.type == "cpu",
        ddp_find_unused_parameters=True,
        disable_tqdm=not (progress and session.is_main),
        dataloader_num_workers=0,
    )
    tb = TensorBoard(session.output_dir / "tensorboard", enabled=session.is_main)
    ref: list[MultiTaskTrainer] = []
    with StopRequested() as stop:
        trainer = MultiTaskTrainer(
            model=session.model,
            args=args,
            session=session,
            stream=stream,
            extra=extra,
            processing_class=session.tokenizer,
            callbacks=[_SessionCallback(ref, start, stop, tb, progress)],
        )
        ref.append(trainer)
        # Same optimizer/scheduler objects as the loop, restored on resume before the first step.
        trainer.create_optimizer()
        trainer.create_scheduler(cfg.max_steps)
        if session.resume_state is not None:
            trainer.optimizer.load_state_dict(session.resume_state.optimizer)
            trainer.lr_scheduler.load_state_dict(session.resume_state.scheduler)
        result = trainer.train()
    if trainer.stopped_at is not None:
        return {"steps": trainer.stopped_at, "stopped": True, "losses": trainer.step_losses, **extra}
    trainer.save_state_checkpoint(cfg.max_steps)
    results = _evaluate_and_select(session, cfg.max_steps, extra, tb, progress)
    trainer.save_state_checkpoint(cfg.max_steps)
    tb.close()
    return {
        "steps": cfg.max_steps,
        "stopped": False,
        "losses": trainer.step_losses,
        "train_loss": result.training_loss,
        "results": results,
        **extra,
    }
