"""Training progress for people: a bar on a terminal, plain log lines anywhere else.

On a terminal, a tqdm bar whose postfix lists every task's mean loss over the last logging window,
always in the run's task order: a task not drawn in the window shows its last value in parentheses,
``(1.234)``, so a stale number never reads as current; ``-`` before its first batch. When the output is not a terminal (a log file, CI, ``nohup``, a notebook), carriage-return
redraws would pile up as one unreadable line, so one plain line is printed every ``log_every`` steps
instead, with the same numbers.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any, TextIO


def is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class Progress:
    """Shared by both engines (the Trainer's own bar and log printer are switched off)."""

    def __init__(
        self,
        total: int,
        initial: int,
        tasks: Sequence[str],
        *,
        enabled: bool = True,
        stream: TextIO | None = None,
    ) -> None:
        self.total, self.tasks = total, list(tasks)
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.last: dict[str, float] = {}
        self.fresh: set[str] = set()  # the tasks drawn in the last logging window
        self.bar = None
        self._t0, self._initial = time.perf_counter(), initial
        if enabled and is_terminal(self.stream):
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, desc="train", unit="step", file=self.stream)

    def postfix(self) -> str:
        """Every task in run order: ``ynat 1.234  nli -  sts (0.876)`` (parentheses: not drawn lately)."""
        return "  ".join(f"{t} {self._value(t)}" for t in self.tasks)

    def _value(self, task: str) -> str:
        if task not in self.last:
            return "-"
        return f"{self.last[task]:.3f}" if task in self.fresh else f"({self.last[task]:.3f})"

    def step(self, step: int, means: Mapping[str, float] | None, total_loss: float, lr: float) -> None:
        """After optimizer step ``step``; ``means`` is given at logging steps (the window's task means)."""
        if means is not None:
            self.last.update(means)
            self.fresh = set(means)
        if self.bar is not None:
            self.bar.update(1)
            if means is not None:
                self.bar.set_postfix_str(self.postfix(), refresh=False)
        elif self.enabled and means is not None:
            rate = (step - self._initial) / max(time.perf_counter() - self._t0, 1e-9)
            print(
                f"step {step}/{self.total} ({100 * step / self.total:.0f}%) {rate:.2f} step/s "
                f"lr {lr:.3g} loss {total_loss:.4f} | {self.postfix()}",
                file=self.stream,
                flush=True,
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
