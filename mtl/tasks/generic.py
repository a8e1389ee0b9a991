"""Tasks a config declares without Python: ``kind:`` plus the columns of the user's table files.

```yaml
tasks:
  nsmc:
    kind: single_sentence_classification   # or sentence_pair_classification,
                                           #    sentence_pair_regression, token_tagging
    train: data/nsmc_train.tsv             # tsv | csv | jsonl | json | parquet | arrow | hub:...
    dev: data/nsmc_dev.tsv
    text: document                         # a column, or [premise, hypothesis] for pairs
    label: label                           # the label / score / tags column
    labels: [negative, positive]           # optional; else the sorted labels of the train file
    guid: id                               # optional id column; else records are keyed by index
```

A classification label may be written as its name or as its index in ``labels`` (NSMC's 0/1).
``token_tagging`` reads a list of tokens and a list of IOB2 tags (JSON Lines / parquet) or
space-separated strings (TSV / CSV); each token's tag is learnt at its first sub-token and long
inputs are cut into overlapping windows.

Prediction files hold one object per record, keyed by ``guid`` when the definition names a guid
column and by ``index`` (0-based record number in the file) otherwise, plus ``label``, ``score`` or
``tags``. Metrics: accuracy and macro-F1 (classification), Pearson and Spearman (regression),
seqeval strict IOB2 entity F1 (tagging), all in percent.
"""

from __future__ import annotations

import abc
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mtl.data.table import read_table
from mtl.errors import KlueInputError
from mtl.tasks.base import Key, Task, check_list, check_number, input_error
from mtl.tasks.sentence import ClassificationTask, RegressionTask

IGNORE_INDEX = -100


def _key_error(name: str, key: str, message: str) -> KlueInputError:
    return KlueInputError(None, f"tasks.{name}.{key}", message, kind="key")


class GenericTask(Task):
    """A task built from a config definition (``settings`` is the task's TaskConfig)."""

    kind_name: ClassVar[str]
    #: how many text columns the kind reads (1, 2, or 0 for "one or two")
    text_columns: ClassVar[int] = 1

    def __init__(self, name: str, definition: Any) -> None:
        self.name = name  # instance attribute: one class serves every task of its kind
        self.definition = definition
        self.check_definition(definition)
        self.key_fields = ("guid",) if definition.guid else ("index",)
        self.dev_patterns = (Path(definition.dev).name,) if definition.dev else ()

    # -- the definition ---------------------------------------------------------------------------
    def check_definition(self, d: Any) -> None:
        """Config-level checks, before any file is read."""
        text = [d.text] if isinstance(d.text, str) else list(d.text or [])
        if not text or not all(isinstance(t, str) and t for t in text):
            raise _key_error(self.name, "text", f"{self.kind_name} needs the text column(s) in 'text'")
        if self.text_columns and len(text) != self.text_columns:
            what = "one column" if self.text_columns == 1 else f"a list of {self.text_columns} columns"
            raise _key_error(self.name, "text", f"{self.kind_name} reads {what}, got {d.text!r}")
        if not d.label:
            raise _key_error(self.name, "label", f"{self.kind_name} needs the target column in 'label'")
        self.text_cols = text

    def read(self, path: str | Path, *, labeled: bool = True, split: str = "dev") -> list[dict[str, Any]]:
        """Records of a table file: ``guid``/``index``, the text fields and the target."""
        rows = read_table(path)
        records = []
        seen: dict[str, Any] = {}
        for index, (where, row) in enumerate(rows):
            record: dict[str, Any] = {"index": index, "guid": None}
            if self.definition.guid:
                guid = str(self._column(row, self.definition.guid, path, where))
                if guid in seen:
                    raise KlueInputError(path, where, f"guid {guid!r} also appears at {seen[guid]}")
                seen[guid] = where
                record["guid"] = guid
            record.update(self.read_inputs(row, path, where))
            record[self.target_field] = (
                self.read_target(row[self.definition.label], record, path, where)
                if labeled and self._column(row, self.definition.label, path, where) is not None
                else None
            )
            if labeled and record[self.target_field] is None:
                raise KlueInputError(path, where, f"column {self.definition.label!r} is empty")
            records.append(record)
        return records

    def _column(self, row: Mapping[str, Any], column: str, path: Any, where: Any) -> Any:
        if column not in row:
            raise KlueInputError(
                path,
                where,
                f"no column {column!r} (columns: {', '.join(map(str, row))}); see tasks.{self.name}",
            )
        return row[column]

    def read_inputs(self, row: Mapping[str, Any], path: Any, where: Any) -> dict[str, Any]:
        """The model inputs of one row (text columns by default)."""
        out = {}
        for i, column in enumerate(self.text_cols):
            value = self._column(row, column, path, where)
            if not isinstance(value, str) or not value.strip():
                raise KlueInputError(path, where, f"column {column!r} must be non-empty text, got {value!r}")
            out[f"text_{i}"] = value
        return out

    @abc.abstractmethod
    def read_target(self, value: Any, record: Mapping[str, Any], path: Any, where: Any) -> Any:
        """The record's target from the label column's ``value`` (an input error naming ``where``)."""

    def label_names(self) -> list[str]:
        """The label names: the run's (after setup), else built once from the definition (``score``)."""
        resources = getattr(self, "resources", None)
        if resources is None:
            self.resources = resources = self.build_resources(self.definition)
        return list(resources["labels"])

    # -- scoring units ----------------------------------------------------------------------------
    def unit_key(self, record: Mapping[str, Any]) -> Key:
        return record["guid"] if self.definition.guid else record["index"]

    def gold_units(self, records: Sequence[Mapping[str, Any]]) -> dict[Key, Any]:
        return {self.unit_key(r): r for r in records}

    def key_of(self, pred: Mapping[str, Any]) -> Key:
        return pred[self.key_fields[0]]

    def check_key(self, pred: Mapping[str, Any]) -> str | None:
        if self.definition.guid:
            return super().check_key(pred)
        index = pred["index"]
        if isinstance(index, bool) or not isinstance(index, int):
            return f"'index' must be an integer, got {index!r}"
        return None

    def describe_key(self, key: Key) -> str:
        return f"guid {key}" if self.definition.guid else f"index {key}"

    def record_texts(self, record: Mapping[str, Any]) -> list[str]:
        if "tokens" in record:
            return [" ".join(record["tokens"])]
        return [record[k] for k in ("text_0", "text_1") if record.get(k)]

    def records_from_inputs(self, inputs: Sequence[Any]) -> list[dict[str, Any]]:
        """The kind's raw inputs (see the subclasses), keyed like a file's records: by position."""
        records = super().records_from_inputs(inputs)  # type: ignore[misc]
        for i, record in enumerate(records):
            record["index"] = i
            if not self.definition.guid:
                record["guid"] = None
        return records

    def prediction_row(self, record: Mapping[str, Any], **fields: Any) -> dict[str, Any]:
        """A contract row for ``record``: its key field plus ``fields``."""
        return {self.key_fields[0]: self.unit_key(record), **fields}


