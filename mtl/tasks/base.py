"""What a KLUE task is to the rest of the system.

A :class:`Task` owns every fact about one task: its reader (files -> records), its scoring units
and prediction schema (records <-> the JSON Lines prediction contract), its metrics, the model side
(featurizer, head kind, decoder), and the facts the rest of the project derives from the registry
(default lengths and batch sizes, dev-file patterns, bundled samples, published reference numbers,
bench settings). A ninth task is its own modules and one registry line in :mod:`mtl.tasks`.
Nothing here imports torch: ``klue-mtl score`` must start fast.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from mtl.errors import KlueInputError

Key = Hashable  # a scoring unit's identity: the guid, or (guid, turn) for WoS


class Task(abc.ABC):
    """Base class of every task: what a plugin author writes, grouped by the step that uses it.

    **Required** (a subclass that lacks one cannot be instantiated): the class attributes ``name``,
    ``reader`` (or an overridden :meth:`read`), ``head_kind``, ``prediction_fields``,
    ``main_metric`` and ``metric_names``, and the four abstract hooks :meth:`featurize`,
    :meth:`decode`, :meth:`check_prediction` and :meth:`compute_metrics`. Everything else has a
    working default; override it where the task differs.

    =====================  ==================================================================
    role                   members
    =====================  ==================================================================
    read                   ``name``, ``reader``, :meth:`read`, ``text_of_record``,
                           :meth:`record_texts`, :meth:`reads_other_tasks`, :meth:`split_heldout`
    featurize / model      ``head_kind``, ``token_fields``, ``item_fields``, ``meta_fields``,
                           ``pad_values``, ``special_tokens``, :meth:`setup`,
                           :meth:`build_resources`, :meth:`head_args`, :meth:`model_head_args`,
                           :meth:`encode_kwargs`, :meth:`featurize` (required),
                           :meth:`train_batch`
    decode / score         ``prediction_fields``, ``key_fields``, ``main_metric``,
                           ``metric_names``, ``selection_metric``, :meth:`decode` (required),
                           :meth:`check_prediction` (required), :meth:`compute_metrics`
                           (required), :meth:`unit_key`, :meth:`gold_units`, :meth:`key_of`,
                           :meth:`check_key`, :meth:`describe_key`, :meth:`unknown_key_message`,
                           :meth:`label_pairs`, :meth:`select_metric`
    serve (Python API)     :meth:`records_from_inputs`, :meth:`results`
    project facts          ``default_*``, ``dev_patterns``, ``official_dev_file``,
                           ``release_resources``, ``sample_file``, ``sample_generator``,
                           ``published``, ``bench_batch_size``, ``klue_train_size``, ``klue_dev_size``,
                           ``baseline_epochs``
    evidence / bench       ``formulaic_min_items``, ``scoring_unit``, ``baseline_description``,
                           ``nonneural_description``, :meth:`split_texts`,
                           :meth:`trivial_baseline`, :meth:`nonneural_baseline`,
                           :meth:`reference_prediction`
    =====================  ==================================================================
    """

    # == read: files -> validated plain records ==================================================
    name: ClassVar[str]
    #: the reader: a module (or object) with ``read(path, *, labeled, split)`` -> records
    reader: ClassVar[Any]
    #: the string fields of a record that hold its text (for ``@tasks`` masked-LM text)
    text_of_record: ClassVar[tuple[str, ...]] = ()

    def read(self, path: str | Path, *, labeled: bool = True, split: str = "dev") -> list[dict[str, Any]]:
        """Read a gold or input file of this task into validated plain records."""
        return type(self).reader.read(path, labeled=labeled, split=split)

    def record_texts(self, record: Mapping[str, Any]) -> list[str]:
        """The texts a record carries (sentences, premise and hypothesis, context...)."""
        return [record[f] for f in self.text_of_record if record.get(f)]

    def reads_other_tasks(self, split: str) -> bool:
        """True when this split's records come from the other tasks' training text (masked LM)."""
        return False

    def split_heldout(self, records: list[dict[str, Any]]) -> tuple[list[dict], list[dict]] | None:
        """(train, dev) cut from the train records when the config gives no dev file; None: no dev."""
        return None

    # == featurize / model: records -> features -> the head ======================================
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

    def model_head_args(self) -> dict[str, Any]:
        """The head arguments a model is built with: :meth:`head_args` with ``tasks.<t>.head`` merged over.

        The task's own arguments (label counts, vocabulary sizes) come first, so a config can change
        the head's width or dropout; a key the head does not accept fails when the head is built.
        """
        return {**self.head_args(), **(getattr(self.settings, "head", None) or {})}

    def encode_kwargs(self) -> dict[str, Any]:
        """Tokenizer arguments common to every task: klue/roberta takes no token type ids."""
        return {"truncation": True, "max_length": self.settings.max_length, "return_token_type_ids": False}

    @abc.abstractmethod
    def featurize(self, batch: Mapping[str, list[Any]], indices: list[int]) -> dict[str, list[Any]]:
        """Batched ``datasets.map`` function: records -> features (``example_index`` links back)."""

    def train_batch(self, batch: dict[str, Any], rng: Any) -> dict[str, Any]:
        """A collated training batch just before it reaches the model; ``rng`` is the batch stream's
        NumPy generator (saved with the run, so resume repeats its draws). Masked LM re-masks here."""
        return batch

    # == decode / score: head outputs -> contract predictions -> official metrics ================
    #: the contract's prediction fields (besides the key fields)
    prediction_fields: ClassVar[tuple[str, ...]]
    #: the fields that name a scoring unit in a predictions file
    key_fields: ClassVar[tuple[str, ...]] = ("guid",)
    #: the first official metric, used for model selection and the trivial-baseline comparison
    main_metric: ClassVar[str]
    metric_names: ClassVar[tuple[str, ...]]
    #: the metric the task's own best checkpoint is chosen by (None: ``main_metric``); KLUE-baseline's
    #: per-task choice for the KLUE tasks. ``tasks.<t>.select_metric`` overrides it.
    selection_metric: ClassVar[str | None] = None

    @abc.abstractmethod
    def decode(
        self, records: Sequence[Mapping[str, Any]], features: Any, outputs: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        """Head predictions of every feature (numpy, in feature order) -> contract prediction rows."""

    @abc.abstractmethod
    def check_prediction(self, pred: Mapping[str, Any], gold: Any) -> str | None:
        """Return what is wrong with one prediction for its gold unit, or None if it is well formed."""

    @abc.abstractmethod
    def compute_metrics(self, golds: Sequence[Any], preds: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        """Official metrics (percent) of aligned gold units and predictions."""

    def unit_key(self, record: Mapping[str, Any]) -> Key:
        """The key of a record that is one scoring unit (its guid unless overridden)."""
        return record["guid"]

    def gold_units(self, records: Sequence[Mapping[str, Any]]) -> dict[Key, Any]:
        """Map each scoring unit's key to its gold (one unit per record unless overridden)."""
        return {self.unit_key(r): r for r in records}

    def key_of(self, pred: Mapping[str, Any]) -> Key:
        """The unit key a prediction object names."""
        return pred["guid"]

    def check_key(self, pred: Mapping[str, Any]) -> str | None:
        """What is wrong with the key fields of a prediction object (they are present), or None."""
        if not isinstance(pred["guid"], str):
            return "'guid' must be a string"
        return None

    def describe_key(self, key: Key) -> str:
        """How a key is named in messages."""
        return f"guid {key}"

    def unknown_key_message(self, key: Key, gold: Mapping[Key, Any]) -> str:
        """Why a prediction's key matches no gold unit."""
        return f"{self.describe_key(key)} is not in the gold file"

    def label_pairs(
        self, records: Sequence[Mapping[str, Any]], preds: Sequence[Mapping[str, Any]]
    ) -> tuple[list[str], list[int], list[int]] | None:
        """(label names, gold ids, predicted ids) for a classification report and confusion matrix.

        ``preds`` are contract rows, any order. None (the default) for tasks without one label per unit.
        """
        return None

    def select_metric(self) -> str:
        """The metric this task's own best checkpoint maximises: the config's, the task's, or the main one."""
        chosen = getattr(getattr(self, "settings", None), "select_metric", None)
        return chosen or type(self).selection_metric or self.main_metric

    # == serve: raw inputs of the Python API (mtl.serving.api) ===================================
    def records_from_inputs(self, inputs: Sequence[Any]) -> list[dict[str, Any]]:
        """Unlabelled records, as the reader would make them, from the API's raw inputs (one per item).

        Raises :class:`KlueInputError` naming the item's index when an item is malformed; by default
        every call does (the task takes no raw inputs).
        """
        raise KlueInputError(
            f"{self.name} inputs", None, f"task {self.name} takes no raw inputs", kind="item"
        )

    def results(
        self,
        records: Sequence[Mapping[str, Any]],
        predictions: Sequence[Mapping[str, Any]],
        features: Any,
        outputs: Sequence[Mapping[str, Any]],
    ) -> list[dict[str, Any]]:
        """One API result per record from the contract predictions (and the head outputs).

        By default a record's contract prediction row (one scoring unit per record).
        """
        by_key = {self.key_of(p): p for p in predictions}
        return [by_key[self.unit_key(r)] for r in records]

    # == project facts the rest of the project reads from the registry ==========================
    #: max sequence length when the config gives none (KLUE-baseline's, for the KLUE tasks)
    default_max_length: ClassVar[int] = 128
    default_batch_size: ClassVar[int] = 32
    default_eval_batch_size: ClassVar[int] = 64
    #: glob patterns that find this task's dev file under ``evaluate --data-dir`` (searched recursively)
    dev_patterns: ClassVar[tuple[str, ...]] = ()
    #: the dev file's name in the official KLUE release (``split``, ``bench``); None outside KLUE
    official_dev_file: ClassVar[str | None] = None
    #: settings (TaskConfig keys) that name files of the official release folder, e.g. an ontology
    release_resources: ClassVar[dict[str, str]] = {}
    #: bundled sample file name, ``{split}`` = train/dev, and the module whose ``render(split)`` writes it
    sample_file: ClassVar[str | None] = None
    sample_generator: ClassVar[str | None] = None
    #: published KLUE-RoBERTa-base numbers (hidden test set) shown beside the scoreboard
    published: ClassVar[dict[str, float]] = {}
    #: training batch of the base-size bench: about 2,048 tokens at ``default_max_length``
    bench_batch_size: ClassVar[int] = 16
    #: training units (features) of the task's KLUE train split, for budgets planned without data
    klue_train_size: ClassVar[int | None] = None
    #: evaluation units (features) of the task's KLUE dev split, for the evaluation work of such budgets
    klue_dev_size: ClassVar[int | None] = None
    #: KLUE-baseline's number of epochs for the task (its run_all.sh), shown next to the planned budget
    baseline_epochs: ClassVar[float | None] = None

    # == evidence / bench: the leak-free split, the baselines (mtl.experiments), the bench =======
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

        Items that share a text go to the same side of the split; by default an item shares none.
        """
        return []

    def trivial_baseline(
        self, train: Sequence[Mapping[str, Any]], heldout: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]] | None:
        """Contract-shaped predictions of the trivial baseline for every scoring unit of ``heldout``;
        None where the task has none."""
        return None

    def nonneural_baseline(
        self, train: Sequence[Mapping[str, Any]], heldout: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]] | None:
        """Predictions of a cheap non-neural model fitted on ``train`` only; None where there is none."""
        return None

    def reference_prediction(self, key: Key, gold: Any, *, alter: bool, seed: int) -> dict[str, Any] | None:
        """The contract prediction that reproduces gold unit ``key`` (somewhat wrong when ``alter``).

        The bench scores such predictions to time the metrics on realistic, imperfect input; None
        (the default): the bench does not time this task's metrics.
        """
        return None


def single_label_pairs(
    task: Task, records: Sequence[Mapping[str, Any]], preds: Sequence[Mapping[str, Any]]
) -> tuple[list[str], list[int], list[int]]:
    """:meth:`Task.label_pairs` of a task whose records hold a label id and predictions a label name."""
    labels = list(task.resources["labels"])
    index = {name: i for i, name in enumerate(labels)}
    by_key = {task.key_of(p): p for p in preds}
    units = task.gold_units(records)
    return labels, [u["label"] for u in units.values()], [index[by_key[k]["label"]] for k in units]


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


def input_error(task: str, index: int, message: str) -> KlueInputError:
    """The error of a malformed raw input: names the task and the item's index."""
    return KlueInputError(f"{task} inputs", str(index), message, kind="item")


def input_text(task: str, index: int, value: Any, what: str = "the item") -> str:
    """``value`` if it is a non-empty string, else an input error naming ``what``."""
    if not isinstance(value, str):
        raise input_error(task, index, f"{what} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise input_error(task, index, f"{what} is empty")
    return value


def input_pair(task: str, index: int, value: Any, names: tuple[str, str]) -> tuple[str, str]:
    """Two non-empty strings given as a (first, second) pair."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 2:
        raise input_error(task, index, f"expected a pair ({names[0]}, {names[1]}), got {value!r:.80}")
    return input_text(task, index, value[0], names[0]), input_text(task, index, value[1], names[1])
