"""Biaffine dependency parser head (KLUE DP), after Dozat & Manning (2017).

Each word (eojeol) is the concatenation of its first and last sub-token states (plus a POS
embedding when POS ids are given); ROOT is the [CLS] state taken twice. ELU MLPs project words into
a dependent and a head space, separately for arcs and for labels. Arc score of dependent i and head
j is ``dep_i U head_j + head_j . u`` (biaffine with a head bias); label scores of a (dependent, head)
pair come from a bilinear layer plus a linear layer on both vectors.

Label scores are computed lazily, only at the heads that matter (gold heads in training, predicted
heads in decoding): the full ``[B, W, W+1, C]`` tensor would cost ``W`` times the memory for scores
nobody reads. ``forward`` therefore returns the label-space vectors, and :meth:`label_logits` turns
them into ``[B, W, C]`` scores for any head assignment.

Decoding runs a single-root maximum spanning tree (:func:`heads.tree.mst_decode`) over the arc
log-probabilities, so every predicted sentence is a well-formed tree.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from heads.base import IGNORE_INDEX, MASKED_LOGIT, Head, HeadOutput, check_positive, cross_entropy
from heads.tree import mst_decode


class BiaffineHead(Head):
    """Arc and relation scores over the words of a sentence.

    Batch keys: ``word_starts``/``word_ends`` ``[B, W]`` (token index of each word's first/last
    sub-token), ``word_mask`` ``[B, W]`` bool, ``pos_ids`` ``[B, W]`` when ``pos_vocab_size > 0``.
    Targets: ``heads`` ``[B, W]`` (0 = ROOT, j = word j counted from 1) and ``deprels`` ``[B, W]``.
    """

    kind = "biaffine"

    def __init__(
        self,
        hidden_size: int,
        num_labels: int,
        arc_dim: int = 256,
        label_dim: int = 128,
        pos_vocab_size: int = 0,
        pos_dim: int = 64,
        dropout: float = 0.1,
        lstm_layers: int = 0,
        lstm_hidden: int = 0,
    ) -> None:
        """``lstm_layers`` > 0 puts a BiLSTM (``lstm_hidden`` units per direction, default the encoder
        width / 2) over the word vectors before the scorers, as KLUE-baseline's parser does."""
        super().__init__(hidden_size, dropout)
        for name, value in (("num_labels", num_labels), ("arc_dim", arc_dim), ("label_dim", label_dim)):
            check_positive(name, value)
        check_positive("pos_dim", pos_dim)
        if isinstance(pos_vocab_size, bool) or not isinstance(pos_vocab_size, int) or pos_vocab_size < 0:
            raise ValueError(f"pos_vocab_size must be a non-negative integer, got {pos_vocab_size!r}")
        self.num_labels = num_labels
        self.pos_vocab_size = pos_vocab_size
        word_dim = 2 * hidden_size
        self.pos_embedding: nn.Embedding | None = None
        if pos_vocab_size > 0:
            # One extra row for ROOT, which has no POS tag of its own.
            self.pos_embedding = nn.Embedding(pos_vocab_size + 1, pos_dim)
            word_dim += pos_dim
        self.dropout = nn.Dropout(dropout)
        for name, value in (("lstm_layers", lstm_layers), ("lstm_hidden", lstm_hidden)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        self.lstm: nn.LSTM | None = None
        if lstm_layers > 0:
            units = lstm_hidden or hidden_size // 2
            self.lstm = nn.LSTM(
                word_dim,
                units,
                num_layers=lstm_layers,
                batch_first=True,
                bidirectional=True,
                dropout=dropout if lstm_layers > 1 else 0.0,
            )
            word_dim = 2 * units
        self.arc_dep = _elu_mlp(word_dim, arc_dim, dropout)
        self.arc_head = _elu_mlp(word_dim, arc_dim, dropout)
        self.label_dep = _elu_mlp(word_dim, label_dim, dropout)
        self.label_head = _elu_mlp(word_dim, label_dim, dropout)
        self.arc_weight = nn.Parameter(torch.empty(arc_dim, arc_dim))
        nn.init.xavier_uniform_(self.arc_weight)
        self.arc_head_bias = nn.Linear(arc_dim, 1, bias=False)
        # Written out rather than nn.Bilinear, which autocast does not cover (it fails on mixed dtypes).
        self.label_weight = nn.Parameter(torch.empty(num_labels, label_dim, label_dim))
        nn.init.xavier_uniform_(self.label_weight)
        self.label_linear = nn.Linear(2 * label_dim, num_labels)

    def forward(self, hidden: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> HeadOutput:
        word_mask = batch["word_mask"].bool()
        nodes = self._node_vectors(hidden, batch)  # [B, W+1, D], node 0 = ROOT
        dependents = nodes[:, 1:]

        arc_dep = self.arc_dep(dependents)  # [B, W, A]
        arc_head = self.arc_head(nodes)  # [B, W+1, A]
        arc_logits = (arc_dep @ self.arc_weight) @ arc_head.transpose(1, 2)
        arc_logits = arc_logits + self.arc_head_bias(arc_head).transpose(1, 2)  # [B, W, W+1]
        arc_logits = arc_logits.masked_fill(_blocked_heads(word_mask), MASKED_LOGIT)

        label_dep = self.label_dep(dependents)  # [B, W, L]
        label_head = self.label_head(nodes)  # [B, W+1, L]
        outputs = {"arc_logits": arc_logits, "label_dep": label_dep, "label_head": label_head}

        loss = None
        if "heads" in batch:
            gold_heads = batch["heads"].masked_fill(~word_mask, IGNORE_INDEX)
            loss = cross_entropy(arc_logits, gold_heads)
            if "deprels" in batch:
                # Labels are learned at the gold head (not the predicted one), as in Dozat & Manning.
                gold_labels = batch["deprels"].masked_fill(~word_mask | (gold_heads < 0), IGNORE_INDEX)
                label_logits = self.label_logits(label_dep, label_head, gold_heads.clamp(min=0))
                loss = loss + cross_entropy(label_logits, gold_labels)
        return HeadOutput(loss=loss, outputs=outputs)

    def label_logits(
        self, label_dep: torch.Tensor, label_head: torch.Tensor, heads: torch.Tensor
    ) -> torch.Tensor:
        """Relation scores ``[B, W, C]`` of each word attached to ``heads[b, i]`` (0 = ROOT, in range)."""
        # predict() may run outside the autocast region forward ran in: bring inputs to our dtype.
        label_dep = label_dep.to(self.label_weight.dtype)
        rows = torch.arange(heads.shape[0], device=heads.device)[:, None]
        head_vectors = label_head[rows, heads].to(self.label_weight.dtype)  # [B, W, L]
        pair = torch.cat([label_dep, head_vectors], dim=-1)
        bilinear = torch.einsum("bwl,clm,bwm->bwc", label_dep, self.label_weight, head_vectors)
        return bilinear + self.label_linear(pair)

    @torch.no_grad()
    def predict(self, output: HeadOutput, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``heads`` ``[B, W]`` (a single-root tree per sentence) and ``deprels`` ``[B, W]``.

        Padded words get -100 in both.
        """
        word_mask = batch["word_mask"].bool()
        arc_log_probs = output.outputs["arc_logits"].float().log_softmax(dim=-1).cpu().numpy()
        mask = word_mask.cpu().numpy()
        heads = np.full(mask.shape, IGNORE_INDEX, dtype=np.int64)
        for row in range(mask.shape[0]):
            words = np.flatnonzero(mask[row])
            if len(words) == 0:
                continue
            # Decode on the real words only (any mask layout), then map compact ids back to slots.
            columns = np.concatenate([[0], words + 1])
            scores = np.zeros((len(words) + 1, len(words) + 1))
            scores[1:] = arc_log_probs[row][np.ix_(words, columns)]
            heads[row, words] = columns[mst_decode(scores)]
        predicted_heads = torch.from_numpy(heads).to(word_mask.device)
        label_logits = self.label_logits(
            output.outputs["label_dep"], output.outputs["label_head"], predicted_heads.clamp(min=0)
        )
        deprels = label_logits.argmax(dim=-1).masked_fill(~word_mask, IGNORE_INDEX)
        return {"heads": predicted_heads, "deprels": deprels}

    def _node_vectors(self, hidden: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """ROOT followed by one vector per word: ``[B, W+1, D]``, dropout applied."""
        rows = torch.arange(hidden.shape[0], device=hidden.device)[:, None]
        # Padded words may carry -100 indices; any in-range index will do since they are masked.
        first = hidden[rows, batch["word_starts"].clamp(min=0)]
        last = hidden[rows, batch["word_ends"].clamp(min=0)]
        words = torch.cat([first, last], dim=-1)
        root = torch.cat([hidden[:, :1], hidden[:, :1]], dim=-1)
        if self.pos_embedding is not None:
            words = torch.cat([words, self.pos_embedding(batch["pos_ids"].clamp(min=0))], dim=-1)
            root_tag = torch.full_like(batch["pos_ids"][:, :1], self.pos_vocab_size)
            root = torch.cat([root, self.pos_embedding(root_tag).to(root.dtype)], dim=-1)
        nodes = self.dropout(torch.cat([root, words.to(root.dtype)], dim=1))
        if self.lstm is None:
            return nodes
        # Packed so padded words never reach the backward direction; real words are a prefix of
        # each row (the collator's layout), ROOT is node 0.
        lengths = (batch["word_mask"].bool().sum(dim=1) + 1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(nodes, lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=nodes.shape[1])
        return self.dropout(out)


def _elu_mlp(in_dim: int, out_dim: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, out_dim), nn.ELU(), nn.Dropout(dropout))


def _blocked_heads(word_mask: torch.Tensor) -> torch.Tensor:
    """``[B, W, W+1]`` bool: True where word i may not take j as head (padded j, or j is i itself)."""
    batch_size, num_words = word_mask.shape
    head_exists = torch.cat([word_mask.new_ones(batch_size, 1), word_mask], dim=1)  # ROOT always exists
    positions = torch.arange(num_words + 1, device=word_mask.device)
    self_loop = positions[None, :] == positions[:num_words, None] + 1
    return ~head_exists[:, None, :] | self_loop[None]
