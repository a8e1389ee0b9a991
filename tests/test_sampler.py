"""Tests for the temperature-based task sampler."""

from __future__ import annotations

import itertools
import json
import math
from collections import Counter

import numpy as np
import pytest

import samplers.temperature as temperature_module
from samplers import AnnealSchedule, TemperatureSampler

SIZES = {"a": 1000, "b": 100, "c": 10}
N_DRAWS = 100_000


def target(sizes: dict[str, int], temperature: float, cap: int | None = None) -> dict[str, float]:
    """p_i ∝ min(n_i, cap)^(1/T), computed by hand from the formula."""
    capped = {k: (min(n, cap) if cap is not None else n) for k, n in sizes.items()}
    weights = {k: (1.0 if math.isinf(temperature) else n ** (1.0 / temperature)) for k, n in capped.items()}
    total = sum(weights.values())
    return {k: w / total for k, w in weights.items()}


def frequencies(names: list[str], tasks: list[str]) -> dict[str, float]:
    counts = Counter(names)
    return {t: counts[t] / len(names) for t in tasks}


def test_target_helper_matches_worked_values() -> None:
    # Hand-worked values, so the helper the other tests rely on is itself checked.
    assert target(SIZES, 1.0) == pytest.approx({"a": 1000 / 1110, "b": 100 / 1110, "c": 10 / 1110})
    assert target(SIZES, math.inf) == pytest.approx({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3})
    assert target(SIZES, 1.0, cap=50) == pytest.approx({"a": 50 / 110, "b": 50 / 110, "c": 10 / 110})


@pytest.mark.parametrize(
    ("temperature", "cap"),
    [(1.0, None), (2.0, None), (5.0, None), (1e9, None), (math.inf, None), (1.0, 50), (2.0, 50)],
)
def test_frequencies_match_target(temperature: float, cap: int | None) -> None:
    sampler = TemperatureSampler(SIZES, temperature=temperature, cap=cap, seed=7)
    expected = target(SIZES, temperature, cap)
    assert sampler.probabilities() == pytest.approx(expected, abs=1e-12)
    observed = frequencies(sampler.draw(N_DRAWS), sampler.tasks)
    for task in SIZES:
        assert abs(observed[task] - expected[task]) < 0.01, (task, observed, expected)


def test_small_temperature_concentrates_on_largest_task_without_overflow() -> None:
    sampler = TemperatureSampler(SIZES, temperature=1e-3, seed=0)
    probs = sampler.probabilities()
    assert probs["a"] == pytest.approx(1.0)
    assert set(sampler.draw(1000)) == {"a"}


def test_single_task_always_drawn() -> None:
    sampler = TemperatureSampler({"only": 3}, temperature=2.0)
    assert sampler.probabilities() == {"only": 1.0}
    assert sampler.draw(50) == ["only"] * 50


def test_tasks_keep_mapping_order_and_numpy_sizes_are_accepted() -> None:
    sampler = TemperatureSampler({"z": np.int64(5), "a": 7, "m": 1})
    assert sampler.tasks == ["z", "a", "m"]
    assert list(sampler.probabilities()) == ["z", "a", "m"]


def test_same_seed_same_sequence_different_seed_different() -> None:
    first = TemperatureSampler(SIZES, temperature=math.inf, seed=3).draw(300)
    again = TemperatureSampler(SIZES, temperature=math.inf, seed=3).draw(300)
    other = TemperatureSampler(SIZES, temperature=math.inf, seed=4).draw(300)
    assert first == again
    assert first != other


def test_draw_equals_repeated_next_constant_temperature() -> None:
    batched = TemperatureSampler(SIZES, temperature=2.0, seed=11)
    single = TemperatureSampler(SIZES, temperature=2.0, seed=11)
    got = batched.draw(5) + batched.draw(0) + batched.draw(2000)
    assert got == [next(single) for _ in range(2005)]
    assert batched.step == single.step == 2005


