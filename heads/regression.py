"""Sequence regression from the [CLS] state (KLUE STS similarity score).

The classification head's layout with one output unit, trained with mean squared error. Scores are
returned raw: clipping to the task's range is the decoder's business.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from heads.base import Head, HeadOutput


class RegressionHead(Head):
    """One score per sequence from token 0; batch targets: ``labels`` ``[B]`` float."""

    kind = "regression"

    def __init__(self, hidden_size: int, dropout: float = 0.1) -> None:
        super().__init__(hidden_size, dropout)
        self.dropout = nn.Dropout(dropout)
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.out_proj = nn.Linear(hidden_size, 1)

    def forward(self, hidden: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> HeadOutput:
        x = self.dropout(hidden[:, 0])
        x = torch.tanh(self.dense(x))
        scores = self.out_proj(self.dropout(x)).squeeze(-1)
        loss = None
        if "labels" in batch:
            loss = F.mse_loss(scores.float(), batch["labels"].to(torch.float32))
        return HeadOutput(loss=loss, outputs={"scores": scores})

    @torch.no_grad()
    def predict(self, output: HeadOutput, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``score`` ``[B]`` (float32, not clipped)."""
        return {"score": output.outputs["scores"].detach().float()}
