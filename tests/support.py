"""Test helpers: a tiny randomly initialised model trained on one task, scored officially.

Used by the per-task overfit tests: if a tiny model can memorise a handful of examples to a
near-perfect official score, the featurizer, head and decoder of that task agree with each other.
"""

from __future__ import annotations

from typing import Any

import torch

from mtl.batching import eval_batches
from mtl.config import EncoderConfig, RunConfig, TaskConfig
from mtl.encoder import build_encoder
from mtl.evaluation import batch_for, evaluate_split
from mtl.features import feature_lengths, featurize
from mtl.model import MultiTaskModel
from mtl.pipeline import Split, add_task_tokens, setup_task
from mtl.tokenizer import build_offline_tokenizer

TINY_ARCH = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 128}


def tiny_setup(
    task_name: str, records: list[dict[str, Any]], **settings: Any
) -> tuple[Any, MultiTaskModel, Split]:
    """(task, model, split) for ``records`` with a tiny random encoder and the offline tokenizer."""
    torch.manual_seed(0)
    cfg = RunConfig(
        encoder=EncoderConfig(tokenizer="offline", random_init=True, architecture=dict(TINY_ARCH)),
        tasks={task_name: TaskConfig(**settings)},
    )
    tokenizer = build_offline_tokenizer()
    task = setup_task(task_name, cfg, tokenizer)
    add_task_tokens(tokenizer, [task])
    encoder = build_encoder(cfg.encoder, len(tokenizer))
    model = MultiTaskModel(encoder, {task_name: {"kind": task.head_kind, "args": task.head_args()}})
    features = featurize(task, records, progress=False)
    return task, model, Split(records, features, feature_lengths(features))


def overfit(
    task_name: str,
    records: list[dict[str, Any]],
    *,
    steps: int = 300,
    lr: float = 2e-3,
    batch_size: int = 16,
    **settings: Any,
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Train on ``records`` only and return (official metrics on them, predictions)."""
    task, model, split = tiny_setup(task_name, records, **settings)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    batches = eval_batches(split.lengths, batch_size)
    model.train()
    for step in range(steps):
        batch = batch_for(task, split, batches[step % len(batches)], "cpu")
        loss = model(task_name, **batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    predictions, metrics = evaluate_split(model, task, split, batch_size=32, progress=False)
    return metrics, predictions
