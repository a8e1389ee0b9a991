"""Pluggable task heads: a registry from head kind to class, and a checked constructor.

A task names its head by kind (``classification``, ``regression``, ``token_tagging``, ``span``,
``biaffine``, ``entity_marker``, ``slot_gate``, ``masked_lm``) plus keyword arguments; :func:`build_head` turns
that into a module, with a clear ValueError for an unknown kind or bad arguments.
"""

from __future__ import annotations

import inspect
from typing import Any

from heads.base import Head, HeadOutput
from heads.biaffine import BiaffineHead
from heads.classification import ClassificationHead
from heads.entity_marker import EntityMarkerHead
from heads.masked_lm import MaskedLmHead
from heads.regression import RegressionHead
from heads.slot_gate import SlotGateHead
from heads.span import SpanHead
from heads.token_tagging import TokenTaggingHead

HEADS: dict[str, type[Head]] = {
    head.kind: head
    for head in (
        ClassificationHead,
        RegressionHead,
        TokenTaggingHead,
        SpanHead,
        BiaffineHead,
        EntityMarkerHead,
        SlotGateHead,
        MaskedLmHead,
    )
}


def register_head(cls: type[Head]) -> type[Head]:
    """Make a head class available under its ``kind`` (usable as a class decorator).

    A task of your own names that kind as its ``head_kind``; the model builds the head with
    ``cls(hidden_size, **task.head_args())``. Its ``forward(hidden, batch)`` returns a
    :class:`HeadOutput` (loss when the batch holds targets) and ``predict(output, batch)`` a dict of
    tensors whose first dimension is the batch.
    """
    kind = getattr(cls, "kind", None)
    if not isinstance(kind, str) or not kind:
        raise ValueError(f"{cls.__name__}.kind must name the head kind")
    known = HEADS.get(kind)
    if known is not None and known.__qualname__ != cls.__qualname__:
        raise ValueError(f"a head of kind {kind!r} is already registered ({known.__qualname__})")
    HEADS[kind] = cls
    return cls


def build_head(kind: str, hidden_size: int, **kwargs: Any) -> Head:
    """Construct the head registered as ``kind`` for an encoder of width ``hidden_size``.

    Raises:
        ValueError: ``kind`` is not registered, an argument is missing or unknown, or a value is
            out of range.
    """
    if kind not in HEADS:
        raise ValueError(f"unknown head kind {kind!r}; known kinds: {', '.join(sorted(HEADS))}")
    head_class = HEADS[kind]
    signature = inspect.signature(head_class)
    try:
        signature.bind(hidden_size, **kwargs)
    except TypeError as error:
        accepted = ", ".join(name for name in signature.parameters if name != "hidden_size")
        raise ValueError(f"bad arguments for head {kind!r}: {error} (it accepts: {accepted})") from None
    try:
        return head_class(hidden_size, **kwargs)
    except ValueError as error:
        raise ValueError(f"bad arguments for head {kind!r}: {error}") from None


__all__ = ["HEADS", "Head", "HeadOutput", "build_head", "register_head"]
