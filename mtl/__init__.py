"""klue-mtl: one KLUE-RoBERTa encoder, eight task heads, official KLUE metrics."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

# Intel MKL (torch's CPU BLAS) picks kernels by the memory alignment of its operands unless told
# otherwise, so a run resumed in a new process (other allocations) could differ from an
# uninterrupted one in the last bits (seen with the DP head's LSTM). STRICT keeps the fastest code
# path for this CPU but makes its results independent of alignment: resume stays bitwise. MKL reads
# it at its first call, which comes after this import; a value the user set wins.
os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")

__version__ = "0.1.0"

if TYPE_CHECKING:
    from mtl.serving.api import KlueMultiTask

__all__ = ["KlueMultiTask", "__version__"]


def __getattr__(name: str) -> Any:
    # Lazy: ``klue-mtl score`` imports mtl and must not import torch.
    if name == "KlueMultiTask":
        from mtl.serving.api import KlueMultiTask

        return KlueMultiTask
    raise AttributeError(f"module 'mtl' has no attribute {name!r}")
