"""Temperature-based task sampler: which task's batch comes next in multi-task training.

Task ``i`` with ``n_i`` training units is drawn with probability ``p_i ∝ min(n_i, cap) ** (1 / T)``.
``T = 1`` samples in proportion to size, ``T = inf`` uniformly; an optional :class:`AnnealSchedule`
moves ``T`` linearly from one value to another over the first steps of training.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from samplers.base import SamplerSpec

STATE_FORMAT = "klue-mtl/temperature-sampler"
STATE_VERSION = 1

# Rows of per-step cumulative probabilities built at once while annealing; bounds the memory of
# draw(n) for very large n (rows x tasks float64) without changing the drawn sequence.
_CHUNK = 1 << 16


def _is_int(value: object) -> bool:
    # bool is an int subclass, but True as a size or a cap is always a mistake.
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_temperature(name: str, value: object, allow_inf: bool) -> float:
    if not _is_real(value) or math.isnan(float(value)) or float(value) <= 0:
        raise ValueError(f"{name} must be a number > 0, got {value!r}")
    if not allow_inf and math.isinf(float(value)):
        raise ValueError(
            f"{name} must be finite (a linear schedule cannot start or end at infinity), got {value!r}"
        )
    return float(value)


def _encode_float(value: float) -> float | str:
    # Strict JSON has no Infinity; "inf" keeps the state loadable by any JSON reader.
    return "inf" if math.isinf(value) else value


def _decode_float(value: object) -> float:
    if value == "inf":
        return math.inf
    if not _is_real(value):
        raise ValueError(f"sampler state: expected a number or 'inf', got {value!r}")
    return float(value)


@dataclass(frozen=True)
class AnnealSchedule:
    """Temperature changing linearly over training (PALs-style annealing).

    The temperature for draw number ``s`` is ``start + (end - start) * min(s, steps) / steps``:
    ``start`` at step 0, ``end`` from step ``steps`` on. Both ends must be finite; use a large value
    (for example 1e6) to approach uniform sampling.
    """

    start: float
    end: float
    steps: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", _check_temperature("anneal start temperature", self.start, False))
        object.__setattr__(self, "end", _check_temperature("anneal end temperature", self.end, False))
        if not _is_int(self.steps) or self.steps < 1:
            raise ValueError(f"anneal steps must be an integer >= 1, got {self.steps!r}")
        object.__setattr__(self, "steps", int(self.steps))

    def temperatures(self, steps: np.ndarray) -> np.ndarray:
        """Temperature at each of ``steps`` (non-negative integers)."""
        frac = np.minimum(steps, self.steps).astype(np.float64) / self.steps
        # start*(1-f) + end*f is exactly `start` at f=0 and exactly `end` at f=1.
        return self.start * (1.0 - frac) + self.end * frac

    def to_dict(self) -> dict[str, Any]:
        """The schedule as a JSON-ready dict."""
        return {"start": self.start, "end": self.end, "steps": self.steps}


class TemperatureSampler:
    """Infinite, seeded, resumable stream of task names, drawn with ``p_i ∝ min(n_i, cap) ** (1/T)``.

    ``sizes`` maps each task to its number of training units (examples, batches: whatever the
    caller counts; the sampler only uses the ratios). ``tasks`` keeps the mapping's order, which
    together with ``seed`` fixes the sequence. With ``anneal`` the temperature follows the schedule
    and ``temperature`` must be left at its default.

    Distributed training: nothing in the sampler depends on the process rank. Every rank builds it
    with the same sizes and the same seed, so every rank draws the same task at each step and the
    ranks stay in lockstep (all of them run a batch of the same task, which the gradient all-reduce
    needs). Each rank then reads its own shard of that task's batches.

    One uniform random number is consumed per draw and mapped through the step's cumulative
    probabilities, so :meth:`draw` (vectorised) yields exactly what the same number of
    :func:`next` calls would. :meth:`state_dict` is strict JSON; :meth:`load_state_dict` resumes
    the exact sequence.
    """

    def __init__(
        self,
        sizes: Mapping[str, int],
        temperature: float = 1.0,
        cap: int | None = None,
        anneal: AnnealSchedule | None = None,
        seed: int = 0,
        weights: Mapping[str, float] | None = None,
    ) -> None:
        if not isinstance(sizes, Mapping) or len(sizes) == 0:
            raise ValueError(f"sizes must be a non-empty mapping of task name to size, got {sizes!r}")
        for name, size in sizes.items():
            if not isinstance(name, str) or not name:
                raise ValueError(f"task names must be non-empty strings, got {name!r}")
            if not _is_int(size) or size < 1:
                raise ValueError(f"size of task {name!r} must be a positive integer, got {size!r}")
        temperature = _check_temperature("temperature", temperature, True)
        if cap is not None and (not _is_int(cap) or cap < 1):
            raise ValueError(f"cap must be None or an integer >= 1, got {cap!r}")
        if anneal is not None and not isinstance(anneal, AnnealSchedule):
            raise ValueError(f"anneal must be an AnnealSchedule or None, got {anneal!r}")
        if anneal is not None and temperature != 1.0:
            raise ValueError(
                f"give either temperature ({temperature!r}) or anneal ({anneal!r}), not both: "
                "the schedule sets the temperature"
            )
        if not _is_int(seed) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        if weights is not None:
            if not isinstance(weights, Mapping) or set(weights) != set(sizes):
                raise ValueError(f"weights must map exactly the tasks of sizes to numbers, got {weights!r}")
            for name, w in weights.items():
                if not _is_real(w) or not math.isfinite(float(w)) or float(w) <= 0:
                    raise ValueError(f"weight of task {name!r} must be a finite number > 0, got {w!r}")

        self.tasks: list[str] = list(sizes)
        self._sizes = {name: int(size) for name, size in sizes.items()}
        self._temperature = temperature
        self._cap = None if cap is None else int(cap)
        self._anneal = anneal
        self._seed = int(seed)
        self._step = 0
        self._rng = np.random.Generator(np.random.PCG64(self._seed))

        counts = np.array([self._sizes[t] for t in self.tasks], dtype=np.float64)
        if self._cap is not None:
            counts = np.minimum(counts, self._cap)
        self._log_counts = np.log(counts)
        # Weights multiply each task's tempered share (p_i ~ w_i * n_i^(1/T)): log w_i is added after
        # dividing by T. None keeps the state (and so old checkpoints) exactly as before weights existed.
        self._weights_in = None if weights is None else {t: float(weights[t]) for t in self.tasks}
        self._log_weights = np.zeros(len(self.tasks))
        if self._weights_in is not None:
            self._log_weights = np.log(np.array([self._weights_in[t] for t in self.tasks]))
        # The temperature is constant outside the annealing window: one cumulative table serves it.
        constant_t = anneal.end if anneal is not None else temperature
        self._constant_cdf = self._cdf_rows(np.array([constant_t]))[0]

    @classmethod
    def from_spec(cls, spec: SamplerSpec) -> TemperatureSampler:
        """The sampler of a run (``sampler.name: temperature``, the default).

        Fixed ``spec.probabilities`` (epoch targets) are realised as a uniform base (``T = inf``)
        times the probabilities as weights; otherwise the configured temperature, or its anneal to
        ``spec.anneal_to`` over the run's draws, with ``spec.weights``.
        """
        if spec.probabilities is not None:
            return cls(
                spec.sizes, temperature=math.inf, cap=spec.cap, seed=spec.seed, weights=spec.probabilities
            )
        anneal = None
        if spec.anneal_to is not None:
            anneal = AnnealSchedule(spec.temperature, spec.anneal_to, spec.total_draws)
        return cls(
            spec.sizes,
            temperature=1.0 if anneal else spec.temperature,
            cap=spec.cap,
            anneal=anneal,
            seed=spec.seed,
            weights=spec.weights,
        )

    @property
    def step(self) -> int:
        """Number of tasks drawn so far (the index of the next draw)."""
        return self._step

    def _weights(self, temperatures: np.ndarray) -> np.ndarray:
        """Unnormalised weights, one row per temperature; T = inf gives log/T = 0, i.e. uniform."""
        z = self._log_counts[None, :] / temperatures[:, None] + self._log_weights[None, :]
        # Shift by the row maximum so small temperatures cannot overflow exp.
        return np.exp(z - z.max(axis=1, keepdims=True))

    def _cdf_rows(self, temperatures: np.ndarray) -> np.ndarray:
        cdf = np.cumsum(self._weights(temperatures), axis=1)
        # Dividing by the last entry makes it exactly 1.0, so a uniform in [0, 1) never falls past it.
        return cdf / cdf[:, -1:]

    def _temperatures(self, steps: np.ndarray) -> np.ndarray:
        if self._anneal is None:
            return np.full(steps.shape, self._temperature)
        return self._anneal.temperatures(steps)

    def probabilities(self, step: int | None = None) -> dict[str, float]:
        """Probability of each task at ``step`` (default: the next draw), in ``tasks`` order."""
        if step is None:
            step = self._step
        if not _is_int(step) or step < 0:
            raise ValueError(f"step must be a non-negative integer, got {step!r}")
        weights = self._weights(self._temperatures(np.array([step])))[0]
        probs = weights / weights.sum()
        return {name: float(p) for name, p in zip(self.tasks, probs, strict=True)}

    def expected_counts(self, n: int, start: int = 0) -> dict[str, float]:
        """Expected number of draws of each task among draws ``start .. start + n - 1``.

        The sum of each draw's probabilities, so it follows an annealing schedule exactly.
        """
        if not _is_int(n) or n < 0 or not _is_int(start) or start < 0:
            raise ValueError(f"n and start must be non-negative integers, got {n!r}, {start!r}")
        total = np.zeros(len(self.tasks))
        n_annealed = 0 if self._anneal is None else max(0, min(n, self._anneal.steps - start))
        for lo in range(0, n_annealed, _CHUNK):
            steps = np.arange(start + lo, start + min(lo + _CHUNK, n_annealed))
            w = self._weights(self._temperatures(steps))
            total += (w / w.sum(axis=1, keepdims=True)).sum(axis=0)
        constant_t = self._anneal.end if self._anneal is not None else self._temperature
        w = self._weights(np.array([constant_t]))[0]
        total += (n - n_annealed) * w / w.sum()
        return {name: float(c) for name, c in zip(self.tasks, total, strict=True)}

    def _indices(self, first_step: int, uniforms: np.ndarray) -> np.ndarray:
        """Task index for draws ``first_step, first_step + 1, ...`` given one uniform per draw."""
        n = uniforms.shape[0]
        out = np.empty(n, dtype=np.int64)
        # Draws inside the annealing window each get their own table; the rest share the constant one.
        n_annealed = 0 if self._anneal is None else max(0, min(n, self._anneal.steps - first_step))
        for lo in range(0, n_annealed, _CHUNK):
            hi = min(lo + _CHUNK, n_annealed)
            steps = np.arange(first_step + lo, first_step + hi)
            cdf = self._cdf_rows(self._temperatures(steps))
            # Count of cumulative entries <= u, i.e. searchsorted(side="right") row by row.
            out[lo:hi] = (uniforms[lo:hi, None] >= cdf).sum(axis=1)
        out[n_annealed:] = np.searchsorted(self._constant_cdf, uniforms[n_annealed:], side="right")
        # Guard only; unreachable because the last cumulative entry is exactly 1.0 and u < 1.
        return np.minimum(out, len(self.tasks) - 1)

    def draw(self, n: int) -> list[str]:
        """The next ``n`` task names (the same as ``n`` calls to ``next``), advancing the step by ``n``."""
        if not _is_int(n) or n < 0:
            raise ValueError(f"n must be a non-negative integer, got {n!r}")
        n = int(n)
        if n == 0:
            return []
        # Generator.random(n) consumes the bit stream exactly like n calls of random().
        indices = self._indices(self._step, self._rng.random(n))
        self._step += n
        return [self.tasks[i] for i in indices.tolist()]

    def __next__(self) -> str:
        return self.draw(1)[0]

    def __iter__(self) -> Iterator[str]:
        return self

    def _config(self) -> dict[str, Any]:
        return {
            "tasks": list(self.tasks),
            "sizes": dict(self._sizes),
            "temperature": _encode_float(self._temperature),
            "cap": self._cap,
            "anneal": None if self._anneal is None else self._anneal.to_dict(),
            **({} if self._weights_in is None else {"weights": dict(self._weights_in)}),
        }

    def state_dict(self) -> dict[str, Any]:
        """Config, step, seed and generator state; strict JSON (no NaN/Infinity, no 128-bit ints)."""
        rng = self._rng.bit_generator.state
        return {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "config": self._config(),
            "seed": self._seed,
            "step": self._step,
            "rng": {
                "bit_generator": rng["bit_generator"],
                # PCG64's 128-bit words as decimal strings: many JSON readers round big integers.
                "state": str(rng["state"]["state"]),
                "inc": str(rng["state"]["inc"]),
                "has_uint32": int(rng["has_uint32"]),
                "uinteger": int(rng["uinteger"]),
            },
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Resume from :meth:`state_dict` output (also after a JSON round trip).

        The state must come from a sampler with the same tasks, sizes, temperature, cap and anneal
        schedule; a mismatch raises ``ValueError`` naming the field, because the resumed sequence
        would otherwise silently follow a different distribution. Step, seed and generator state
        are taken from ``state``.
        """
        try:
            if state["format"] != STATE_FORMAT or state["version"] != STATE_VERSION:
                raise ValueError(
                    f"sampler state: unsupported format/version {state['format']!r}/{state['version']!r}"
                )
            saved = dict(state["config"])
            saved["temperature"] = _encode_float(_decode_float(saved["temperature"]))
            step, seed, rng = state["step"], state["seed"], state["rng"]
            bit_state = {
                "bit_generator": rng["bit_generator"],
                "state": {"state": int(rng["state"]), "inc": int(rng["inc"])},
                "has_uint32": int(rng["has_uint32"]),
                "uinteger": int(rng["uinteger"]),
            }
        except (KeyError, TypeError) as exc:
            raise ValueError(f"sampler state is malformed: {exc!r}") from exc
        if not _is_int(step) or step < 0:
            raise ValueError(f"sampler state: step must be a non-negative integer, got {step!r}")
        if not _is_int(seed) or seed < 0:
            raise ValueError(f"sampler state: seed must be a non-negative integer, got {seed!r}")
        if bit_state["bit_generator"] != "PCG64":
            raise ValueError(f"sampler state: expected a PCG64 generator, got {bit_state['bit_generator']!r}")
        current = self._config()
        for key in [*current, *(k for k in saved if k not in current)]:
            if saved.get(key) != current.get(key):
                raise ValueError(
                    f"sampler state does not match this sampler: {key} is {saved.get(key)!r} in the "
                    f"state but {current.get(key)!r} here"
                )
        rng_obj = np.random.Generator(np.random.PCG64())
        rng_obj.bit_generator.state = bit_state
        self._rng = rng_obj
        self._step = int(step)
        self._seed = int(seed)