def test_draw_equals_repeated_next_across_anneal_window_and_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    # A tiny chunk makes draw() cross several chunk borders and the end of the annealing window.
    monkeypatch.setattr(temperature_module, "_CHUNK", 64)
    schedule = AnnealSchedule(start=1.0, end=20.0, steps=1000)
    batched = TemperatureSampler(SIZES, anneal=schedule, seed=5)
    single = TemperatureSampler(SIZES, anneal=schedule, seed=5)
    got = batched.draw(37) + batched.draw(1500) + batched.draw(100)
    assert got == [next(single) for _ in range(1637)]
    # The window really changes the outcome: the same uniforms at a constant T=1 differ.
    constant = TemperatureSampler(SIZES, temperature=1.0, seed=5).draw(1637)
    assert got != constant


def test_iteration_yields_the_same_stream() -> None:
    iterated = list(itertools.islice(iter(TemperatureSampler(SIZES, seed=9)), 40))
    assert iterated == TemperatureSampler(SIZES, seed=9).draw(40)


def test_anneal_probabilities_follow_linear_temperature() -> None:
    schedule = AnnealSchedule(start=1.0, end=5.0, steps=1000)
    sampler = TemperatureSampler(SIZES, anneal=schedule)
    assert sampler.probabilities(0) == pytest.approx(target(SIZES, 1.0), abs=1e-12)
    assert sampler.probabilities(250) == pytest.approx(target(SIZES, 2.0), abs=1e-12)
    assert sampler.probabilities(500) == pytest.approx(target(SIZES, 3.0), abs=1e-12)
    assert sampler.probabilities(1000) == pytest.approx(target(SIZES, 5.0), abs=1e-12)
    assert sampler.probabilities(10**9) == pytest.approx(target(SIZES, 5.0), abs=1e-12)
    assert sampler.probabilities() == sampler.probabilities(0)
    sampler.draw(250)
    assert sampler.probabilities() == pytest.approx(target(SIZES, 2.0), abs=1e-12)


def test_anneal_moves_drawn_distribution_from_start_to_end() -> None:
    steps = 20_000
    sampler = TemperatureSampler(SIZES, anneal=AnnealSchedule(start=1.0, end=10.0, steps=steps), seed=1)
    during = frequencies(sampler.draw(steps), sampler.tasks)
    after = frequencies(sampler.draw(N_DRAWS), sampler.tasks)
    # Expected share over the window: the average of the per-step targets.
    window = [target(SIZES, 1.0 + 9.0 * s / steps) for s in range(steps)]
    expected_during = {t: sum(p[t] for p in window) / steps for t in SIZES}
    expected_after = target(SIZES, 10.0)
    for task in SIZES:
        assert abs(during[task] - expected_during[task]) < 0.01
        assert abs(after[task] - expected_after[task]) < 0.01
    assert during["a"] > after["a"] + 0.1


def _json_round_trip(state: dict) -> dict:
    return json.loads(json.dumps(state, allow_nan=False))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"temperature": 2.0},
        {"temperature": math.inf, "cap": 50},
        {"anneal": AnnealSchedule(start=1.0, end=5.0, steps=1000)},
    ],
)
def test_restored_sampler_continues_the_sequence(kwargs: dict) -> None:
    original = TemperatureSampler(SIZES, seed=21, **kwargs)
    original.draw(300)  # mid-window for the annealed case
    state = _json_round_trip(original.state_dict())
    restored = TemperatureSampler(SIZES, seed=21, **kwargs)
    fresh = restored.draw(300)
    restored.load_state_dict(state)
    assert restored.step == 300
    continued = original.draw(1500)
    assert restored.draw(1500) == continued
    assert fresh != continued[:300]


def test_restore_takes_seed_and_step_from_state() -> None:
    original = TemperatureSampler(SIZES, temperature=math.inf, seed=123)
    original.draw(10)
    restored = TemperatureSampler(SIZES, temperature=math.inf, seed=0)
    restored.load_state_dict(_json_round_trip(original.state_dict()))
    assert restored.state_dict() == original.state_dict()
    assert restored.draw(200) == original.draw(200)


