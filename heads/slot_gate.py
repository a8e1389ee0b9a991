"""Dialogue state tracking head (KLUE WoS): per slot a gate, a span in the context, a value choice.

Every slot owns a learned query vector. A masked attention of that query over the dialogue tokens
gives a slot context vector ``c[b, s]``; from it come

* gate logits (e.g. none / dontcare / yes / no / value) through a small MLP;
* span start/end logits over tokens, from bilinear scores between projected token states and
  ``c[b, s]`` (open slots take their value from the dialogue);
* categorical value logits, dot products of ``c[b, s]`` with a learned table of value embeddings
  ``[S, Kmax, H]`` (slots with a closed candidate list pick from it; entries past a slot's own
  number of candidates are masked).

All slots are scored at once with batched matrix products; there is no loop over slots.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from heads.base import IGNORE_INDEX, MASKED_LOGIT, Head, HeadOutput, check_positive, cross_entropy
from heads.span import best_span


class SlotGateHead(Head):
    """Gate, span and value logits for ``num_slots`` slots.

    Batch keys: optional ``span_mask`` ``[B, T]`` (tokens a value span may use). Targets, each
    optional and -100 where absent: ``gate_labels`` ``[B, S]``, ``span_starts``/``span_ends``
    ``[B, S]`` (token positions), ``value_labels`` ``[B, S]`` (index into the slot's candidates).
    """

    kind = "slot_gate"

    def __init__(
        self,
        hidden_size: int,
        num_slots: int,
        value_sizes: Sequence[int],
        num_gates: int = 5,
        max_value_length: int = 20,
        dropout: float = 0.1,
    ) -> None:
        super().__init__(hidden_size, dropout)
        check_positive("num_slots", num_slots)
        check_positive("num_gates", num_gates)
        check_positive("max_value_length", max_value_length)
        value_sizes = list(value_sizes) if isinstance(value_sizes, Sequence) else value_sizes
        if not isinstance(value_sizes, list) or len(value_sizes) != num_slots:
            raise ValueError(
                f"value_sizes must be a list of {num_slots} integers (one per slot), got {value_sizes!r}"
            )
        if any(isinstance(size, bool) or not isinstance(size, int) or size < 0 for size in value_sizes):
            raise ValueError(
                f"value_sizes must hold non-negative integers (0 = open slot), got {value_sizes!r}"
            )
        self.num_slots = num_slots
        self.num_gates = num_gates
        self.max_value_length = max_value_length
        self.value_sizes = value_sizes
        max_values = max(value_sizes)

        self.dropout = nn.Dropout(dropout)
        # Unit-scale queries: at 0.02 every slot attends almost uniformly and the slots look alike to
        # the gate at the start, which slows learning several-fold (measured on the WoS samples).
        self.slot_queries = nn.Parameter(torch.randn(num_slots, hidden_size))
        self.key_proj = nn.Linear(hidden_size, hidden_size)
        self.gate_mlp = nn.Sequential(
            nn.Linear(hidden_size, hidden_size),
            nn.Tanh(),
            nn.Dropout(dropout),
            nn.Linear(hidden_size, num_gates),
        )
        self.start_proj = nn.Linear(hidden_size, hidden_size)
        self.end_proj = nn.Linear(hidden_size, hidden_size)
        self.value_embeddings = nn.Parameter(torch.randn(num_slots, max_values, hidden_size) * 0.02)
        # Derived from value_sizes (which the checkpoint config keeps), so not saved in the state dict.
        value_ids = torch.arange(max_values)[None, :]
        self.register_buffer("value_mask", value_ids < torch.tensor(value_sizes)[:, None], persistent=False)

    def forward(self, hidden: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> HeadOutput:
        scale = 1.0 / math.sqrt(self.hidden_size)
        tokens = self.dropout(hidden)  # [B, T, H]
        attention_mask = batch["attention_mask"].bool()

        queries = self.slot_queries.to(tokens.dtype)
        attention = torch.einsum("sh,bth->bst", queries, self.key_proj(tokens)) * scale
        attention = attention.masked_fill(~attention_mask[:, None, :], MASKED_LOGIT).softmax(dim=-1)
        # The query is added back so a slot's identity survives even where attention is near uniform.
        context = torch.einsum("bst,bth->bsh", attention, tokens) + queries  # [B, S, H]

        gate_logits = self.gate_mlp(context)  # [B, S, G]
        blocked = ~_span_positions(batch)[:, None, :]
        start_logits = torch.einsum("bth,bsh->bst", self.start_proj(tokens), context) * scale
        end_logits = torch.einsum("bth,bsh->bst", self.end_proj(tokens), context) * scale
        start_logits = start_logits.masked_fill(blocked, MASKED_LOGIT)
        end_logits = end_logits.masked_fill(blocked, MASKED_LOGIT)
        value_logits = torch.einsum("bsh,skh->bsk", context, self.value_embeddings.to(context.dtype))
        value_logits = value_logits.masked_fill(~self.value_mask, MASKED_LOGIT)  # [B, S, Kmax]
        outputs = {
            "gate_logits": gate_logits,
            "start_logits": start_logits,
            "end_logits": end_logits,
            "value_logits": value_logits,
        }

        # A term whose targets are all -100 contributes a graph-connected zero (see cross_entropy).
        terms = []
        if "gate_labels" in batch:
            terms.append(cross_entropy(gate_logits, batch["gate_labels"]))
        if "span_starts" in batch:
            start_loss = cross_entropy(start_logits, batch["span_starts"])
            terms.append((start_loss + cross_entropy(end_logits, batch["span_ends"])) / 2)
        if "value_labels" in batch:
            terms.append(cross_entropy(value_logits, batch["value_labels"]))
        loss = torch.stack(terms).sum() if terms else None
        return HeadOutput(loss=loss, outputs=outputs)

    @torch.no_grad()
    def predict(self, output: HeadOutput, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``gate``, ``span_start``, ``span_end``, ``value``, each ``[B, S]``.

        The span is the best one with ``start <= end``, at most ``max_value_length`` tokens, inside
        the allowed positions (-100 when a row allows none). ``value`` is -100 for open slots.
        """
        outputs = output.outputs
        gate = outputs["gate_logits"].argmax(dim=-1)
        allowed = _span_positions(batch)[:, None, :]
        span_start, span_end, _ = best_span(
            outputs["start_logits"], outputs["end_logits"], allowed, self.max_value_length
        )
        value_logits = outputs["value_logits"]
        if value_logits.shape[-1] == 0:
            value = torch.full_like(gate, IGNORE_INDEX)
        else:
            value = value_logits.float().masked_fill(~self.value_mask, float("-inf")).argmax(dim=-1)
            value = value.masked_fill(~self.value_mask.any(dim=-1), IGNORE_INDEX)
        return {"gate": gate, "span_start": span_start, "span_end": span_end, "value": value}


def _span_positions(batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """``[B, T]`` bool: real tokens, restricted to ``span_mask`` when the batch has one."""
    allowed = batch["attention_mask"].bool()
    if "span_mask" in batch:
        allowed = allowed & batch["span_mask"].bool()
    return allowed
