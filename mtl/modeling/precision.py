"""The numeric precision a run trains (and infers) in, decided in one place.

``train.precision``:

- ``auto``: bf16 autocast on a CUDA card that has bf16 tensor cores (compute capability >= 8.0:
  A100, H100, L4, RTX 30xx and later); fp16 autocast with loss scaling below that (a Colab T4 is 7.5:
  bf16 would be emulated there, several times slower, and the memory-efficient attention kernel would
  be unavailable); fp32 on CPU.
- ``fp16``: fp16 autocast and a :class:`torch.amp.GradScaler`, on any device (CPU too: that is how
  the tests run it).
- ``bf16``: bf16 autocast, no scaler (bf16 has fp32's exponent range).
- ``fp32``: no autocast. On Ampere and later, fp32 matmuls use TF32 tensor cores
  (:func:`enable_tf32`), as in the Trainer's ``tf32=True``.

Only the encoder runs under autocast: heads and losses stay fp32 (:class:`mtl.modeling.model.MultiTaskModel`).
"""

from __future__ import annotations

import os

import torch

from mtl.errors import KlueInputError

#: ``accelerate launch --mixed_precision`` values and the autocast dtype each one means


def has_native_bf16(device: torch.device) -> bool:
    """True on a CUDA device with bf16 tensor cores (compute capability 8.0 or higher)."""
    return device.type == "cuda" and torch.cuda.get_device_capability(device) >= (8, 0)


#: train.precision's names of the autocast dtypes (None: no autocast)
_DTYPES: dict[str, torch.dtype | None] = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": None}


def precision_name(dtype: torch.dtype | None) -> str:
    """``fp16``, ``bf16`` or ``fp32``: the ``train.precision`` name of an autocast dtype (None: fp32)."""
    return next(name for name, d in _DTYPES.items() if d is dtype)


def pick_autocast(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``train.precision`` on ``device`` (None: no autocast, fp32).

    ``auto`` is bf16 on CUDA cards with native bf16, fp16 on older CUDA cards, fp32 on CPU.
    """
    if precision == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if has_native_bf16(device) else torch.float16
    return _DTYPES[precision]


def make_grad_scaler(autocast_dtype: torch.dtype | None, device: torch.device) -> torch.amp.GradScaler | None:
    """A loss scaler for fp16 training on ``device`` (None for bf16 and fp32, which need none).

    Default settings (initial scale 2**16, halved on overflow, doubled after 2000 clean steps), the
    same as the one accelerate builds for the Trainer's ``fp16=True``.
    """
    if autocast_dtype is not torch.float16:
        return None
    return torch.amp.GradScaler(device.type)


def autocast(device: torch.device, dtype: torch.dtype | None) -> torch.autocast:
    """The autocast region of a forward pass (disabled when ``dtype`` is None)."""
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


def enable_tf32(device: torch.device) -> bool:
    """Let fp32 matmuls and convolutions use TF32 tensor cores on Ampere+; True when turned on.

    TF32 keeps fp32's range with a 10-bit mantissa for the products (sums stay fp32): the usual
    trade for fp32 training on these cards (transformers' ``tf32=True``). Under autocast it only
    touches the few ops autocast keeps in fp32, heads included.
    """
    if not has_native_bf16(device):
        return False
    torch.set_float32_matmul_precision("high")  # also sets torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = True
    return True


def check_launcher_precision(precision: str, autocast_dtype: torch.dtype | None) -> None:
    """Refuse an ``accelerate launch --mixed_precision`` that contradicts ``train.precision``.

    accelerate passes the flag on as ``ACCELERATE_MIXED_PRECISION``; the Trainer would otherwise
    take it over the config for autocast while the checkpoint records the config's precision.
    """
    launched = os.environ.get("ACCELERATE_MIXED_PRECISION")
    # "no" is what accelerate exports when the flag is left out (and no accelerate config sets it):
    # not a request for fp32, or every `accelerate launch` without the flag would be refused on a GPU.
    if launched not in ("fp16", "bf16") or _DTYPES[launched] is autocast_dtype:
        return
    want = precision_name(autocast_dtype) if autocast_dtype is not None else "no"  # accelerate's name of fp32
    raise KlueInputError(
        None,
        "train.precision",
        f"is {precision!r} (here: {want}) but `accelerate launch --mixed_precision {launched}` asks for "
        f"{launched}; launch with --mixed_precision {want}, or set train.precision to match",
        kind="key",
    )
