"""Per-token tagging (KLUE NER): dropout and a linear layer over every token state.

The featurizer decides which tokens carry a label (e.g. the first sub-token of each character
span) and sets the rest to -100; this head just scores every token.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from heads.base import IGNORE_INDEX, Head, HeadOutput, check_positive, cross_entropy


class TokenTaggingHead(Head):
    """``num_labels`` tags per token; batch targets: ``labels`` ``[B, T]`` long (-100 = no label)."""

    kind = "token_tagging"

    def __init__(self, hidden_size: int, num_labels: int, dropout: float = 0.1) -> None:
        super().__init__(hidden_size, dropout)
        check_positive("num_labels", num_labels)
        self.num_labels = num_labels
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, num_labels)

    def forward(self, hidden: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> HeadOutput:
        logits = self.classifier(self.dropout(hidden))
        loss = cross_entropy(logits, batch["labels"]) if "labels" in batch else None
        return HeadOutput(loss=loss, outputs={"logits": logits})

    @torch.no_grad()
    def predict(self, output: HeadOutput, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``tags`` ``[B, T]``: argmax tag per token; -100 at padding (``attention_mask`` 0)."""
        tags = output.outputs["logits"].argmax(dim=-1)
        return {"tags": tags.masked_fill(~batch["attention_mask"].bool(), IGNORE_INDEX)}
