"""Use a trained joint model from Python: load a checkpoint once, predict any of its tasks on raw inputs.

    from mtl import KlueMultiTask
    m = KlueMultiTask.from_pretrained("runs/demo/best", device="cpu")
    m.predict(m.tasks[0], inputs)  # one result per input; the README shows each task's inputs and results

``predict`` turns raw inputs into records (each task's ``records_from_inputs``), then takes the
same path as ``klue-mtl predict`` (:meth:`KlueMultiTask.predict_records`): featurize, then the
project's one inference loop (:func:`mtl.evaluation.inference.predict_features`), then the task's
decoder. The API result adds what a prediction file does not hold (probabilities, character
offsets) through each task's ``results``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from mtl.batching.collate import batch_for
from mtl.batching.featurize import feature_lengths, featurize
from mtl.batching.order import eval_batches
from mtl.batching.prepare import Split, featurize_split, setup_task
from mtl.config import RunConfig, TaskConfig, config_from_dict
from mtl.errors import KlueInputError
from mtl.evaluation.inference import inference_region, predict_features, store_rows
from mtl.modeling.model import MultiTaskModel
from mtl.modeling.precision import enable_tf32, pick_autocast
from mtl.tasks.base import Task

__all__ = ["ANALYZE_KINDS", "ANALYZE_TASKS", "KlueMultiTask"]

#: the KLUE tasks, and the kinds of declared tasks, that read one sentence: what ``analyze`` answers
ANALYZE_TASKS = ("ynat", "ner", "dp")
ANALYZE_KINDS = ("single_sentence_classification", "token_tagging")


class KlueMultiTask:
    """One joint model in memory answering every task it has a head for."""

    def __init__(
        self,
        model: MultiTaskModel,
        tasks: Mapping[str, Task],
        *,
        device: str | torch.device = "cpu",
        dtype: torch.dtype | None = None,
        source: str | Path | None = None,
        config: RunConfig | None = None,
    ) -> None:
        """``tasks``: task name -> a set-up :class:`~mtl.tasks.base.Task` (settings, tokenizer, vocabularies).

        ``dtype`` is the encoder's compute precision (autocast, e.g. ``torch.bfloat16``); None: fp32.
        The weights are never cast, and the heads always compute in fp32 (:mod:`mtl.modeling.precision`).
        ``config`` is the run config the model was trained with, when known.
        """
        self.device = torch.device(device)
        self.dtype = None if dtype == torch.float32 else dtype
        self.source = source
        self.config = config
        self.model = model.to(self.device)
        self.model.eval()
        self._tasks = dict(tasks)

    @classmethod
    def from_pretrained(
        cls,
        checkpoint: str | Path,
        *,
        device: str | torch.device = "cpu",
        dtype: torch.dtype | Literal["auto"] | None = None,
    ) -> KlueMultiTask:
        """Load a klue-mtl checkpoint folder (``runs/<name>/best``, ``.../last``).

        Args:
            checkpoint: the folder ``klue-mtl train`` wrote.
            device: where the model runs (``"cpu"``, ``"cuda"``, ``"cuda:1"``...).
            dtype: the encoder's compute precision (autocast; the heads stay fp32): a dtype such as
                ``torch.bfloat16``, ``"auto"`` for the run's own ``train.precision`` on ``device``
                with TF32 matmuls on Ampere and later, as in training (what ``klue-mtl evaluate``,
                ``predict`` and ``serve`` use), or None for fp32.
        """
        from mtl.training.checkpoint import load_checkpoint, require_checkpoint
        from mtl.training.session import check_heads_fit

        checkpoint = require_checkpoint(checkpoint)
        model, tokenizer, resources, run = load_checkpoint(checkpoint)
        cfg = config_from_dict(run["config"]) if run.get("config") else RunConfig()
        tasks = {}
        for name in model.tasks:
            cfg.tasks.setdefault(name, TaskConfig())
            tasks[name] = setup_task(name, cfg, tokenizer, resources.get(name))
        check_heads_fit(model, list(tasks.values()), checkpoint)
        if dtype == "auto":
            dtype = pick_autocast(cfg.train.precision, torch.device(device))
            enable_tf32(torch.device(device))
        return cls(model, tasks, device=device, dtype=dtype, source=checkpoint, config=cfg)

    @property
    def tasks(self) -> list[str]:
        """The tasks this model answers."""
        return list(self._tasks)

    @property
    def tokenizer(self) -> Any:
        """The shared tokenizer (with the RE entity markers when the model has an RE head)."""
        return next(iter(self._tasks.values())).tokenizer

    def task(self, name: str) -> Task:
        """The set-up task ``name``; an input error naming the checkpoint when it has no such head."""
        if name not in self._tasks:
            raise KlueInputError(
                self.source,
                None,
                f"the checkpoint has no head for task {name!r} (it has {', '.join(self._tasks)})",
            )
        return self._tasks[name]

    def predict(
        self, task: str, inputs: Sequence[Any], *, batch_size: int | None = None
    ) -> list[dict[str, Any]]:
        """One result per raw input, in input order (formats in the README, "Python API").

        Raises:
            KlueInputError: an unknown task, or a malformed item (the message names its index).
        """
        if isinstance(inputs, (str, bytes, Mapping)) or not isinstance(inputs, Sequence):
            raise KlueInputError(f"{task} inputs", None, "pass a list of inputs (one item per example)")
        t = self.task(task)
        if not inputs:
            return []
        records = t.records_from_inputs(list(inputs))
        features, outputs = self.run(task, records, batch_size=batch_size)
        predictions = t.decode(records, features, outputs)
        return t.results(records, predictions, features, outputs)

    def predict_records(
        self, task: str, records: Sequence[dict[str, Any]], *, batch_size: int | None = None
    ) -> list[dict[str, Any]]:
        """Contract prediction rows (what ``klue-mtl predict`` writes) for reader records of ``task``."""
        t = self.task(task)
        features, outputs = self.run(task, records, batch_size=batch_size)
        return t.decode(records, features, outputs)

    def run(
        self, task: str, records: Sequence[dict[str, Any]], *, batch_size: int | None = None
    ) -> tuple[Any, list[dict[str, np.ndarray]]]:
        """(features, head outputs per feature in feature order) of ``records``."""
        t = self.task(task)
        size = batch_size or t.settings.eval_batch_size
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise KlueInputError(
                None, "batch_size", f"must be a positive integer, got {size!r}", kind="argument"
            )
        split = featurize_split(t, list(records), source=self.source, progress=False)
        outputs = predict_features(
            self.model, t, split, batch_size=size, device=self.device, autocast_dtype=self.dtype
        )
        return split.features, outputs

    # -- every single-sentence task from one encoder pass ----------------------------------------
    def analyze_tasks(self) -> list[str]:
        """The tasks :meth:`analyze` answers: YNAT, NER, DP and declared single-sentence / tagging tasks."""
        return [
            name
            for name, t in self._tasks.items()
            if name in ANALYZE_TASKS or getattr(t, "kind_name", None) in ANALYZE_KINDS
        ]

    def analyze(
        self, texts: Sequence[str], *, tasks: Sequence[str] | None = None, batch_size: int | None = None
    ) -> list[dict[str, dict[str, Any]]]:
        """Every single-sentence task's result for each text, sharing the encoder pass between tasks.

        Returns one ``{task: result}`` per text, in input order; each result is what
        ``predict(task, [text])`` returns (README, "Python API"; DP splits the text on spaces).

        How the pass is shared: each task featurizes the texts its own way (YNAT encodes the text,
        NER the text with character offsets, DP the eojeols as pre-split words). Tasks whose token ids
        come out identical for every text, one feature per text, form a group; a group runs the
        encoder once per batch and applies each of its heads to the same hidden states. A task whose
        ids differ (a text longer than that task's ``max_length``: truncated, or cut into NER
        windows; a tokenizer that encodes pre-split words differently) runs its own encoder pass
        instead, so the results never depend on the sharing.

        The batches are the length-sorted batches of :meth:`predict` with one batch size per group
        (``batch_size``, default the smallest ``eval_batch_size`` of the group), so for up to that many
        texts every head sees exactly the batch a separate ``predict`` call gives it and the results
        are identical; across several batches a probability may differ in the last bits where a text
        is padded differently.

        Args:
            texts: sentences (non-empty strings).
            tasks: a subset of :meth:`analyze_tasks` (default: all of them).
            batch_size: texts per encoder pass.

        Raises:
            KlueInputError: a malformed text (naming its index), or a task that does not read one sentence.
        """
        if isinstance(texts, (str, bytes, Mapping)) or not isinstance(texts, Sequence):
            raise KlueInputError("analyze inputs", None, "pass a list of texts (one sentence per item)")
        from mtl.tasks.base import input_text

        texts = [input_text("analyze", i, text, "the text") for i, text in enumerate(texts)]
        names = list(tasks) if tasks is not None else self.analyze_tasks()
        allowed = self.analyze_tasks()
        for name in names:
            self.task(name)  # unknown task: the checkpoint's error
            if name not in allowed:
                raise KlueInputError(
                    "analyze",
                    None,
                    f"task {name!r} does not read one sentence (those are {', '.join(allowed)})",
                )
        if not texts or not names:
            return [{} for _ in texts]
        prepared: dict[str, tuple[Task, list[dict[str, Any]], Any]] = {}
        groups: dict[Any, list[str]] = {}
        for name in names:
            t = self.task(name)
            records = t.records_from_inputs(texts)
            features = featurize(t, records, cache_dir=None, progress=False)
            prepared[name] = (t, records, features)
            if list(features["example_index"]) == list(range(len(texts))):
                ids = tuple(tuple(row) for row in features["input_ids"])
            else:
                ids = ("own pass", name)  # windows: one text, several features
            groups.setdefault(ids, []).append(name)
        outputs: dict[str, list[dict[str, np.ndarray]]] = {}
        for members in groups.values():
            outputs.update(self._shared_pass(members, prepared, batch_size))
        results: list[dict[str, dict[str, Any]]] = [{} for _ in texts]
        for name in names:
            t, records, features = prepared[name]
            predictions = t.decode(records, features, outputs[name])
            for i, result in enumerate(t.results(records, predictions, features, outputs[name])):
                results[i][name] = result
        return results

    def _shared_pass(
        self,
        members: list[str],
        prepared: Mapping[str, tuple[Task, list[dict[str, Any]], Any]],
        batch_size: int | None,
    ) -> dict[str, list[dict[str, np.ndarray]]]:
        """Head outputs of tasks with identical token ids: one encoder pass per batch, every head on it."""
        first = prepared[members[0]][2]
        lengths = feature_lengths(first)
        splits = {n: Split(prepared[n][1], prepared[n][2], lengths) for n in members}
        size = batch_size or min(prepared[n][0].settings.eval_batch_size for n in members)
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise KlueInputError(
                None, "batch_size", f"must be a positive integer, got {size!r}", kind="argument"
            )
        outputs: dict[str, list[Any]] = {n: [None] * len(first) for n in members}
        # The one inference loop's region and output rows (mtl.evaluation.inference), several heads per pass.
        with inference_region(self.device, self.dtype):
            for indices in eval_batches(lengths, size):
                batches = {n: batch_for(prepared[n][0], splits[n], indices, self.device) for n in members}
                hidden = self.model.encode(batches[members[0]])
                for n in members:
                    store_rows(self.model.predict_hidden(n, hidden, batches[n]), indices, outputs[n])
        return outputs
