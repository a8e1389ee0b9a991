"""Where a run's scalars, pictures and tables go: ``train.report_to`` (TensorBoard and/or Weights & Biases).

Both engines log through one :class:`Reporter`, so every destination gets the same tags: per-task
losses (``loss/<task>``), ``loss/total``, ``lr``, dev metrics (``dev/<task>/<metric>``), the per-task
bests, the confusion matrices of the final evaluation and the scoreboard table.

Each run, and each ``--resume`` of it, logs into a folder of its own under ``<output>/tensorboard``
(:func:`run_name`), so TensorBoard shows two runs into the same output folder as two curves rather than
one line drawn back over itself; :func:`mtl.tracking.curves.read_scalars` joins a run with its resumes again.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mtl.errors import KlueInputError
from mtl.tracking.tensorboard import TensorBoard

TENSORBOARD_DIR = "tensorboard"
WANDB_PIP = "pip install 'klue-mtl[wandb]'  (or: pip install wandb)"


def check_reporters(report_to: Sequence[str]) -> None:
    """A destination whose package is not installed is a config error, raised before any work."""
    if "wandb" in report_to:
        try:
            import wandb  # noqa: F401
        except ImportError:
            raise KlueInputError(
                None,
                "train.report_to",
                f"'wandb' needs the Weights & Biases package, which is not installed: {WANDB_PIP}",
                kind="key",
            ) from None


def run_name(start_step: int) -> str:
    """The log folder name of a run starting at ``start_step``: ``<UTC time>-start`` or ``-resume-<step>``.

    The time comes first, so sorting the names sorts the runs; the suffix says whether a folder
    continues the one before it (:func:`mtl.tracking.curves.read_scalars`).
    """
    # Milliseconds too: a run stopped early and resumed at once starts twice within one second, and
    # "resume" sorts before "start" when the rest of the names is equal.
    now = time.time()
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now)) + f"{int(now * 1000) % 1000:03d}"
    return f"{stamp}-start" if start_step == 0 else f"{stamp}-resume-{start_step}"


class Wandb:
    """One Weights & Biases run (offline with ``WANDB_MODE=offline``); same calls as :class:`TensorBoard`.

    Steps are logged as a ``step`` value beside each entry (the x axis of every chart), not as wandb's
    own step counter: the final evaluation logs at the step the last losses were logged at.
    """

    def __init__(self, output_dir: Path, name: str, config: Mapping[str, Any]) -> None:
        import wandb

        self._wandb = wandb
        self.run = wandb.init(
            project=os.environ.get("WANDB_PROJECT", "klue-mtl"),
            name=f"{output_dir.name}/{name}",
            group=str(output_dir.name),
            dir=os.environ.get("WANDB_DIR") or str(output_dir),
            config=dict(config),
            reinit="create_new",
        )
        self.run.define_metric("step")
        self.run.define_metric("*", step_metric="step")

    def scalar(self, tag: str, value: float, step: int) -> None:
        self.run.log({tag: value, "step": step})

    def text(self, tag: str, text: str, step: int = 0) -> None:
        self.run.log({tag: self._wandb.Html(f"<pre>{text}</pre>"), "step": step})

    def image(self, tag: str, image: Any, step: int = 0) -> None:
        self.run.log({tag: self._wandb.Image(image), "step": step})

    def table(self, tag: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], step: int = 0) -> None:
        self.run.log(
            {tag: self._wandb.Table(columns=list(columns), data=[list(r) for r in rows]), "step": step}
        )

    def close(self) -> None:
        self.run.finish()


class Reporter:
    """Fans every call out to the destinations in ``train.report_to``; nothing off rank 0."""

    def __init__(
        self,
        output_dir: Path,
        report_to: Sequence[str],
        *,
        start_step: int,
        config: Mapping[str, Any],
        enabled: bool = True,
    ) -> None:
        self.name = run_name(start_step)
        self.log_dir = output_dir / TENSORBOARD_DIR / self.name
        self.sinks: list[Any] = []
        if not enabled:
            return
        if "tensorboard" in report_to:
            tb = TensorBoard(self.log_dir)
            # The resolved config, readable in TensorBoard's text tab.
            tb.text("config", "    " + json.dumps(config, indent=2).replace("\n", "\n    "), start_step)
            self.sinks.append(tb)
        if "wandb" in report_to:
            self.sinks.append(Wandb(output_dir, self.name, config))

    def scalar(self, tag: str, value: float, step: int) -> None:
        for sink in self.sinks:
            sink.scalar(tag, value, step)

    def text(self, tag: str, text: str, step: int = 0) -> None:
        for sink in self.sinks:
            sink.text(tag, text, step)

    def image(self, tag: str, image: Any, step: int = 0) -> None:
        """An HWC uint8 array (or a PIL image for wandb)."""
        for sink in self.sinks:
            sink.image(tag, image, step)

    def table(self, tag: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], step: int = 0) -> None:
        """A table: a wandb Table, and a Markdown table in TensorBoard's text tab."""
        for sink in self.sinks:
            if isinstance(sink, Wandb):
                sink.table(tag, columns, rows, step)
            else:
                lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
                lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]
                sink.text(tag, "\n".join(lines), step)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()
