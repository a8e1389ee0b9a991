"""What a KLUE task is to the rest of the system.

A :class:`Task` binds one task's reader (files -> records), its scoring units and prediction
schema (records <-> the JSON Lines prediction contract), and its official metrics. The model side
(featurizer, head kind, decoder) is added by the same class, so a ninth task is one new module and
one registry line. Nothing here imports torch: ``klue-mtl score`` must start fast.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from mtl.data import read_records
from mtl.errors import KlueInputError

Key = Hashable  # a scoring unit's identity: the guid, or (guid, turn) for WoS


class Task:
    """Base class of the eight KLUE tasks; subclasses fill in the class attributes and hooks."""

    name: ClassVar[str]
    #: the contract's prediction fields (besides the key fields)
    prediction_fields: ClassVar[tuple[str, ...]]
    #: the first official metric, used for model selection and the trivial-baseline comparison
    main_metric: ClassVar[str]
    metric_names: ClassVar[tuple[str, ...]]

    # -- reading -------------------------------------------------------------------------------
    def read(self, path: str | Path, *, labeled: bool = True, split: str = "dev") -> list[dict[str, Any]]:
        """Read a gold or input file of this task into validated plain records."""
        return read_records(self.name, path, labeled=labeled, split=split)

    # -- scoring units ---------------------------------------------------------------------------
    def gold_units(self, records: Sequence[Mapping[str, Any]]) -> dict[Key, Any]:
        """Map each scoring unit's key to its gold (one unit per record unless overridden)."""
        return {r["guid"]: r for r in records}

    def key_of(self, pred: Mapping[str, Any]) -> Key:
        """The unit key a prediction object names."""
        return pred["guid"]

    def describe_key(self, key: Key) -> str:
        """How a key is named in messages."""
        return f"guid {key}"

    def unknown_key_message(self, key: Key, gold: Mapping[Key, Any]) -> str:
        """Why a prediction's key matches no gold unit."""
        return f"{self.describe_key(key)} is not in the gold file"

    def check_prediction(self, pred: Mapping[str, Any], gold: Any) -> str | None:
        """Return what is wrong with one prediction for its gold unit, or None if it is well formed."""
        raise NotImplementedError

    def compute_metrics(self, golds: Sequence[Any], preds: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        """Official metrics (percent) of aligned gold units and predictions."""
        raise NotImplementedError

    # -- model side ------------------------------------------------------------------------------
    #: the head kind (see heads.HEADS) this task plugs into the shared encoder
    head_kind: ClassVar[str]
    #: features fields that hold per-token sequences, padded to the batch's longest input
    token_fields: ClassVar[tuple[str, ...]] = ()
    #: features fields that hold per-word (or other variable-length) sequences, padded separately
    item_fields: ClassVar[tuple[str, ...]] = ()
    #: feature fields used only for decoding (offsets, word ids...): never collated into the batch
    meta_fields: ClassVar[tuple[str, ...]] = ()
    #: the padding value of each padded field that does not pad with -100
    pad_values: ClassVar[dict[str, Any]] = {}
    #: special tokens this task adds to the shared tokenizer (RE entity markers)
    special_tokens: ClassVar[tuple[str, ...]] = ()

    def setup(self, settings: Any, tokenizer: Any, resources: Mapping[str, Any] | None = None) -> None:
        """Attach the run's settings (a TaskConfig) and tokenizer; ``resources`` come from a checkpoint."""
        self.settings = settings
        self.tokenizer = tokenizer
        self.resources = dict(resources) if resources is not None else self.build_resources(settings)

    def build_resources(self, settings: Any) -> dict[str, Any]:
        """Task vocabularies saved in ``tasks.json`` (label names by default)."""
        return {"labels": list(getattr(self, "labels", ()))}

    def head_args(self) -> dict[str, Any]:
        """Keyword arguments of this task's head (saved in the checkpoint's config.json)."""
        return {}

    def featurize(self, batch: Mapping[str, list[Any]], indices: list[int]) -> dict[str, list[Any]]:
        """Batched ``datasets.map`` function: records -> features (``example_index`` links back)."""
        raise NotImplementedError

    def decode(
        self, records: Sequence[Mapping[str, Any]], features: Any, outputs: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        """Head predictions of every feature (numpy, in feature order) -> contract prediction rows."""
        raise NotImplementedError

    def encode_kwargs(self) -> dict[str, Any]:
        """Tokenizer arguments common to every task: klue/roberta takes no token type ids."""
        return {"truncation": True, "max_length": self.settings.max_length, "return_token_type_ids": False}

    # -- evidence: the leak-free split and the baselines (mtl.split, mtl.experiment) ---------------
    #: the release's dev file that ``klue-mtl split`` cuts 80/20 (None: the task is not split)
    official_dev_file: ClassVar[str | None] = None
    #: a text found in at least this many raw items is formulaic ("감사합니다.") and links nothing
    #: in the split's grouping; None: every shared text groups its items
    formulaic_min_items: ClassVar[int | None] = None
    #: what one scoring unit is (results tables count units as the metric does)
    scoring_unit: ClassVar[str] = "example"
    #: what :meth:`trivial_baseline` predicts / what :meth:`nonneural_baseline` fits (None: none)
    baseline_description: ClassVar[str] = ""
    nonneural_description: ClassVar[str | None] = None

    def split_texts(self, item: Any) -> list[str]:
        """The texts one raw item of :attr:`official_dev_file` carries (a JSON object or a TSV block).

        Items that share a text go to the same side of the split.
        """
        raise NotImplementedError

    def trivial_baseline(
        self, train: Sequence[Mapping[str, Any]], heldout: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        """Contract-shaped predictions of the trivial baseline for every scoring unit of ``heldout``."""
        raise NotImplementedError

    def nonneural_baseline(
        self, train: Sequence[Mapping[str, Any]], heldout: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]] | None:
        """Predictions of a cheap non-neural model fitted on ``train`` only; None where there is none."""
        return None


# -- small validators shared by the tasks' check_prediction ------------------------------------
def check_label(value: Any, names: Sequence[str], field: str = "label") -> str | None:
    """None if ``value`` is one of ``names``, else what is wrong."""
    if not isinstance(value, str):
        return f"'{field}' must be a string, got {type(value).__name__}"
    if value not in names:
        return f"'{field}' {value!r} is not a known label"
    return None


def check_number(value: Any, field: str) -> str | None:
    """None if ``value`` is a finite number (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return f"'{field}' must be a finite number, got {value!r}"
    return None


def check_list(value: Any, field: str, length: int | None = None) -> str | None:
    """None if ``value`` is a list (of ``length`` items when given)."""
    if not isinstance(value, list):
        return f"'{field}' must be a list, got {type(value).__name__}"
    if length is not None and len(value) != length:
        return f"'{field}' has {len(value)} items, expected {length}"
    return None


def require(cond: bool, path: str | Path, record: str | int | None, message: str) -> None:
    """Raise a KlueInputError unless ``cond``."""
    if not cond:
        raise KlueInputError(path, record, message)
