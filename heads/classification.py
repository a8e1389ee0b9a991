"""Sequence classification from the [CLS] state (KLUE YNAT, NLI).

Same layout as ``RobertaClassificationHead``: dropout, dense h->h, tanh, dropout, linear.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from heads.base import Head, HeadOutput, check_positive, cross_entropy


class ClassificationHead(Head):
    """``num_labels``-way classifier on token 0; batch targets: ``labels`` ``[B]`` long."""

    kind = "classification"

    def __init__(self, hidden_size: int, num_labels: int, dropout: float = 0.1) -> None:
        super().__init__(hidden_size, dropout)
        check_positive("num_labels", num_labels)
        self.num_labels = num_labels
        self.dropout = nn.Dropout(dropout)
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.out_proj = nn.Linear(hidden_size, num_labels)

    def forward(self, hidden: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> HeadOutput:
        x = self.dropout(hidden[:, 0])
        x = torch.tanh(self.dense(x))
        logits = self.out_proj(self.dropout(x))
        loss = cross_entropy(logits, batch["labels"]) if "labels" in batch else None
        return HeadOutput(loss=loss, outputs={"logits": logits})

    @torch.no_grad()
    def predict(self, output: HeadOutput, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``label`` ``[B]`` (argmax) and ``probs`` ``[B, C]`` (softmax, float32)."""
        logits = output.outputs["logits"].float()
        return {"label": logits.argmax(dim=-1), "probs": logits.softmax(dim=-1)}