def test_state_is_strict_json_with_config_and_step() -> None:
    sampler = TemperatureSampler(SIZES, temperature=math.inf, cap=50, seed=2)
    sampler.draw(17)
    state = sampler.state_dict()
    text = json.dumps(state, allow_nan=False)  # raises if Infinity or NaN were in the state
    assert json.loads(text) == state
    assert state["step"] == 17
    assert state["seed"] == 2
    assert state["config"]["tasks"] == ["a", "b", "c"]
    assert state["config"]["cap"] == 50


@pytest.mark.parametrize(
    ("other_kwargs", "field"),
    [
        ({"sizes": {"a": 1000, "b": 100, "c": 11}}, "sizes"),
        ({"sizes": {"b": 100, "a": 1000, "c": 10}}, "tasks"),
        ({"temperature": 3.0}, "temperature"),
        ({"cap": 20}, "cap"),
        ({"anneal": AnnealSchedule(1.0, 2.0, 10)}, "anneal"),
    ],
)
def test_load_state_from_different_config_raises(other_kwargs: dict, field: str) -> None:
    state = TemperatureSampler(SIZES).state_dict()
    other = TemperatureSampler(**{"sizes": SIZES, **other_kwargs})
    with pytest.raises(ValueError, match=field):
        other.load_state_dict(state)
    assert other.step == 0


@pytest.mark.parametrize(
    "mutate",
    [
        lambda s: s.pop("rng"),
        lambda s: s.update(step=-1),
        lambda s: s.update(version=99),
        lambda s: s["rng"].update(bit_generator="MT19937"),
        lambda s: s["config"].update(temperature="hot"),
    ],
)
def test_load_malformed_state_raises(mutate) -> None:
    state = TemperatureSampler(SIZES).state_dict()
    mutate(state)
    with pytest.raises(ValueError):
        TemperatureSampler(SIZES).load_state_dict(state)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sizes": {}}, "non-empty"),
        ({"sizes": {"a": 0}}, "got 0"),
        ({"sizes": {"a": -3}}, "got -3"),
        ({"sizes": {"a": 2.5}}, "got 2.5"),
        ({"sizes": {"a": True}}, "got True"),
        ({"sizes": {"": 4}}, "non-empty strings"),
        ({"temperature": 0}, "got 0"),
        ({"temperature": -1.5}, "got -1.5"),
        ({"temperature": math.nan}, "got nan"),
        ({"cap": 0}, "got 0"),
        ({"cap": 2.0}, "got 2.0"),
        ({"seed": -1}, "got -1"),
        ({"temperature": 2.0, "anneal": AnnealSchedule(1.0, 2.0, 5)}, "either temperature"),
    ],
)
def test_invalid_arguments_raise(kwargs: dict, message: str) -> None:
    args = {"sizes": SIZES, **kwargs}
    with pytest.raises(ValueError, match=message):
        TemperatureSampler(**args)


@pytest.mark.parametrize(
    ("start", "end", "steps", "message"),
    [
        (0.0, 1.0, 10, "start temperature.*got 0.0"),
        (1.0, -2.0, 10, "end temperature.*got -2.0"),
        (math.inf, 1.0, 10, "finite.*got inf"),
        (1.0, 2.0, 0, "steps.*got 0"),
        (1.0, 2.0, 1.5, "steps.*got 1.5"),
    ],
)
def test_invalid_anneal_raises(start: float, end: float, steps: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AnnealSchedule(start=start, end=end, steps=steps)


def test_invalid_draw_count_and_step_raise() -> None:
    sampler = TemperatureSampler(SIZES)
    with pytest.raises(ValueError, match="got -1"):
        sampler.draw(-1)
    with pytest.raises(ValueError, match="got -2"):
        sampler.probabilities(-2)
    assert sampler.step == 0
