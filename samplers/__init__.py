"""Task samplers: decide which task's batch the multi-task loop runs next.

A registry from the name in the config (``sampler.name``) to a factory that builds the sampler
from a :class:`SamplerSpec`; today's temperature sampler is the default (``temperature``). Add a
rule of your own with :func:`register_sampler` in a module listed under ``imports:``.
"""

from __future__ import annotations

from collections.abc import Callable

from samplers.base import SamplerSpec, TaskSampler
from samplers.temperature import AnnealSchedule, TemperatureSampler

SamplerFactory = Callable[[SamplerSpec], TaskSampler]

SAMPLERS: dict[str, SamplerFactory] = {"temperature": TemperatureSampler.from_spec}


def register_sampler(name: str) -> Callable[[SamplerFactory], SamplerFactory]:
    """Make a sampler factory available as ``sampler.name: <name>`` (a decorator).

    The factory takes a :class:`SamplerSpec` and returns a :class:`TaskSampler`; it must honour
    ``spec.probabilities`` when they are set (the run's epoch targets depend on it).
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"a sampler name is a non-empty string, got {name!r}")

    def register(factory: SamplerFactory) -> SamplerFactory:
        known = SAMPLERS.get(name)
        if known is not None and known is not factory:
            raise ValueError(f"a sampler named {name!r} is already registered ({known.__qualname__})")
        SAMPLERS[name] = factory
        return factory

    return register


def build_sampler(name: str, spec: SamplerSpec) -> TaskSampler:
    """The sampler registered as ``name``, built from ``spec``.

    Raises:
        ValueError: ``name`` is not registered.
    """
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; known samplers: {', '.join(sorted(SAMPLERS))}")
    return SAMPLERS[name](spec)


__all__ = [
    "SAMPLERS",
    "AnnealSchedule",
    "SamplerSpec",
    "TaskSampler",
    "TemperatureSampler",
    "build_sampler",
    "register_sampler",
]
