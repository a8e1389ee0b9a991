"""Timing the product's engines step by step, without changing them.

A :class:`BenchSession` is the product's :class:`~mtl.training.session.Session` with two hooks: its batch
stream is wrapped in a :class:`RecordingStream` (which notes when each optimizer step draws its first
batch, and keeps the batches for replay), and ``save`` writes nothing (the bench times training
steps, not checkpoint I/O). ``train_loop`` and ``train_with_trainer`` then run unmodified.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mtl.batching.collate import batch_for
from mtl.batching.prepare import TaskData
from mtl.training.session import Session

StreamFactory = Callable[[Session], Iterator[dict[str, Any]]]


def sync(device: torch.device) -> None:
    """Wait for queued device work, so wall-clock times cover it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class RecordingStream:
    """Wraps a ``{"task", **tensors}`` stream: keeps each batch and the time it was drawn."""

    def __init__(self, inner: Iterator[dict[str, Any]], device: torch.device) -> None:
        self.inner = inner
        self.device = device
        self.draw_times: list[float] = []
        self.batches: list[dict[str, Any]] = []

    def __iter__(self) -> RecordingStream:
        return self

    def __next__(self) -> dict[str, Any]:
        sync(self.device)  # the previous step's device work belongs to the previous step
        self.draw_times.append(time.perf_counter())
        batch = next(self.inner)
        self.batches.append(dict(batch))  # the engines pop "task" from the dict they get
        return batch

    def state_dict(self) -> dict[str, Any]:
        return self.inner.state_dict() if hasattr(self.inner, "state_dict") else {}  # type: ignore[attr-defined]

    def load_state_dict(self, state: dict[str, Any]) -> None:  # never resumed in a bench
        raise NotImplementedError


@dataclass
class BenchSession(Session):
    """A Session whose stream is recorded and whose checkpoints are not written."""

    stream_factory: StreamFactory | None = None
    recorder: RecordingStream | None = None
    end_time: float | None = None  # when the engine first asked to save: its last step is done

    @classmethod
    def wrap(cls, session: Session) -> BenchSession:
        return cls(**{f.name: getattr(session, f.name) for f in dataclasses.fields(Session)})

    def make_stream(self) -> RecordingStream:  # type: ignore[override]
        inner = self.stream_factory(self) if self.stream_factory else super().make_stream()
        self.recorder = RecordingStream(inner, self.device)
        return self.recorder

    def save(self, name: str, state: Any, step: int | None = None) -> Path | None:
        if self.end_time is None:
            sync(self.device)
            self.end_time = time.perf_counter()
        return None


@dataclass
class StepLog:
    """Per optimizer step of one engine run: seconds, task, real and processed (padded) tokens."""

    seconds: list[float]
    tasks: list[str]
    real_tokens: list[int]
    padded_tokens: list[int]
    batches: list[dict[str, Any]] = field(repr=False)

    def timed(self, warmup: int) -> StepLog:
        """The steps after the first ``warmup`` ones."""
        return StepLog(
            self.seconds[warmup:],
            self.tasks[warmup:],
            self.real_tokens[warmup:],
            self.padded_tokens[warmup:],
            self.batches[warmup:],
        )

    @property
    def total_seconds(self) -> float:
        return float(sum(self.seconds))

    def summary(self) -> dict[str, Any]:
        """Totals and rates for bench.json."""
        secs = self.total_seconds
        return {
            "steps": len(self.seconds),
            "seconds": round(secs, 4),
            "seconds_per_step": round(secs / max(len(self.seconds), 1), 4),
            "median_step_seconds": round(float(np.median(self.seconds)), 4) if self.seconds else None,
            "real_tokens": int(sum(self.real_tokens)),
            "padded_tokens": int(sum(self.padded_tokens)),
            "real_tokens_per_second": round(sum(self.real_tokens) / secs, 2) if secs else None,
            "steps_per_task": {t: self.tasks.count(t) for t in sorted(set(self.tasks))},
        }


def _tokens(batch: dict[str, Any]) -> tuple[int, int]:
    mask = batch["attention_mask"]
    return int(mask.sum()), int(mask.numel())


