"""Dynamic micro-batching: concurrent requests for the same task share one model call.

Requests are queued per key (a task name, or the analyze key). One dispatcher coroutine takes the
key whose oldest request has waited longest, waits until that request is ``max_wait`` old or the
key holds ``max_batch`` inputs, and hands the collected inputs to the runner as one call in a
single worker thread, so the event loop keeps accepting requests while the model runs. While one
batch runs, the next one fills up: under load the batches grow by themselves, with no wait at all.

The queue is bounded by inputs waiting: a request that would push it past ``max_queue`` is refused
(:class:`QueueFull`, the server's 503) instead of letting memory and latency grow without end.
A batch that fails is re-run request by request, so one request's failure is never anyone else's.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MicroBatcher", "QueueFull"]

Runner = Callable[[str, list[Any]], list[Any]]


class QueueFull(Exception):
    """The batcher holds ``max_queue`` waiting inputs already: the request is refused, not queued."""


@dataclass
class _Job:
    key: str
    items: list[Any]
    future: asyncio.Future[list[Any]]
    arrived: float


@dataclass
class BatchStats:
    """What the batcher has done, for ``/healthz`` and the bench (how well requests were grouped)."""

    batches: int = 0
    requests: int = 0
    inputs: int = 0
    largest_batch: int = 0
    sizes: list[int] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The counters as JSON (mean requests per model call included)."""
        return {
            "batches": self.batches,
            "requests": self.requests,
            "inputs": self.inputs,
            "largest_batch": self.largest_batch,
            "mean_requests_per_batch": round(self.requests / self.batches, 3) if self.batches else 0.0,
        }


class MicroBatcher:
    """Groups requests of the same key into one ``runner(key, inputs)`` call (see the module doc).

    Args:
        runner: ``(key, inputs) -> one result per input``; runs in the worker thread.
        max_batch: inputs per call; a single request larger than this runs alone, whole.
        max_wait_ms: how long the oldest request of a key may wait for company.
        max_queue: inputs that may wait at once; more is :class:`QueueFull`.
    """

    def __init__(
        self, runner: Runner, *, max_batch: int = 32, max_wait_ms: float = 5.0, max_queue: int = 512
    ):
        if max_batch < 1 or max_queue < 1 or max_wait_ms < 0:
            raise ValueError("max_batch and max_queue must be positive, max_wait_ms not negative")
        self.runner = runner
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self.stats = BatchStats()
        self._queues: dict[str, deque[_Job]] = {}
        self._waiting = 0  # inputs queued, not yet taken into a batch
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        # One thread: the model is one set of weights; torch parallelises inside each call.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="klue-mtl-inference")

    @property
    def waiting(self) -> int:
        """Inputs queued and not yet in a running batch."""
        return self._waiting

    def start(self) -> None:
        """Start the dispatcher on the running event loop."""
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._dispatch(), name="klue-mtl-batcher")

    async def stop(self) -> None:
        """Stop dispatching; requests still queued fail with ``CancelledError``."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for queue in self._queues.values():
            for job in queue:
                if not job.future.done():
                    job.future.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def submit(self, key: str, items: Sequence[Any]) -> list[Any]:
        """One result per item, computed in a batch with whatever else arrives for ``key`` meanwhile.

        Raises:
            QueueFull: the queue cannot take ``len(items)`` more inputs.
        """
        if self._wake is None:
            raise RuntimeError("MicroBatcher.start() was not called")
        items = list(items)
        if self._waiting + len(items) > self.max_queue:
            raise QueueFull(
                f"{self._waiting} inputs are waiting (the limit is {self.max_queue}); retry later"
            )
        loop = asyncio.get_running_loop()
        job = _Job(key, items, loop.create_future(), time.monotonic())
        self._queues.setdefault(key, deque()).append(job)
        self._waiting += len(items)
        self._wake.set()
        return await job.future

    # -- dispatcher ------------------------------------------------------------------------------
    def _oldest_key(self) -> str | None:
        heads = [(q[0].arrived, k) for k, q in self._queues.items() if q]
        return min(heads)[1] if heads else None

    async def _dispatch(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            while (key := self._oldest_key()) is not None:
                queue = self._queues[key]
                deadline = queue[0].arrived + self.max_wait
                # Wait for company only while the batch is short and the oldest request may still wait.
                while sum(len(j.items) for j in queue) < self.max_batch:
                    delay = deadline - time.monotonic()
                    if delay <= 0:
                        break
                    self._wake.clear()
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), delay)
                jobs = [queue.popleft()]
                size = len(jobs[0].items)
                while queue and size + len(queue[0].items) <= self.max_batch:
                    size += len(queue[0].items)
                    jobs.append(queue.popleft())
                self._waiting -= size
                live = [j for j in jobs if not j.future.done()]  # a cancelled request costs nothing
                if live:
                    await self._run(key, live)

    async def _run(self, key: str, jobs: list[_Job]) -> None:
        loop = asyncio.get_running_loop()
        items = [x for j in jobs for x in j.items]
        self.stats.batches += 1
        self.stats.requests += len(jobs)
        self.stats.inputs += len(items)
        self.stats.largest_batch = max(self.stats.largest_batch, len(items))
        try:
            results = await loop.run_in_executor(self._executor, self.runner, key, items)
        except Exception as err:  # noqa: BLE001 - handed to the requests, never lost
            if len(jobs) == 1:
                _settle(jobs[0], error=err)
                return
            # Someone's input broke the batch: each request again on its own, so only it fails.
            for job in jobs:
                try:
                    _settle(job, await loop.run_in_executor(self._executor, self.runner, key, job.items))
                except Exception as own:  # noqa: BLE001
                    _settle(job, error=own)
            return
        start = 0
        for job in jobs:
            _settle(job, results[start : start + len(job.items)])
            start += len(job.items)


def _settle(job: _Job, results: list[Any] | None = None, *, error: BaseException | None = None) -> None:
    if job.future.done():  # the client went away
        return
    if error is not None:
        job.future.set_exception(error)
    else:
        job.future.set_result(list(results or []))
