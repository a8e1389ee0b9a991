"""Masked-language-model head, laid out like ``RobertaForMaskedLM.lm_head``.

dense -> gelu -> layer norm -> decoder tied to the encoder's input embeddings, plus a bias. The
parameters are named as in ``lm_head`` (``dense``, ``layer_norm``, ``bias``), so a pretrained
``klue/roberta-*`` head loads into it and an exported one loads into ``RobertaForMaskedLM``.

The decoder weight is the encoder's embedding matrix itself, bound by the model after both exist
(:meth:`MaskedLmHead.tie_to`) and kept out of the head's state dict, so a checkpoint stores it once.
By default only the masked positions are projected onto the vocabulary: over every position, that
projection is most of an MLM step on a small encoder (``full_projection`` keeps the textbook
every-position version for the bench's comparison; both give the same loss).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from heads.base import IGNORE_INDEX, Head, HeadOutput, check_positive


class MaskedLmHead(Head):
    """``vocab_size``-way token prediction at the positions whose ``labels`` are not -100."""

    kind = "masked_lm"

    def __init__(
        self, hidden_size: int, vocab_size: int, layer_norm_eps: float = 1e-5, full_projection: bool = False
    ) -> None:
        super().__init__(hidden_size)
        check_positive("vocab_size", vocab_size)
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.layer_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.bias = nn.Parameter(torch.zeros(vocab_size))
        self.full_projection = full_projection
        self._embeddings: list[nn.Embedding] = []  # a plain list: not a submodule, not in the state dict

    def tie_to(self, embeddings: nn.Embedding) -> None:
        """Use ``embeddings.weight`` as the decoder (called by the model that owns both)."""
        if embeddings.num_embeddings != self.bias.numel():
            raise ValueError(
                f"the masked_lm head predicts {self.bias.numel()} tokens but the encoder embeds "
                f"{embeddings.num_embeddings}"
            )
        self._embeddings[:] = [embeddings]

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Vocabulary logits of hidden states ``[..., H]`` (what ``lm_head`` computes)."""
        if not self._embeddings:
            raise RuntimeError(
                "the masked_lm head is not tied to input embeddings (MultiTaskModel does this)"
            )
        x = self.layer_norm(F.gelu(self.dense(hidden)))
        return F.linear(x, self._embeddings[0].weight, self.bias)

    def forward(self, hidden: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> HeadOutput:
        labels = batch["labels"]
        if self.full_projection:
            logits = self.logits(hidden).float()
            chosen = labels != IGNORE_INDEX
            picked, targets = logits[chosen], labels[chosen]
        else:
            chosen = labels != IGNORE_INDEX
            picked, targets = self.logits(hidden[chosen]).float(), labels[chosen]
        if targets.numel() == 0:  # nothing masked in this batch: a zero that keeps the graph
            loss = hidden.sum() * 0.0
        else:
            loss = F.cross_entropy(picked, targets)
        return HeadOutput(loss=loss, outputs={"logits": picked, "targets": targets, "chosen": chosen})

    @torch.no_grad()
    def predict(self, output: HeadOutput, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Per row: ``masked`` count, ``correct`` top-1 count and ``nll`` (summed negative log-likelihood)."""
        chosen, logits, targets = (
            output.outputs["chosen"],
            output.outputs["logits"],
            output.outputs["targets"],
        )
        rows = chosen.nonzero()[:, 0]
        n = chosen.shape[0]
        nll = F.cross_entropy(logits, targets, reduction="none") if targets.numel() else logits.new_zeros(0)
        correct = (logits.argmax(dim=-1) == targets).float() if targets.numel() else logits.new_zeros(0)
        zeros = torch.zeros(n, dtype=torch.float32, device=chosen.device)
        return {
            "masked": zeros.index_add(0, rows, torch.ones_like(nll)),
            "correct": zeros.index_add(0, rows, correct),
            "nll": zeros.index_add(0, rows, nll.float()),
        }
