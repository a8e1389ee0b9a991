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

from mtl.training.run import EngineRun
from mtl.training.session import Session


class MultiTaskTrainer(Trainer):
    """A Trainer whose batches each carry a ``task`` key naming the head to train."""

    def __init__(self, *args: Any, run: EngineRun, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.run = run
        # compute_loss below never hands ``num_items_in_batch`` to the model: each head returns the
        # mean loss of its batch. So the Trainer must not count label tokens, and must divide the
        # loss by the accumulation steps itself (exactly once, as the custom loop does).
        self.model_accepts_loss_kwargs = False

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
            inputs = self._prepare_inputs(inputs)
            step = self.run.start_step + self.state.global_step + 1
            share = self.run.group_step(model, inputs["tasks"], step)
            return torch.tensor(share, device=self.args.device)
        loss = super().training_step(model, inputs, num_items_in_batch)
        self.run.add_step_loss(loss.item())  # weighted and divided by the accumulation steps
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
        loss = self.run.batch_loss(task, output.loss, self.run.start_step + self.state.global_step + 1)
        if loss is None:
            # Skipped: a fresh zero leaf, so the Trainer's backward reaches no parameter. Backpropagating
            # through the poisoned graph (even times 0) would turn every gradient into NaN (0 * inf).
            # The parameters keep no gradient from this batch, exactly as the custom loop's skip.
            loss = torch.zeros((), device=output.loss.device, requires_grad=True)
        return (loss, output.outputs) if return_outputs else loss


class EngineCallback(TrainerCallback):
    """Starts the run (train mode, compile, RNG) and ends each step with :meth:`EngineRun.end_step`."""

    def __init__(self, run: EngineRun) -> None:
        self.run = run

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.run.begin()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        # The Trainer counts steps from 0 again on --resume; the run counts its own steps.
        if self.run.end_step(self.run.start_step + state.global_step):
            control.should_training_stop = True


def train_with_trainer(session: Session, *, progress: bool = True) -> dict[str, Any]:
    """Train with :class:`MultiTaskTrainer`; same summary as :func:`mtl.training.loop.train_loop`."""
    cfg = session.cfg.train
    stream = session.make_stream()
    optimizer, scheduler = session.make_optimizer()
    with EngineRun(session, optimizer, scheduler, stream, progress=progress) as run:
        args = TrainingArguments(
            output_dir=str(session.output_dir / "trainer"),
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
            bf16=session.autocast_dtype is torch.bfloat16,
            use_cpu=session.device.type == "cpu",
            ddp_find_unused_parameters=True,
            # The EngineRun shows progress for both engines (every task's loss, plain lines off a terminal).
            disable_tqdm=True,
        )
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
