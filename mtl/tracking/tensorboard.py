"""A thin TensorBoard writer (``torch.utils.tensorboard``) that writes nothing off rank 0."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class TensorBoard:
    """Scalars, text, figures and images under one log folder; ``enabled=False`` (DDP ranks > 0) writes nothing."""

    def __init__(self, log_dir: str | Path, *, enabled: bool = True) -> None:
        self.writer = None
        if enabled:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(log_dir))

    def scalar(self, tag: str, value: float, step: int) -> None:
        if self.writer is not None:
            self.writer.add_scalar(tag, value, step)

    def text(self, tag: str, text: str, step: int = 0) -> None:
        if self.writer is not None:
            self.writer.add_text(tag, text, step)

    def image(self, tag: str, image: Any, step: int = 0) -> None:
        """An HWC uint8 array."""
        if self.writer is not None:
            self.writer.add_image(tag, image, step, dataformats="HWC")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
