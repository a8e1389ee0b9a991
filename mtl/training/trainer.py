"""``MultiTaskTrainer``: the same model, batches, optimizer and schedule, driven by ``transformers.Trainer``.

The Trainer's train dataloader is the session's :class:`~mtl.batching.stream.MultiTaskStream`, its optimizer
and scheduler come from :mod:`mtl.training.optim` (passed in as ``optimizers``), and ``compute_loss`` routes
each batch to its task's head. What happens around the steps is :class:`mtl.training.run.EngineRun`, as in
the custom loop, driven by :class:`EngineCallback`: both engines write the same checkpoints (the
project's safetensors format; the Trainer's own pickled optimizer/RNG files are never written or
read, so ``--resume`` works the same for both), the same TensorBoard tags into the same folder, and
the same summary.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import PrinterCallback, Trainer, TrainerCallback, TrainingArguments

from mtl.errors import KlueInputError
from mtl.layout import TRAINER_DIR
from mtl.training.run import EngineRun
from mtl.training.session import Session


class MultiTaskTrainer(Trainer):
    """A Trainer whose batches each carry a ``task`` key naming the head to train."""

    def __init__(self, *args: Any, run: EngineRun, **kwargs: Any) -> None:
        self.run = run  # before Trainer.__init__: create_accelerator_and_postprocess below reads it
        super().__init__(*args, **kwargs)
        self.add_callback(ScheduleVerdict(self))
        # compute_loss below never hands ``num_items_in_batch`` to the model: each head returns the
        # mean loss of its batch. So the Trainer must not count label tokens, and must divide the
        # loss by the accumulation steps itself (exactly once, as the custom loop does).
        self.model_accepts_loss_kwargs = False

    def create_accelerator_and_postprocess(self) -> None:
        """The accelerator, with the run's fp16 loss scaler (one scaler, saved in our checkpoints).

        accelerate builds its own scaler for ``fp16=True`` on CUDA only (and no autocast on CPU);
        handing it the run's makes fp16 work the same on every device, and its state is the one
        :class:`EngineRun` saves and restores, as in the custom loop.
        """
        super().create_accelerator_and_postprocess()
        if self.accelerator.ddp_handler is not None:
            # As the custom loop's DistributedDataParallel (mtl.training.loop.distributed): gradients
            # in the all-reduce buckets, one fp32 copy of the model less per GPU.
            self.accelerator.ddp_handler.gradient_as_bucket_view = True
        if self.run.scaler is not None:
            self.accelerator.scaler = self.run.scaler
            self.accelerator.native_amp = True

    def get_train_dataloader(self) -> Any:
        # The stream shards per rank itself; accelerate must not re-shard or re-batch it.
        return self.run.stream

    def training_step(
        self, model: torch.nn.Module, inputs: dict[str, Any], num_items_in_batch: Any = None
    ) -> torch.Tensor:
        if "tasks" in inputs:
            # train.tasks_per_step > 1: the same forward and backward as the custom loop's
            # (EngineRun.group_step, which also adds the step's loss share).
            model.train()
            return self.run.group_step(model, self._prepare_inputs(inputs)["tasks"])
        loss = super().training_step(model, inputs, num_items_in_batch)
        self.run.add_step_loss(loss)  # weighted and divided by the accumulation steps; stays on the device
        return loss

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> Any:
        """Run the batch's task head; its loss times the task's weight (never normalised by tokens)."""
        inputs = dict(inputs)
        task = inputs.pop("task")
        output = model(task, **inputs)
        loss = self.run.batch_loss(task, output.loss)
        return (loss, output.outputs) if return_outputs else loss

    def _get_grad_norm(self, model: torch.nn.Module, grad_norm: Any = None) -> Any:
        """The Trainer's (clipped, unscaled) gradient norm, checked before its optimizer step.

        The hook between clipping and ``optimizer.step()``: :meth:`EngineRun.update_allowed` drops the
        gradients of a non-finite step under ``nan_policy: skip`` (the optimizer step then changes
        nothing) and raises under ``stop``; an fp16 overflow is left to the scaler, which skips the
        step itself. Whether the schedule advances is the run's verdict too (:class:`ScheduleVerdict`).
        """
        grad_norm = super()._get_grad_norm(model, grad_norm)
        self.run.update_allowed(grad_norm, self.run.start_step + self.state.global_step + 1)
        return grad_norm


class ScheduleVerdict(TrainerCallback):
    """Whether the Trainer steps its learning-rate schedule: :attr:`EngineRun.advance_schedule`, as in the loop.

    The Trainer steps the schedule unless ``accelerator.optimizer_step_was_skipped``, which accelerate
    infers from whether ``GradScaler.step`` called ``optimizer.step()``. Fused AdamW
    (``train.fused_adamw``) takes the overflow check into its kernel, so the scaler always calls its
    step (the kernel then changes nothing) and accelerate would report an overflowed step as taken: the
    schedule would advance where the loop holds it back. The run already decided, from the step's
    gradient norm (read once, before the optimizer step), so its verdict overrides accelerate's guess.
    """

    def __init__(self, trainer: MultiTaskTrainer) -> None:
        self.trainer = trainer

    def on_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        # The one hook between `optimizer.step()` and the Trainer's skip check (the optimizer's own
        # step just reset the flag). accelerate has no setter: `_is_overflow` is what its
        # `step_was_skipped` returns, for the Trainer's check and for AcceleratedScheduler alike. The
        # alternatives are a copy of the Trainer's training loop, or a second host read of the
        # scaler's inf flag per step. tests/test_precision.py fails if accelerate stops reading it.
        self.trainer.optimizer._is_overflow = not self.trainer.run.advance_schedule


class EngineCallback(TrainerCallback):
    """Starts the run (train mode, RNG) and ends each step with :meth:`EngineRun.end_step`."""

    def __init__(self, run: EngineRun) -> None:
        self.run = run

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.run.begin()  # run.prepare() ran before the Trainer wrapped the model

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        # The Trainer counts steps from 0 again on --resume; the run counts its own steps.
        if self.run.end_step(self.run.start_step + state.global_step):
            control.should_training_stop = True


def check_single_device(args: TrainingArguments) -> None:
    """Refuse the one-process, several-GPU setup in which the Trainer would fall back to DataParallel.

    ``nn.DataParallel`` splits each batch across the GPUs and gathers the outputs, which fails on the
    heads' output objects (and would train differently from the loop engine, which uses one GPU).
    """
    if args.n_gpu > 1:
        raise KlueInputError(
            None,
            "train.engine",
            f"trainer: {args.n_gpu} GPUs are visible to this one process, and the Trainer would split "
            f"each batch across them with nn.DataParallel, which the task heads do not support. Start one "
            f"process per GPU (`torchrun --nproc_per_node {args.n_gpu} -m mtl train ...` or "
            "`accelerate launch -m mtl train ...`), or use one GPU (CUDA_VISIBLE_DEVICES=0)",
            kind="key",
        )


def train_with_trainer(session: Session, *, progress: bool = True) -> dict[str, Any]:
    """Train with :class:`MultiTaskTrainer`; same summary as :func:`mtl.training.loop.train_loop`."""
    cfg = session.cfg.train
    stream = session.make_stream()
    optimizer, scheduler = session.make_optimizer()
    with EngineRun(session, optimizer, scheduler, stream, progress=progress) as run:
        args = TrainingArguments(
            output_dir=str(session.output_dir / TRAINER_DIR),
            max_steps=cfg.max_steps - run.start_step,
            per_device_train_batch_size=1,  # batches come ready-made from the stream
            gradient_accumulation_steps=cfg.gradient_accumulation_steps,
            learning_rate=cfg.learning_rate,
            weight_decay=cfg.weight_decay,
            max_grad_norm=cfg.max_grad_norm,
            logging_steps=cfg.log_every,
            save_strategy="no",
            eval_strategy="no",
            report_to="none",  # TensorBoard / W&B are written by the EngineRun, with the custom loop's tags
            remove_unused_columns=False,
            seed=cfg.seed,
            fp16=session.autocast_dtype is torch.float16,
            bf16=session.autocast_dtype is torch.bfloat16,
            # The Trainer's own NaN filter reads every micro-batch's loss on the host (a sync each);
            # non-finite steps are the EngineRun's job (nan_policy), from the gradient norm.
            logging_nan_inf_filter=False,
            use_cpu=session.device.type == "cpu",
            ddp_find_unused_parameters=True,
            ddp_broadcast_buffers=False,  # the encoder's buffers never change (see loop.distributed)
            ddp_timeout=cfg.ddp_timeout,
            # The EngineRun shows progress for both engines (every task's loss, plain lines off a terminal).
            disable_tqdm=True,
        )
        check_single_device(args)
        run.prepare()  # on the bare model: the Trainer wraps it in DDP before on_train_begin
        trainer = MultiTaskTrainer(
            model=session.model,
            args=args,
            run=run,
            processing_class=session.tokenizer,
            optimizers=(optimizer, scheduler),
            callbacks=[EngineCallback(run)],
        )
        trainer.remove_callback(PrinterCallback)  # would print the Trainer's own log dicts
        trainer.train()
        return run.stopped() if run.stopped_at is not None else run.finish()
