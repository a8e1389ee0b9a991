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

from mtl.batching.prepare import featurize_split, setup_task
from mtl.config import RunConfig, TaskConfig, config_from_dict
from mtl.errors import KlueInputError
from mtl.evaluation.inference import predict_features
from mtl.modeling.model import CONFIG_NAME, MultiTaskModel
from mtl.tasks.base import Task
from mtl.training.precision import pick_autocast

__all__ = ["KlueMultiTask"]


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
        The weights are never cast, and the heads always compute in fp32 (:mod:`mtl.training.precision`).
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
                (what ``klue-mtl evaluate`` and ``predict`` use), or None for fp32.
        """
        from mtl.training.checkpoint import load_checkpoint
        from mtl.training.session import LAST, check_heads_fit

        checkpoint = Path(checkpoint)
        if (checkpoint / LAST).is_dir() and not (checkpoint / CONFIG_NAME).is_file():
            raise KlueInputError(
                checkpoint, None, f"is a run folder, not a checkpoint: pass {checkpoint / LAST}"
            )
        model, tokenizer, resources, run = load_checkpoint(checkpoint)
        cfg = config_from_dict(run["config"]) if run.get("config") else RunConfig()
        tasks = {}
        for name in model.tasks:
            cfg.tasks.setdefault(name, TaskConfig())
            tasks[name] = setup_task(name, cfg, tokenizer, resources.get(name))
        check_heads_fit(model, list(tasks.values()), checkpoint)
        if dtype == "auto":
            dtype = pick_autocast(cfg.train.precision, torch.device(device))
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
