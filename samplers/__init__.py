"""Task samplers: decide which task's batch the multi-task loop runs next."""

from samplers.temperature import AnnealSchedule, TemperatureSampler

__all__ = ["AnnealSchedule", "TemperatureSampler"]
