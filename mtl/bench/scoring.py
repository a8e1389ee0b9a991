"""Evaluation speed: scoring full dev predictions with the official metrics, and ``predict`` speed.

Scoring needs a prediction for every dev unit. Running a roberta-base model over the whole dev set
would take hours on 2 CPU cores, and the metric code does the same work whatever the predictions
say, so the scored predictions are the gold with every fifth unit altered (so no metric sits at a
trivial 100). ``predict`` speed is measured with the bench's model on the first dev records of each
task (a token budget per task), through the product's ``predict_features`` and ``decode``.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mtl.batching.featurize import feature_lengths
from mtl.batching.prepare import Split
from mtl.data.io import write_jsonl
from mtl.evaluation.inference import predict_features
from mtl.evaluation.score_file import score
from mtl.modeling.model import MultiTaskModel
from mtl.tasks.base import Task

ALTER_EVERY = 5


def reference_predictions(task: Task, records: Sequence[Mapping[str, Any]]) -> tuple[list[Any], list[dict]]:
    """(gold units, predictions of each) of a labelled dev split, in gold-unit order."""
    gold = task.gold_units(records)
    preds = [
        task.reference_prediction(key, unit, alter=i % ALTER_EVERY == 0, seed=i)
        for i, (key, unit) in enumerate(gold.items())
    ]
    return list(gold.values()), preds


def scoring_speed(
    tasks: Mapping[str, Task], dev: Mapping[str, Split], dev_paths: Mapping[str, str] | None, repeats: int
) -> dict:
    """Per task: seconds of the official metrics on the dev predictions, and of ``klue-mtl score``.

    ``dev_paths`` None: the splits are not whole files, so the ``score`` command is not timed.
    """
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="klue-bench-pred-") as tmp:
        for name, task in tasks.items():
            golds, preds = reference_predictions(task, dev[name].records)
            if None in preds:
                continue  # the task gives no reference predictions (Task.reference_prediction)
            seconds = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                metrics = task.compute_metrics(golds, preds)
                seconds.append(time.perf_counter() - t0)
            command = None
            if dev_paths is not None:
                pred_file = Path(tmp) / f"{name}.jsonl"
                write_jsonl(pred_file, preds)
                t0 = time.perf_counter()
                # The whole `klue-mtl score` path: read the gold file, validate every prediction, score.
                score(name, dev_paths[name], pred_file)
                command = round(time.perf_counter() - t0, 4)
            out[name] = {
                "units": len(golds),
                "metrics_seconds": round(float(np.median(seconds)), 4),
                "score_command_seconds": command,
                "metrics": {k: round(float(v), 2) for k, v in metrics.items()},
            }
    return out


def first_records(split: Split, tokens: int) -> Split:
    """The first dev records whose features hold about ``tokens`` tokens (at least one record)."""
    example = np.asarray(split.features["example_index"])
    cumulative = np.cumsum(split.lengths)
    last_feature = int(np.searchsorted(cumulative, tokens))
    n_records = max(1, int(example[min(last_feature, len(example) - 1)]) + 1)
    keep = np.flatnonzero(example < n_records)
    features = split.features.select(keep)
    return Split(split.records[:n_records], features, feature_lengths(features))


def predict_speed(
    model: MultiTaskModel,
    tasks: Mapping[str, Task],
    dev: Mapping[str, Split],
    tokens: int,
    device: Any,
    autocast: Any,
) -> dict[str, Any]:
    """Per task: examples per second of predict_features + decode on the first records of dev."""
    out: dict[str, Any] = {}
    for name, task in tasks.items():
        split = first_records(dev[name], tokens)
        bs = task.settings.eval_batch_size
        warm = first_records(split, 1)  # one record, untimed: first-call costs stay out of the figure
        predict_features(
            model, task, warm, batch_size=bs, device=device, progress=False, autocast_dtype=autocast
        )
        t0 = time.perf_counter()
        outputs = predict_features(
            model, task, split, batch_size=bs, device=device, progress=False, autocast_dtype=autocast
        )
        task.decode(split.records, split.features, outputs)
        seconds = time.perf_counter() - t0
        out[name] = {
            "examples": len(split.records),
            "features": len(split.features),
            "tokens": int(split.lengths.sum()),
            "seconds": round(seconds, 4),
            "examples_per_second": round(len(split.records) / seconds, 2),
        }
    return out
