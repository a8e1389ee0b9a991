"""The custom PyTorch training loop: readable in one sitting.

Each optimizer step takes ``gradient_accumulation_steps`` batches from the multi-task stream
(each batch one task, chosen by the temperature sampler), scales each task's loss by its weight and
by the accumulation count, clips, steps AdamW and the schedule. Under DDP the gradients are
all-reduced once per optimizer step (the other micro-batches run under ``no_sync``). What happens
around the steps (resume, RNG, the non-finite loss check, progress, TensorBoard / W&B, evaluation
and best-checkpoint selection, checkpoints, the clean stop on SIGINT/SIGTERM, the summary) is
:class:`mtl.training.run.EngineRun`, shared with the Trainer engine.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from mtl.training.run import EngineRun
from mtl.training.session import Session


def average_gradients(model: torch.nn.Module, world_size: int) -> None:
    """Average every parameter's gradient across the ranks (what DDP's backward would have done)."""
    for param in model.parameters():
        if param.grad is not None:
            dist.all_reduce(param.grad)
            param.grad /= world_size


def train_loop(session: Session, *, progress: bool = True) -> dict[str, Any]:
    """Train with the custom loop; returns the summary of :meth:`mtl.training.run.EngineRun.finish`."""
    cfg, model = session.cfg.train, session.model
    accum = cfg.gradient_accumulation_steps
    stream = session.make_stream()
    optimizer, scheduler = session.make_optimizer()
    device_type, autocast = session.device.type, session.autocast_dtype

    with EngineRun(session, optimizer, scheduler, stream, progress=progress) as run:
        run.begin()
        ddp = DistributedDataParallel(model, find_unused_parameters=True) if session.world_size > 1 else None
        forward = ddp or model
        for step in range(run.start_step + 1, cfg.max_steps + 1):
            synced = False
            for micro in range(accum):
                batch = next(stream)
                task = batch.pop("task")
                # Gradients are all-reduced once per optimizer step, by the last micro-batch's backward.
                sync = micro == accum - 1
                with nullcontext() if ddp is None or sync else ddp.no_sync():
                    with torch.autocast(
                        device_type, dtype=autocast or torch.float32, enabled=autocast is not None
                    ):
                        loss = forward(task, **batch).loss
                    weighted = run.batch_loss(task, loss, step)
                    if weighted is None:  # skipped under nan_policy: skip
                        continue
                    scaled = weighted / accum
                    scaled.backward()
                synced = sync
                run.add_step_loss(scaled.item())
            if ddp is not None and not synced:
                # Every rank skipped the last micro-batch (ranks agree on skips): no backward reduced
                # the gradients accumulated under no_sync, so average them here.
                average_gradients(model, session.world_size)
            if cfg.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            if run.end_step(step):  # also the progress bar or log line
                return run.stopped()
        return run.finish()
