"""What every task head is: a module from encoder hidden states (+ a batch of tensors) to a loss.

A head knows nothing about KLUE files or label names. It reads the encoder's last hidden state
``hidden`` ``[B, T, H]`` and the tensors its featurizer put in the batch (always ``input_ids`` and
``attention_mask``, plus its own keys), and returns a :class:`HeadOutput`. ``predict`` turns that
output into integer predictions the task's decoder maps back to labels, spans or trees.

Conventions shared by all heads: ``-100`` marks an ignored integer target (and an integer
prediction that has no meaning, e.g. a padded word); a batch without targets gives ``loss=None``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

IGNORE_INDEX = -100

# Fill value for logits at positions a head must never choose. Large enough that softmax gives them
# no mass, small enough to stay finite in fp16/bf16 and to keep a loss finite even if a bad target
# points at a masked position (finfo.min would overflow once two such losses are added).
MASKED_LOGIT = -1e4


@dataclass
class HeadOutput:
    """What a head's forward returns."""

    loss: torch.Tensor | None  # scalar; None when the batch carries no targets
    outputs: dict[str, torch.Tensor]  # named raw outputs (logits, scores)


class Head(nn.Module):
    """Base class of the task heads; subclasses set ``kind`` and implement forward and predict."""

    kind: ClassVar[str]

    def __init__(self, hidden_size: int, dropout: float = 0.1) -> None:
        super().__init__()
        check_positive("hidden_size", hidden_size)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.hidden_size = hidden_size

    def forward(self, hidden: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> HeadOutput:
        """Loss (when ``batch`` has targets) and raw outputs for hidden states ``[B, T, H]``."""
        raise NotImplementedError

    @torch.no_grad()
    def predict(self, output: HeadOutput, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Decode ``output`` (from ``forward`` on the same batch) into predictions."""
        raise NotImplementedError


def check_positive(name: str, value: object) -> None:
    """Raise ValueError unless ``value`` is a positive int (bools excluded)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over targets that are not ``IGNORE_INDEX``; classes on the last dim.

    Summed, then divided by the number of targets (at least 1), all on the device: no host sync to
    ask whether any target is left. With none left it is a zero still attached to ``logits``, so
    backward (and distributed gradient sync) works on a batch whose targets are all ignored.
    """
    flat_logits = logits.flatten(0, -2).float()  # flatten, not reshape(-1, C): C may be 0
    flat_targets = targets.reshape(-1)
    total = F.cross_entropy(flat_logits, flat_targets, ignore_index=IGNORE_INDEX, reduction="sum")
    return total / (flat_targets != IGNORE_INDEX).sum().clamp(min=1)
