"""The custom PyTorch training loop: readable in one sitting.

Each optimizer step takes ``gradient_accumulation_steps`` batches from the multi-task stream
(each batch one task, chosen by the temperature sampler), scales each task's loss by its weight and
by the accumulation count, clips, steps AdamW and the schedule. With ``train.tasks_per_step`` > 1 each
of those batches is a group of distinct tasks, run by :meth:`mtl.training.run.EngineRun.group_step`
(shared with the Trainer). What happens around the steps
(resume, RNG, the non-finite loss check, progress, TensorBoard / W&B, evaluation and best-checkpoint selection,
checkpoints, the clean stop on SIGINT/SIGTERM, the summary) is :class:`mtl.training.run.EngineRun`, shared
with the Trainer engine.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel

from mtl.training.run import EngineRun
from mtl.training.session import Session


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
            for _ in range(accum):
                batch = next(stream)
                if "tasks" in batch:  # train.tasks_per_step > 1
                    run.group_step(forward, batch["tasks"], step)
                    continue
                task = batch.pop("task")
                with torch.autocast(
                    device_type, dtype=autocast or torch.float32, enabled=autocast is not None
                ):
                    loss = forward(task, **batch).loss
                weighted = run.batch_loss(task, loss, step)
                if weighted is None:  # skipped under nan_policy: skip
                    continue
                scaled = weighted / accum
                scaled.backward()
                run.add_step_loss(scaled.item())
            if cfg.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            if run.end_step(step):  # also the progress bar or log line
                return run.stopped()
        return run.finish()
