"""Which floating-point precision a run computes in, decided in one place.

``train.precision`` is recorded in every checkpoint's run config, so training, ``evaluate``,
``predict`` and the Python API resolve it with the same :func:`pick_autocast` on whatever device
they run on. Autocast covers the encoder only: the heads and their losses always run in fp32
(:meth:`mtl.modeling.model.MultiTaskModel.forward`).
"""

from __future__ import annotations

import torch

#: train.precision values that name one dtype whatever the device ("auto" is resolved per device)
_FIXED: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def pick_autocast(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``precision`` (a ``train.precision`` value) on ``device``; None: fp32.

    ``auto``: bf16 on CUDA cards of compute capability 8.0 or more (Ampere on), fp16 on older cards
    (no bf16 units there), fp32 on the CPU (autocast there is slower than fp32 on most CPUs).
    """
    if precision in _FIXED:
        return _FIXED[precision]
    if precision != "auto":
        raise ValueError(f"unknown precision {precision!r}: auto, {', '.join(_FIXED)}")
    if device.type != "cuda":
        return None
    major, _ = torch.cuda.get_device_capability(device)
    return torch.bfloat16 if major >= 8 else torch.float16
