"""What a task sampler is given and what it must offer, whatever its rule."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class SamplerSpec:
    """Everything a run knows when it builds its task sampler (``sampler.*`` and the budget).

    ``sizes`` maps each task to its training units; its order, with ``seed``, fixes the sequence.
    ``total_draws`` is the number of batches the run draws (``max_steps`` x accumulation), for rules
    that change over the run. ``probabilities``, when set, are fixed shares that every sampler must
    realise: the per-task epoch targets were solved into them (:mod:`mtl.training.budget`).
    Otherwise ``weights`` (None: all 1) multiply each task's share under the sampler's own rule.
    ``temperature``, ``cap`` and ``anneal_to`` are the ``sampler`` section of the config; a rule that
    has no use for them ignores them.
    """

    sizes: Mapping[str, int]
    seed: int
    total_draws: int
    temperature: float = 2.0
    cap: int | None = None
    anneal_to: float | None = None
    weights: Mapping[str, float] | None = None
    probabilities: Mapping[str, float] | None = None


class TaskSampler(Protocol):
    """An endless, seeded, resumable stream of task names (one per batch the run draws).

    Every DDP rank builds it from the same spec and so draws the same task at each step.
    """

    tasks: list[str]

    def __next__(self) -> str: ...

    def __iter__(self) -> Iterator[str]: ...

    def draw(self, n: int) -> list[str]:
        """The next ``n`` task names, exactly what ``n`` calls to ``next`` would give."""
        ...

    def expected_counts(self, n: int, start: int = 0) -> dict[str, float]:
        """Expected draws of each task among draws ``start .. start + n - 1`` (the budget table)."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """The position in the stream, as strict JSON (saved with every checkpoint)."""
        ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue exactly from :meth:`state_dict`."""
        ...
