"""Relation classification from entity-marker states (KLUE RE).

The featurizer wraps subject and object in typed marker tokens and passes the index of each opening
marker; the relation is read from those two hidden states: concat -> dropout -> dense(2h->h) ->
tanh -> dropout -> linear.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from heads.base import Head, HeadOutput, check_positive, cross_entropy


class EntityMarkerHead(Head):
    """``num_labels``-way relation classifier; batch keys ``subject_index``/``object_index`` ``[B]``.

    Targets: ``labels`` ``[B]`` long.
    """

    kind = "entity_marker"

    def __init__(self, hidden_size: int, num_labels: int, dropout: float = 0.1) -> None:
        super().__init__(hidden_size, dropout)
        check_positive("num_labels", num_labels)
        self.num_labels = num_labels
        self.dropout = nn.Dropout(dropout)
        self.dense = nn.Linear(2 * hidden_size, hidden_size)
        self.out_proj = nn.Linear(hidden_size, num_labels)

    def forward(self, hidden: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> HeadOutput:
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        pair = torch.cat([hidden[rows, batch["subject_index"]], hidden[rows, batch["object_index"]]], dim=-1)
        x = torch.tanh(self.dense(self.dropout(pair)))
        logits = self.out_proj(self.dropout(x))
        loss = cross_entropy(logits, batch["labels"]) if "labels" in batch else None
        return HeadOutput(loss=loss, outputs={"logits": logits})

    @torch.no_grad()
    def predict(self, output: HeadOutput, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``label`` ``[B]`` (argmax) and ``probs`` ``[B, C]`` (softmax, float32; RE's AUPRC needs them)."""
        logits = output.outputs["logits"].float()
        return {"label": logits.argmax(dim=-1), "probs": logits.softmax(dim=-1)}
