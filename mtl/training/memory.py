"""Memory that fails fast or fits: each task's largest batch tried before step 1 (``train.memory_check``).

A multi-task run draws its tasks at random, so the batch that does not fit in GPU memory (MRC or
WoS at 510 tokens on a 16 GB card) may come hours in. Before the first step, on a GPU, one forward
and backward of every task's largest batch (its longest features, as many as one process trains at
once: the batch whose activations peak) runs with the optimizer's state reserved beside it, and each
task's peak memory is printed. A task that does not fit turns gradient checkpointing on when that makes it fit (said
so), or stops the run with exit 2 naming the task, its batch shape and the options. Under DDP every
rank checks its own card and the ranks agree (checkpointing if one needs it, all stop if one must);
the check runs on the bare model, before the engine wraps it in ``DistributedDataParallel``.

The check leaves the run as it found it: no optimizer step, gradients dropped, and it runs before
the engine seeds or restores the random state (:meth:`mtl.training.run.EngineRun.begin`), so parity
and bitwise resume are unaffected. On CPU it does nothing (host memory is not the constraint
here); tests drive the decision with a stand-in for the GPU measurement.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from mtl.batching.collate import train_batch_for
from mtl.batching.order import longest_batch
from mtl.errors import KlueInputError
from mtl.modeling.encoder import enable_gradient_checkpointing, is_checkpointing
from mtl.modeling.precision import autocast
from mtl.training.budget import per_rank_batch_size
from mtl.training.session import Session

GIB = 2**30

#: measures one task's batch: peak bytes of a forward + backward; raises torch.OutOfMemoryError
Measure = Callable[[str, dict[str, Any]], int]


@dataclass
class MemoryReport:
    """What the check found: peak bytes per task, and whether it turned checkpointing on."""

    peaks: dict[str, int]
    shapes: dict[str, tuple[int, int]]  # (rows, tokens) of each task's largest batch
    enabled_checkpointing: bool = False


def largest_batches(session: Session) -> dict[str, dict[str, Any]]:
    """Each task's largest batch on one process, collated on the session's device: its longest
    training features, as many as a process trains at once (``batch_size / world size`` rows: the
    batch size is global, each DDP rank takes its share)."""
    out = {}
    for name, td in session.data.items():
        rows = per_rank_batch_size(td.task.settings.batch_size, session.world_size, task=name)
        indices = longest_batch(td.train.lengths, rows)  # type: ignore[union-attr]
        # A generator of its own: the stream's (masked-LM masks) must not move.
        out[name] = train_batch_for(td.task, td.train, indices, session.device, np.random.default_rng(0))  # type: ignore[arg-type]
    return out


def optimizer_state_bytes(model: torch.nn.Module) -> int:
    """What AdamW will hold from step 1: two fp32 moments per trainable parameter."""
    return sum(2 * p.numel() * 4 for p in model.parameters() if p.requires_grad)


def cuda_measure(session: Session) -> Measure:
    """Peak CUDA memory of one forward + backward of a batch, with the optimizer's state reserved."""
    device, model = session.device, session.model

    def measure(task: str, batch: dict[str, Any]) -> int:
        reserve = torch.empty(optimizer_state_bytes(model), dtype=torch.uint8, device=device)
        torch.cuda.reset_peak_memory_stats(device)
        try:
            with autocast(device, session.autocast_dtype):
                loss = model(task, **batch).loss
            loss.backward()
            return torch.cuda.max_memory_allocated(device)
        finally:
            model.zero_grad(set_to_none=True)
            del reserve
            torch.cuda.empty_cache()

    return measure


def check_memory(session: Session, measure: Measure | None = None) -> MemoryReport | None:
    """Try every task's largest batch; None when there is nothing to check (CPU, ``memory_check: false``).

    ``measure`` stands in for the GPU measurement (tests); by default it is :func:`cuda_measure` on
    CUDA and the check is skipped elsewhere. A task that runs out of memory is tried again with
    gradient checkpointing (unless it is on already); if it then fits, checkpointing stays on for the
    run (``train.gradient_checkpointing`` is set, so checkpoints record it). Otherwise
    :class:`~mtl.errors.KlueInputError` names the task, its batch shape and the options.
    """
    if not session.cfg.train.memory_check:
        return None
    if measure is None:
        if session.device.type != "cuda":
            return None
        measure = cuda_measure(session)
    model = session.model
    batches = largest_batches(session)
    report = MemoryReport({}, {n: tuple(b["input_ids"].shape) for n, b in batches.items()})  # type: ignore[misc]
    too_big: str | None = None  # the first task that does not fit even checkpointed
    for name, batch in batches.items():
        try:
            report.peaks[name] = measure(name, batch)
            continue
        except torch.OutOfMemoryError:
            if is_checkpointing(model.encoder):
                too_big = name
                break
        enable_gradient_checkpointing(model.encoder)
        try:
            report.peaks[name] = measure(name, batch)
        except torch.OutOfMemoryError:
            too_big = name
            break
        report.enabled_checkpointing = True
        if session.is_main:
            rows, tokens = report.shapes[name]
            print(
                f"note: the {name} batch of {rows} x {tokens} tokens does not fit in GPU memory without "
                "gradient checkpointing: train.gradient_checkpointing is now on for this run "
                "(about a third more compute)"
            )
    checkpoint, stop = _agree(session, report.enabled_checkpointing, too_big is not None)
    if stop:  # on every rank, so that none waits for the others in the first step's all-reduce
        if too_big is None:
            raise KlueInputError(
                None,
                "tasks",
                "a batch does not fit in the GPU memory of another process, even with gradient "
                "checkpointing (its message names the task)",
                kind="key",
            )
        raise _does_not_fit(too_big, report.shapes[too_big])
    if checkpoint and not report.enabled_checkpointing:  # another rank needed it: the model is one
        enable_gradient_checkpointing(model.encoder)
        report.enabled_checkpointing = True
    if report.enabled_checkpointing:
        session.cfg.train.gradient_checkpointing = True
    if session.is_main:
        peaks = ", ".join(
            f"{n} {p / GIB:.2f} ({'x'.join(map(str, report.shapes[n]))})" for n, p in report.peaks.items()
        )
        print(f"memory check: peak GiB per task at its largest batch (rows x tokens): {peaks}")
    return report


def _agree(session: Session, checkpoint: bool, stop: bool) -> tuple[bool, bool]:
    """Every rank's verdict, combined: checkpointing if any rank needed it, stop if any rank must.

    The ranks train one model with the same batch shapes, but their cards may differ in free memory.
    """
    if session.world_size == 1:
        return checkpoint, stop
    flags = torch.tensor([int(checkpoint), int(stop)], device=session.device)
    dist.all_reduce(flags, op=dist.ReduceOp.MAX)
    agreed = flags.tolist()
    return bool(agreed[0]), bool(agreed[1])


def _does_not_fit(task: str, shape: tuple[int, int]) -> KlueInputError:
    rows, tokens = shape
    return KlueInputError(
        None,
        f"tasks.{task}",
        f"its largest training batch ({rows} rows x {tokens} tokens) does not fit in GPU memory, even "
        "with gradient checkpointing; "
        f"lower tasks.{task}.batch_size and raise train.gradient_accumulation_steps to keep the batch "
        f"per optimizer step, or lower tasks.{task}.max_length; train.memory_check=false skips this check",
        kind="key",
    )
