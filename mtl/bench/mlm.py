"""Masked-LM step time: projecting only the masked positions onto the vocabulary vs every position.

Both variants train the same encoder and head on the same batch (15% of the tokens masked), so the
ratio isolates the vocabulary projection: over every position it is ``T x H x V`` multiply-adds per
sequence, most of an MLM step on a small encoder with a 32k-50k vocabulary.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from transformers import AutoModel, RobertaConfig

from heads import build_head


def mlm_step_times(
    architecture: dict[str, int], vocab_size: int, rows: int, length: int, steps: int, seed: int = 0
) -> dict[str, Any]:
    """Median seconds of a full training step (forward, backward, AdamW) with each projection."""
    torch.manual_seed(seed)
    config = RobertaConfig(
        vocab_size=vocab_size,
        max_position_embeddings=length + 2,
        type_vocab_size=1,
        pad_token_id=1,
        **architecture,
    )
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab_size, (rows, length), generator=generator)
    chosen = torch.rand(rows, length, generator=generator) < 0.15
    labels = torch.where(chosen, ids, torch.full_like(ids, -100))
    out: dict[str, Any] = {
        "batch": [rows, length],
        "vocab_size": vocab_size,
        "masked_tokens": int(chosen.sum()),
    }
    for name, full in (("masked_only", False), ("full_projection", True)):
        encoder = AutoModel.from_config(config, add_pooling_layer=False)
        head = build_head("masked_lm", config.hidden_size, vocab_size=vocab_size, full_projection=full)
        head.tie_to(encoder.get_input_embeddings())
        optimizer = torch.optim.AdamW([*encoder.parameters(), *head.parameters()], lr=1e-4)
        seconds = []
        for _ in range(steps + 1):  # the first step is warm-up
            t0 = time.perf_counter()
            hidden = encoder(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
            head(hidden, {"labels": labels}).loss.backward()  # type: ignore[union-attr]
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            seconds.append(time.perf_counter() - t0)
        out[f"{name}_seconds"] = round(float(np.median(seconds[1:])), 4)
    out["speedup"] = round(out["full_projection_seconds"] / out["masked_only_seconds"], 3)
    return out
