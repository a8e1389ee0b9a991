"""Optimizer and learning-rate schedule, shared by the custom loop and the Trainer subclass."""

from __future__ import annotations

import math

import torch
from torch import nn
from transformers import get_scheduler

from mtl.config import TrainConfig


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW groups: no weight decay on biases and LayerNorm weights (the KLUE baseline's rule)."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name or param.ndim == 1:
            no_decay.append(param)
        else:
            decay.append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW over :func:`parameter_groups`; fused kernels when ``fused_adamw`` (same maths, one pass).

    On CPU the fused step is ~6x faster than the default per-tensor loop for a 10M-parameter
    embedding matrix, which otherwise dominates the step time of small encoders.
    """
    fused = bool(cfg.fused_adamw)
    return torch.optim.AdamW(
        parameter_groups(model, cfg.weight_decay),
        lr=cfg.learning_rate,
        eps=cfg.adam_epsilon,
        fused=fused or None,
        foreach=None if fused else True,
    )


def warmup_steps(cfg: TrainConfig) -> int:
    """ceil(warmup_ratio x total steps), as the KLUE baseline counts it."""
    return math.ceil(cfg.warmup_ratio * cfg.max_steps)


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: TrainConfig
) -> torch.optim.lr_scheduler.LRScheduler:
    """Linear warm-up then decay (or another ``transformers`` schedule named by ``lr_scheduler``)."""
    return get_scheduler(
        cfg.lr_scheduler,
        optimizer=optimizer,
        num_warmup_steps=warmup_steps(cfg),
        num_training_steps=cfg.max_steps,
    )
