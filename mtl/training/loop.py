"""The custom PyTorch training loop: readable in one sitting.

Each optimizer step takes ``gradient_accumulation_steps`` batches from the multi-task stream
(each batch one task, chosen by the temperature sampler), scales each task's loss by its weight and
by the accumulation count (and by fp16's loss scale), clips, steps AdamW and the schedule. Under
DDP the gradients are all-reduced once per optimizer step (the other micro-batches run under
``no_sync``). With ``train.tasks_per_step`` > 1 each micro-batch is a group of distinct tasks, run
by :meth:`mtl.training.run.EngineRun.group_step` (shared with the Trainer). What happens around the
steps (resume, RNG, the non-finite check, progress, TensorBoard / W&B, evaluation and
best-checkpoint selection, checkpoints, the clean stop on SIGINT/SIGTERM, the summary) is
:class:`mtl.training.run.EngineRun`, shared with the Trainer engine.
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel

from mtl.modeling.precision import autocast
from mtl.training.run import EngineRun
from mtl.training.session import Session


def train_loop(session: Session, *, progress: bool = True) -> dict[str, Any]:
    """Train with the custom loop; returns the summary of :meth:`mtl.training.run.EngineRun.finish`."""
    cfg, model = session.cfg.train, session.model
    accum = cfg.gradient_accumulation_steps
    stream = session.make_stream()
    optimizer, scheduler = session.make_optimizer()
    # max_grad_norm 0 (no clipping) still measures the norm (the non-finite check): inf clips nothing.
    max_norm = cfg.max_grad_norm if cfg.max_grad_norm > 0 else math.inf

    with EngineRun(session, optimizer, scheduler, stream, progress=progress) as run:
        run.prepare()
        run.begin()
        scaler = run.scaler
        ddp = distributed(model) if session.world_size > 1 else None
        forward = ddp or model
        for step in range(run.start_step + 1, cfg.max_steps + 1):
            for micro in range(accum):
                batch = next(stream)
                # Under DDP the last micro-batch's backward all-reduces the step's gradients once.
                sync = ddp is None or micro == accum - 1
                if "tasks" in batch:  # train.tasks_per_step > 1
                    run.group_step(forward, batch["tasks"], sync=sync)
                    continue
                task = batch.pop("task")
                with nullcontext() if sync else ddp.no_sync():
                    with autocast(session.device, session.autocast_dtype):
                        loss = forward(task, **batch).loss
                    scaled = run.batch_loss(task, loss) / accum
                    (scaler.scale(scaled) if scaler is not None else scaled).backward()
                run.add_step_loss(scaled)
            if scaler is not None:
                scaler.unscale_(optimizer)  # clip the true gradients
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
            # The step's one host sync. Not scaler.step(optimizer): it would read the same overflow
            # flag (found by unscale_ above) a second time; update() below only needs it recorded.
            if run.update_allowed(grad_norm, step):
                optimizer.step()
            if run.advance_schedule:  # held back on a step the fp16 scaler skips, as in the Trainer
                scheduler.step()
            if scaler is not None:
                scaler.update()
            optimizer.zero_grad(set_to_none=True)
            if run.end_step(step):  # also the progress bar or log line
                return run.stopped()
        return run.finish()


def distributed(model: torch.nn.Module) -> DistributedDataParallel:
    """The model under DDP, as the Trainer engine wraps it (:class:`mtl.training.trainer.MultiTaskTrainer`).

    ``find_unused_parameters``: a step trains one task's head, the others get no gradient.
    ``gradient_as_bucket_view``: the gradients live in DDP's all-reduce buckets instead of beside
    them (one fp32 copy of the model less per GPU: 1.3 GB for roberta-large). ``broadcast_buffers``
    off: the encoder's buffers (position and token-type ids) never change, so rank 0 need not send
    them before every forward.
    """
    return DistributedDataParallel(
        model, find_unused_parameters=True, gradient_as_bucket_view=True, broadcast_buffers=False
    )
