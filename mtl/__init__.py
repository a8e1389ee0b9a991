"""klue-mtl: one KLUE-RoBERTa encoder, eight task heads, official KLUE metrics."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
