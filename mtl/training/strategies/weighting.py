"""Loss weighting strategies (``train.weighting``): how each task's batch loss enters the step's loss.

Every strategy weighs one task's loss at a time (:meth:`Weighting.weigh`), so it works the same with
one task per step and with ``train.tasks_per_step`` > 1. ``tasks.<t>.loss_weight`` multiplies the
loss first under every strategy. Named strategies live in a registry, as LibMTL's do; a strategy of
your own is a :class:`Weighting` subclass decorated with :func:`register_weighting`.

- ``static`` (default): ``loss_weight * L_t``, exactly the behaviour before strategies existed.
- ``uncertainty`` (Kendall, Gal & Cipolla 2018, homoscedastic uncertainty): one learned log-variance
  ``s_t`` per task, ``0.5 * exp(-s_t) * L_t + 0.5 * s_t`` (the paper's regression form, used for
  every task, as TorchJD's ``UW`` and LibMTL do). Minimising it over ``s_t`` gives
  ``exp(-s_t) = 1 / L_t``: a task's weight tends to the inverse of its loss scale. The ``s_t`` train
  with the model, in their own optimizer group without weight decay (:mod:`mtl.training.optim`).
- ``dwa`` (dynamic weight average, Liu, Johns & Davison 2019, temperature 2): the weight of task
  ``t`` is ``n * softmax_t(r / 2)`` with ``r_t`` the ratio of its mean loss over the last two
  windows of ``train.dwa_window`` steps (the paper's epochs), ``n`` the number of tasks; 1 until
  two windows are complete. Only the batches a task had count toward its mean, so it works with one
  task per step too.

A strategy's state (learned values, running means) is plain JSON (:meth:`Weighting.state`) saved
with every checkpoint: ``--resume`` continues bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

WEIGHTINGS: dict[str, type[Weighting]] = {}


def register_weighting(name: str) -> Callable[[type[Weighting]], type[Weighting]]:
    """Class decorator: make a :class:`Weighting` subclass available as ``train.weighting: name``."""

    def add(cls: type[Weighting]) -> type[Weighting]:
        WEIGHTINGS[name] = cls
        return cls

    return add


class Weighting(nn.Module):
    """Base class: weighs one task's batch loss; holds learned or running state, if any.

    ``loss_weights`` are the tasks' ``loss_weight`` in run order (every task of the run, not only
    those of one step); ``window`` is ``train.dwa_window``.
    """

    def __init__(self, loss_weights: Mapping[str, float], window: int) -> None:
        super().__init__()
        self.tasks = list(loss_weights)
        self.loss_weights = dict(loss_weights)
        self.window = window

    def weigh(self, task: str, loss: torch.Tensor) -> torch.Tensor:
        """The part of the step's loss that ``task``'s batch loss ``loss`` contributes."""
        raise NotImplementedError

    def weights(self) -> dict[str, float]:
        """The current multiplier of every task's loss (logged as ``weight/<task>``)."""
        return dict(self.loss_weights)

    def end_step(self, step: int) -> None:
        """Called after optimizer step ``step`` (running statistics roll here)."""

    def state(self) -> dict[str, Any]:
        """JSON state for the checkpoint (empty for stateless strategies)."""
        return {}

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Continue from :meth:`state`."""


@register_weighting("static")
class StaticWeighting(Weighting):
    """``loss_weight * L_t``: fixed per-task weights (``tasks.<t>.loss_weight``)."""

    def weigh(self, task: str, loss: torch.Tensor) -> torch.Tensor:
        return loss * self.loss_weights[task]


@register_weighting("uncertainty")
class UncertaintyWeighting(Weighting):
    """Learned homoscedastic uncertainty: ``0.5 * exp(-s_t) * w_t * L_t + 0.5 * s_t``, ``s_t`` from 0."""

    def __init__(self, loss_weights: Mapping[str, float], window: int) -> None:
        super().__init__(loss_weights, window)
        self.log_vars = nn.Parameter(torch.zeros(len(self.tasks)))

    def weigh(self, task: str, loss: torch.Tensor) -> torch.Tensor:
        s = self.log_vars[self.tasks.index(task)]
        return 0.5 * torch.exp(-s) * (loss * self.loss_weights[task]) + 0.5 * s

    def weights(self) -> dict[str, float]:
        return {
            t: 0.5 * math.exp(-float(s)) * self.loss_weights[t]
            for t, s in zip(self.tasks, self.log_vars.tolist(), strict=True)
        }

    def state(self) -> dict[str, Any]:
        # float32 values written as Python floats (float64) read back exactly.
        return {"log_vars": self.log_vars.detach().cpu().tolist()}

    def load_state(self, state: Mapping[str, Any]) -> None:
        with torch.no_grad():
            self.log_vars.copy_(torch.tensor(state["log_vars"], dtype=self.log_vars.dtype))


@register_weighting("dwa")
class DynamicWeightAverage(Weighting):
    """``n * softmax(r / T)`` with ``r_t`` = mean loss of the last window / of the one before; T = 2."""

    temperature = 2.0

    def __init__(self, loss_weights: Mapping[str, float], window: int) -> None:
        super().__init__(loss_weights, window)
        # The current window, summed on the device (float64): read once per window, not per batch.
        self.sums: dict[str, torch.Tensor | float] = {t: 0.0 for t in self.tasks}
        self.counts = {t: 0 for t in self.tasks}
        self.means: dict[str, list[float]] = {t: [] for t in self.tasks}  # the last two windows
        self._weights = {t: 1.0 for t in self.tasks}

    def weigh(self, task: str, loss: torch.Tensor) -> torch.Tensor:
        self.sums[task] = self.sums[task] + loss.detach().double()
        self.counts[task] += 1
        return loss * (self.loss_weights[task] * self._weights[task])

    def weights(self) -> dict[str, float]:
        return {t: self.loss_weights[t] * self._weights[t] for t in self.tasks}

    def end_step(self, step: int) -> None:
        if step % self.window:
            return
        for t in self.tasks:
            mean = float(self.sums[t]) / self.counts[t] if self.counts[t] else math.nan
            # A task not drawn in the window (or with a non-finite loss in it) keeps its last two means.
            if math.isfinite(mean):
                self.means[t] = [*self.means[t], mean][-2:]
            self.sums[t], self.counts[t] = 0.0, 0
        if all(len(m) == 2 for m in self.means.values()):
            rates = torch.tensor([m[1] / m[0] for m in self.means.values()], dtype=torch.float64)
            weights = len(self.tasks) * torch.softmax(rates / self.temperature, dim=0)
            self._weights = dict(zip(self.tasks, weights.tolist(), strict=True))

    def state(self) -> dict[str, Any]:
        sums = {t: float(v) for t, v in self.sums.items()}  # float64 values: exact in JSON
        return {"sums": sums, "counts": self.counts, "means": self.means, "weights": self._weights}

    def load_state(self, state: Mapping[str, Any]) -> None:
        self.sums, self.counts = dict(state["sums"]), dict(state["counts"])
        self.means = {t: list(m) for t, m in state["means"].items()}
        self._weights = dict(state["weights"])


def build_weighting(name: str, loss_weights: Mapping[str, float], window: int) -> Weighting:
    """The registered strategy ``name`` (checked by :func:`mtl.training.strategies.check_strategies`)."""
    return WEIGHTINGS[name](loss_weights, window)
