"""Gradient aggregation over the shared encoder (``train.aggregator``), through TorchJD.

With ``train.tasks_per_step`` K > 1 a step has K task losses. ``sum`` (default) back-propagates their
sum: one backward pass. Any other name is a conflict-averse aggregator of TorchJD
(``pip install klue-mtl[strategies]``): :func:`torchjd.autojac.mtl_backward` gives every head the
gradient of its own loss, and the encoder the Jacobian of the K losses (one row per task: one
backward pass per task through the encoder), which the aggregator turns into one update. UPGrad,
for one, projects each task's gradient onto the dual cone of all of them, so the update never
increases any task's loss to first order.

Heads tied to the encoder's embeddings (a masked-LM decoder) keep only the path through the encoder
output: the tied matrix is an encoder parameter and gets the aggregated update.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

EXTRA = "strategies"  # pip install klue-mtl[strategies]

# name -> TorchJD aggregator class name (imported only when a run uses one)
AGGREGATORS: dict[str, str] = {
    "upgrad": "UPGrad",
    "mgda": "MGDA",
    "pcgrad": "PCGrad",
    "dualproj": "DualProj",
    "imtlg": "IMTLG",
    "aligned_mtl": "AlignedMTL",
    "graddrop": "GradDrop",
    "mean": "Mean",
}


def register_aggregator(name: str, class_name: str) -> None:
    """Make the TorchJD aggregator ``torchjd.aggregation.<class_name>`` available as ``name``."""
    AGGREGATORS[name] = class_name


def torchjd_installed() -> bool:
    """Whether the optional TorchJD dependency is importable."""
    return importlib.util.find_spec("torchjd") is not None


def build_aggregator(name: str) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The TorchJD aggregator named ``name``; None for ``sum`` (a plain backward of the summed losses)."""
    if name == "sum":
        return None
    from torchjd import aggregation

    return getattr(aggregation, AGGREGATORS[name])()


@contextmanager
def encoder_outputs(encoder: nn.Module) -> Iterator[list[torch.Tensor]]:
    """Collects the encoder's last hidden state of every forward pass run inside the block.

    The aggregator needs each task's shared representation (the features its loss depends on
    through the head); a hook takes it without a second code path for the model's forward.
    """
    captured: list[torch.Tensor] = []

    def keep(module: nn.Module, args: Any, output: Any) -> None:
        captured.append(output.last_hidden_state)

    handle = encoder.register_forward_hook(keep)
    try:
        yield captured
    finally:
        handle.remove()


def aggregated_backward(
    aggregator: Callable[[torch.Tensor], torch.Tensor],
    losses: Mapping[str, torch.Tensor],
    features: list[torch.Tensor],
    model: nn.Module,
    extra_params: list[nn.Parameter],
) -> None:
    """Accumulate into ``.grad``: each head its own loss's gradient, the encoder the aggregate.

    ``losses`` are the step's weighted task losses, in the order their ``features`` were captured;
    ``extra_params`` (a weighting's learned values) are task-specific to every task (their gradients
    add up, as for a plain backward).
    """
    from torchjd.autojac import jac_to_grad, mtl_backward

    shared = [p for p in model.encoder.parameters() if p.requires_grad]
    shared_ids = {id(p) for p in shared}
    tasks_params = [
        [p for p in model.heads[task].parameters() if p.requires_grad and id(p) not in shared_ids]
        + extra_params
        for task in losses
    ]
    # One backward per task through the encoder (no vmap: compiled encoders and checkpointing work).
    mtl_backward(
        list(losses.values()),
        features=features,
        tasks_params=tasks_params,
        shared_params=shared,
        parallel_chunk_size=1,
    )
    jac_to_grad(shared, aggregator)
