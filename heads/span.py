"""Extractive span head (KLUE MRC): a start and an end logit per token.

Only positions the featurizer allows (``span_mask``: the context part of a window) and the [CLS]
token (the "no answer" position) may be chosen; every other position gets a large negative logit.
Predictions stay raw logits because an answer is chosen across the windows of a long context,
which is the task decoder's job; :func:`best_span` is the shared search for the best span inside
one window (the slot-gate head uses it too).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from heads.base import IGNORE_INDEX, MASKED_LOGIT, Head, HeadOutput, check_positive, cross_entropy


class SpanHead(Head):
    """Start/end logits over tokens; targets: ``start_positions``/``end_positions`` ``[B]`` (0 = no answer).

    Batch keys: optional ``span_mask`` ``[B, T]`` bool (positions allowed as start or end; [CLS] is
    always allowed and padding never is).
    """

    kind = "span"

    def __init__(self, hidden_size: int, max_answer_length: int = 30, dropout: float = 0.1) -> None:
        super().__init__(hidden_size, dropout)
        check_positive("max_answer_length", max_answer_length)
        # Not used in forward: the task decoder reads it when it picks spans across windows.
        self.max_answer_length = max_answer_length
        self.dropout = nn.Dropout(dropout)
        self.qa_outputs = nn.Linear(hidden_size, 2)

    def forward(self, hidden: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> HeadOutput:
        start_logits, end_logits = self.qa_outputs(self.dropout(hidden)).unbind(dim=-1)
        blocked = ~allowed_positions(batch)
        start_logits = start_logits.masked_fill(blocked, MASKED_LOGIT)
        end_logits = end_logits.masked_fill(blocked, MASKED_LOGIT)
        loss = None
        if "start_positions" in batch:
            start_loss = cross_entropy(start_logits, batch["start_positions"])
            end_loss = cross_entropy(end_logits, batch["end_positions"])
            loss = (start_loss + end_loss) / 2
        return HeadOutput(loss=loss, outputs={"start_logits": start_logits, "end_logits": end_logits})

    @torch.no_grad()
    def predict(self, output: HeadOutput, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``start_logits``/``end_logits`` ``[B, T]`` as forward made them, in float32.

        Disallowed positions hold a very negative (finite) value.
        """
        return {key: output.outputs[key].detach().float() for key in ("start_logits", "end_logits")}


def allowed_positions(batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """``[B, T]`` bool: real tokens inside ``span_mask`` (when given), plus [CLS] at position 0."""
    allowed = batch["attention_mask"].bool()
    if "span_mask" in batch:
        allowed = allowed & batch["span_mask"].bool()
    allowed = allowed.clone()
    allowed[:, 0] = True
    return allowed


def best_span(
    start_logits: torch.Tensor, end_logits: torch.Tensor, allowed: torch.Tensor, max_length: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Highest ``start + end`` span with ``start <= end < start + max_length``, both ends allowed.

    Args:
        start_logits, end_logits: ``[..., T]``.
        allowed: bool, broadcastable to ``[..., T]``: positions that may be a start or an end.
        max_length: longest span in tokens.

    Returns:
        ``(start, end, score)``, each ``[...]``; start/end are -100 and score ``-inf`` where no
        position is allowed. Ties go to the shorter span, then the earlier start.
    """
    allowed = allowed.expand_as(start_logits)
    start = start_logits.float().masked_fill(~allowed, float("-inf"))
    end = end_logits.float().masked_fill(~allowed, float("-inf"))
    length_count = start.shape[-1]
    best_score = torch.full(start.shape[:-1], float("-inf"), device=start.device)
    best_start = torch.zeros(start.shape[:-1], dtype=torch.long, device=start.device)
    best_end = torch.zeros_like(best_start)
    # One vectorised pass per span length (<= max_length passes), not one per token pair: this keeps
    # memory at O(T) per row instead of the O(T^2) of a full start x end score matrix.
    for offset in range(min(max_length, length_count)):
        score, position = (start[..., : length_count - offset] + end[..., offset:]).max(dim=-1)
        better = score > best_score
        best_score = torch.where(better, score, best_score)
        best_start = torch.where(better, position, best_start)
        best_end = torch.where(better, position + offset, best_end)
    missing = torch.isinf(best_score)
    return (
        best_start.masked_fill(missing, IGNORE_INDEX),
        best_end.masked_fill(missing, IGNORE_INDEX),
        best_score,
    )