class _LabelledText(GenericTask):
    """Classification over the definition's labels (given, or sorted from the train file)."""

    target_field: ClassVar[str] = "label"

    def build_resources(self, settings: Any) -> dict[str, Any]:
        if settings.labels:
            labels = list(settings.labels)
            if len(set(labels)) != len(labels):
                raise _key_error(self.name, "labels", "a label is listed twice")
            return {"labels": labels}
        if not settings.train:
            raise _key_error(self.name, "labels", "give the labels, or a train file to read them from")
        values = {str(row.get(settings.label)) for _, row in read_table(settings.train)}
        return {"labels": sorted(v for v in values if v not in ("None", ""))}

    def read_target(self, value: Any, record: Mapping[str, Any], path: Any, where: Any) -> int | None:
        labels = self.label_names()
        text = str(value)
        if text in labels:
            return labels.index(text)
        # NSMC-style files hold label ids (0/1) for names given in ``labels``.
        if text.lstrip("-").isdigit() and not any(lab.isdigit() for lab in labels):
            i = int(text)
            if 0 <= i < len(labels):
                return i
        raise KlueInputError(
            path, where, f"label {value!r} is not in tasks.{self.name}.labels ({', '.join(labels)})"
        )


class SingleSentenceClassification(_LabelledText, ClassificationTask):
    kind_name = "single_sentence_classification"
    text_columns = 1
    text_fields = ("text_0",)
    main_metric = "accuracy"
    metric_names = ("accuracy", "macro_f1")

    def decode(
        self, records: Sequence[Mapping[str, Any]], features: Any, outputs: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        names = self.resources["labels"]
        return [
            self.prediction_row(records[i], label=names[int(o["label"])])
            for i, o in zip(features["example_index"], outputs, strict=True)
        ]


class SentencePairClassification(SingleSentenceClassification):
    kind_name = "sentence_pair_classification"
    text_columns = 2
    text_fields = ("text_0", "text_1")


class SentencePairRegression(GenericTask, RegressionTask):
    kind_name = "sentence_pair_regression"
    text_columns = 2
    text_fields = ("text_0", "text_1")
    target_field = "score"
    head_kind = "regression"
    prediction_fields = ("score",)
    main_metric = "pearsonr"
    metric_names = ("pearsonr", "spearmanr")

    def build_resources(self, settings: Any) -> dict[str, Any]:
        return {"labels": []}

    def read_target(self, value: Any, record: Mapping[str, Any], path: Any, where: Any) -> float:
        try:
            score = float(value)
        except (TypeError, ValueError):
            score = float("nan")
        if not np.isfinite(score) or isinstance(value, bool):
            raise KlueInputError(
                path, where, f"score {value!r} in column {self.definition.label!r} is not a number"
            )
        return score

    def check_prediction(self, pred: Mapping[str, Any], gold: Any) -> str | None:
        return check_number(pred.get("score"), "score")

    def compute_metrics(self, golds: Sequence[Any], preds: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        from mtl.metrics.sts import pearson_r

        gold = np.asarray([g["score"] for g in golds], dtype=np.float64)
        pred = np.asarray([float(p["score"]) for p in preds], dtype=np.float64)
        return {
            "pearsonr": pearson_r(gold, pred) * 100.0,
            "spearmanr": pearson_r(average_ranks(gold), average_ranks(pred)) * 100.0,
        }

    def decode(
        self, records: Sequence[Mapping[str, Any]], features: Any, outputs: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        return [
            self.prediction_row(records[i], score=float(o["score"]))
            for i, o in zip(features["example_index"], outputs, strict=True)
        ]


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks with ties sharing their average rank (Spearman's rho is Pearson's r of these)."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.arange(1, len(values) + 1)
    uniques, inverse = np.unique(values, return_inverse=True)
    sums = np.bincount(inverse, weights=ranks, minlength=len(uniques))
    counts = np.bincount(inverse, minlength=len(uniques))
    return (sums / counts)[inverse]


class TokenTagging(GenericTask):
    kind_name = "token_tagging"
    text_columns = 1
    target_field = "tags"
    head_kind = "token_tagging"
    prediction_fields = ("tags",)
    main_metric = "entity_f1"
    metric_names = ("entity_f1",)
    token_fields = ("input_ids", "labels")
    meta_fields = ("word_ids",)
    window_overlap: ClassVar[float] = 0.25

    def build_resources(self, settings: Any) -> dict[str, Any]:
        if settings.labels:
            tags = list(settings.labels)
        elif settings.train:
            seen: set[str] = set()
            for where, row in read_table(settings.train):
                seen.update(self._sequence(row.get(settings.label), settings.train, where, settings.label))
            tags = sorted(seen)
        else:
            raise _key_error(self.name, "labels", "give the tags, or a train file to read them from")
        bad = [t for t in tags if t != "O" and not (t[:2] in ("B-", "I-") and len(t) > 2)]
        if bad:
            raise _key_error(
                self.name, "labels", f"token_tagging tags are IOB2 (O, B-X, I-X); got {bad[0]!r}"
            )
        return {"labels": tags}

    def _sequence(self, value: Any, path: Any, where: Any, column: str) -> list[str]:
        if isinstance(value, str):
            items = value.split()
        elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            items = list(value)
        else:
            raise KlueInputError(
                path,
                where,
                f"column {column!r} must be a list of strings or space-separated text, got {value!r}",
            )
        return items

    def read_inputs(self, row: Mapping[str, Any], path: Any, where: Any) -> dict[str, Any]:
        column = self.text_cols[0]
        tokens = self._sequence(self._column(row, column, path, where), path, where, column)
        if not tokens:
            raise KlueInputError(path, where, f"column {column!r} holds no tokens")
        return {"tokens": tokens}

    def read_target(self, value: Any, record: Mapping[str, Any], path: Any, where: Any) -> list[int]:
        tags = self._sequence(value, path, where, self.definition.label)
        if len(tags) != len(record["tokens"]):
            raise KlueInputError(
                path, where, f"{len(tags)} tags for {len(record['tokens'])} tokens (one tag per token)"
            )
        index = {t: i for i, t in enumerate(self.label_names())}
        unknown = next((t for t in tags if t not in index), None)
        if unknown is not None:
            raise KlueInputError(path, where, f"tag {unknown!r} is not in tasks.{self.name}.labels")
        return [index[t] for t in tags]

    def records_from_inputs(self, inputs: Sequence[Any]) -> list[dict[str, Any]]:
        """A list of tokens per item (or a text, split at spaces)."""
        records = []
        for i, item in enumerate(inputs):
            tokens = item.split() if isinstance(item, str) else item
            if (
                not isinstance(tokens, (list, tuple))
                or not tokens
                or not all(isinstance(t, str) and t for t in tokens)
            ):
                raise input_error(self.name, i, "expected a list of tokens or a text")
            records.append({"guid": None, "index": i, "tokens": list(tokens), "tags": None})
        return records

    def results(
        self,
        records: Sequence[Mapping[str, Any]],
        predictions: Sequence[Mapping[str, Any]],
        features: Any,
        outputs: Sequence[Mapping[str, Any]],
    ) -> list[dict[str, Any]]:
        """``{"tokens", "tags"}`` per input: one IOB2 tag per token."""
        tags = {self.key_of(p): p["tags"] for p in predictions}
        return [{"tokens": list(r["tokens"]), "tags": tags[self.unit_key(r)]} for r in records]

    def check_prediction(self, pred: Mapping[str, Any], gold: Any) -> str | None:
        tags = pred.get("tags")
        problem = check_list(tags, "tags", len(gold["tokens"]))
        if problem:
            return problem + " (one tag per token)"
        names = set(self.label_names())
        unknown = next((t for t in tags if t not in names), None)
        return f"unknown tag {unknown!r}" if unknown is not None else None

    def compute_metrics(self, golds: Sequence[Any], preds: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        from seqeval.metrics import f1_score
        from seqeval.scheme import IOB2

        names = self.label_names()
        gold = [[names[t] for t in g["tags"]] for g in golds]
        pred = [list(p["tags"]) for p in preds]
        return {"entity_f1": float(f1_score(gold, pred, mode="strict", scheme=IOB2, zero_division=0)) * 100.0}

    # -- model side -------------------------------------------------------------------------------
    def head_args(self) -> dict[str, Any]:
        return {"num_labels": len(self.resources["labels"])}

    def featurize(self, batch: Mapping[str, list[Any]], indices: list[int]) -> dict[str, list[Any]]:
        enc = self.tokenizer(
            batch["tokens"],
            is_split_into_words=True,
            return_overflowing_tokens=True,
            stride=int((self.settings.max_length - 2) * self.window_overlap),
            **self.encode_kwargs(),
        )
        sources = enc["overflow_to_sample_mapping"]
        word_ids = []
        for i in range(len(enc["input_ids"])):
            ids, first, previous = enc.word_ids(i), [], None
            for w in ids:
                first.append(-1 if w is None or w == previous else w)  # a word's first sub-token only
                previous = w
            word_ids.append(first)
        out: dict[str, list[Any]] = {
            "input_ids": enc["input_ids"],
            "word_ids": word_ids,
            "example_index": [indices[s] for s in sources],
        }
        gold = batch["tags"]
        if all(t is not None for t in gold):
            out["labels"] = [
                [gold[s][w] if w >= 0 else IGNORE_INDEX for w in words]
                for s, words in zip(sources, word_ids, strict=True)
            ]
        return out

    def decode(
        self, records: Sequence[Mapping[str, Any]], features: Any, outputs: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        names = self.resources["labels"]
        outside = names.index("O") if "O" in names else 0
        # A word seen by several windows takes the tag of the window where it has the most context.
        best: dict[int, dict[int, tuple[int, int]]] = defaultdict(dict)
        for example, words, output in zip(
            features["example_index"], features["word_ids"], outputs, strict=True
        ):
            tags, width = output["tags"], len(words)
            for position, word in enumerate(words):
                if word < 0:
                    continue
                context = min(position, width - 1 - position)
                known = best[int(example)].get(word)
                if known is None or context > known[0]:
                    best[int(example)][word] = (context, int(tags[position]))
        predictions = []
        for index, record in enumerate(records):
            chosen = best.get(index, {})
            # A token the tokenizer maps to nothing (e.g. a lone control character) gets O.
            ids = [chosen[w][1] if w in chosen else outside for w in range(len(record["tokens"]))]
            predictions.append(self.prediction_row(record, tags=[names[i] for i in ids]))
        return predictions


#: the generic kinds a config may declare, by ``kind:`` name
KINDS: dict[str, type[GenericTask]] = {
    cls.kind_name: cls
    for cls in (
        SingleSentenceClassification,
        SentencePairClassification,
        SentencePairRegression,
        TokenTagging,
    )
}