def run_engine(
    session: BenchSession,
    engine: Callable[..., dict[str, Any]],
    steps: int,
    stream_factory: StreamFactory | None = None,
) -> StepLog:
    """Train ``steps`` optimizer steps with ``engine`` (train_loop / train_with_trainer) and time each."""
    session.cfg.train.max_steps = steps
    session.stream_factory = stream_factory
    session.end_time = None
    engine(session, progress=False)
    rec, accum = session.recorder, session.cfg.train.gradient_accumulation_steps
    assert rec is not None and session.end_time is not None
    starts = rec.draw_times[::accum] + [session.end_time]
    batches = rec.batches
    tasks, real, padded = [], [], []
    for s in range(steps):
        group = batches[s * accum : (s + 1) * accum]
        tasks.append(group[0]["task"])
        counts = [_tokens(b) for b in group]
        real.append(sum(c[0] for c in counts))
        padded.append(sum(c[1] for c in counts))
    return StepLog(list(np.diff(starts)), tasks, real, padded, batches[: steps * accum])


def replay_bare(session: Session, log: StepLog, steps: int | None = None) -> list[float]:
    """Bare training steps over ``log``'s batches; seconds of each of the first ``steps`` steps.

    Bare = the recipe's maths and nothing else: forward, backward, gradient clipping, AdamW step,
    schedule step. What the engine adds on top (sampler, collation, loss bookkeeping, logging,
    progress bar, signal handling) is its overhead.
    """
    model, device, train = session.model, session.device, session.cfg.train
    optimizer, scheduler = session.make_optimizer()
    autocast = session.autocast_dtype
    accum = train.gradient_accumulation_steps
    count = len(log.batches) // accum if steps is None else steps
    model.train()
    seconds = []
    for s in range(count):
        group = log.batches[s * accum : (s + 1) * accum]
        sync(device)
        t0 = time.perf_counter()
        for batch in group:
            inputs = {k: v for k, v in batch.items() if k != "task"}
            with torch.autocast(device.type, dtype=autocast or torch.float32, enabled=autocast is not None):
                loss = model(batch["task"], **inputs).loss
            (loss / accum).backward()
        if train.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), train.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        sync(device)
        seconds.append(time.perf_counter() - t0)
    return seconds


# -- streams the bench trains on besides the product's MultiTaskStream ---------------------------
def pad_to_length(task: Any, batch: dict[str, torch.Tensor], length: int) -> dict[str, torch.Tensor]:
    """Pad a dynamically padded batch further, to ``length`` tokens (the fixed-length baseline)."""
    width = batch["input_ids"].shape[1]
    if width >= length:
        return batch
    out = dict(batch)
    for key in ("input_ids", "attention_mask", *task.token_fields):
        if key not in batch:
            continue
        if key == "input_ids":
            pad: Any = task.tokenizer.pad_token_id
        elif key.endswith("_mask"):
            pad = 0
        else:
            pad = task.pad_values.get(key, -100)
        value = batch[key]
        extra = value.new_full((value.shape[0], length - width, *value.shape[2:]), pad)
        out[key] = torch.cat([value, extra], dim=1)
    return out


class PlainStream:
    """The plain recipe: one task at a time, random-order batches padded to the baseline max length."""

    def __init__(
        self, data: dict[str, TaskData], plan: list[tuple[str, int]], seed: int, device: Any
    ) -> None:
        """``plan``: (task, number of batches) in training order."""
        self.data, self.device = data, device
        self.order: list[tuple[str, np.ndarray]] = []
        rng = np.random.default_rng(seed)
        for task, count in plan:
            td = self.data[task]
            size = td.task.settings.batch_size
            n = len(td.train.lengths)  # type: ignore[union-attr]
            rows: list[np.ndarray] = []
            while len(rows) < count:
                perm = rng.permutation(n)
                rows.extend(perm[i : i + size] for i in range(0, n, size))
            self.order.extend((task, r) for r in rows[:count])
        self.position = 0

    def __iter__(self) -> PlainStream:
        return self

    def __next__(self) -> dict[str, Any]:
        task, rows = self.order[self.position % len(self.order)]
        self.position += 1
        td = self.data[task]
        batch = batch_for(td.task, td.train, rows, self.device)  # type: ignore[arg-type]
        return {"task": task, **pad_to_length(td.task, batch, td.task.settings.max_length)}


class FixedStream:
    """The same batches over and over (compute-efficiency and memory runs)."""

    def __init__(self, batches: list[dict[str, Any]]) -> None:
        self.batches = batches
        self.position = 0

    def __iter__(self) -> FixedStream:
        return self

    def __next__(self) -> dict[str, Any]:
        batch = self.batches[self.position % len(self.batches)]
        self.position += 1
        return dict(batch)
