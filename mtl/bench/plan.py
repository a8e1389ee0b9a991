"""What one ``klue-mtl bench`` run measures on: data files, model size, batch sizes, step counts.

The plan is data only; every measurement module reads its numbers from here, so the whole run's
cost is decided in one place (the acceptance budget is 10 minutes on 2 CPU cores with real dev data
and the roberta-base-sized encoder).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mtl.config import EncoderConfig, RunConfig, SamplerConfig, TaskConfig, TrainConfig
from mtl.errors import KlueInputError
from mtl.samples import SAMPLES_DIR, sample_files
from mtl.tasks import TASKS, klue_tasks


def official_dev_files() -> dict[str, str]:
    """Task -> dev file name of the official release, for the KLUE tasks (looked for under
    ``<data dir>/official`` or the folder itself)."""
    return {t: TASKS[t].official_dev_file for t in klue_tasks()}  # type: ignore[misc]


def max_lengths() -> dict[str, int]:
    """The KLUE-baseline max sequence length of every KLUE task (the plain recipe pads to it)."""
    return {t: TASKS[t].default_max_length for t in klue_tasks()}


def base_batch_sizes() -> dict[str, int]:
    """Training batch sizes of the base-size bench.

    The tiny encoder uses the config default (32); on 2 CPU cores a roberta-base step over 32 x 510
    tokens takes minutes, so each task's ``bench_batch_size`` keeps its batches at or under ~2,048
    tokens when padded to the KLUE-baseline length (the plain recipe's batches).
    """
    return {t: TASKS[t].bench_batch_size for t in klue_tasks()}


#: RobertaConfig fields of each ``--model-size`` (tiny = configs/demo.yaml's encoder)
MODEL_SIZES: dict[str, dict[str, int]] = {
    "tiny": {"hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 256},
    "base": {
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
    },
}


@dataclass
class BenchData:
    """Per task: the file trained on and the dev file scored (the same file for the real data)."""

    source: str  # "klue-dev" or "samples"
    data_dir: Path
    train: dict[str, str]
    dev: dict[str, str]


@dataclass
class Plan:
    """Sizes and repeat counts of every measurement."""

    model_size: str
    quick: bool
    data: BenchData
    batch_sizes: dict[str, int]
    max_records: int | None  # quick: train on the first records of each file only
    max_dev_records: int | None  # quick on the real data: featurize and score the first dev records only
    warmup_steps: int  # untimed optimizer steps at the start of each training run
    timed_steps: int  # timed optimizer steps of the joint and the plain runs
    compare_steps: int  # timed steps of the bare replay and the Trainer run (the joint run's first ones)
    flops_batch_size: int  # rows of the sequence-length-128 compute-efficiency batch
    flops_steps: int
    matmul_size: int
    predict_tokens: int  # per task: dev records are predicted until their features hold this many tokens
    repeats: int  # repeats of the cheap measurements (featurization, scoring): medians are reported
    seed: int = 42
    sampler: SamplerConfig = field(default_factory=SamplerConfig)

    def to_dict(self) -> dict[str, Any]:
        """What bench.json records about the plan."""
        return {
            "model_size": self.model_size,
            "architecture": MODEL_SIZES[self.model_size],
            "quick": self.quick,
            "data": self.data.source,
            "data_dir": str(self.data.data_dir),
            "batch_sizes": self.batch_sizes,
            "max_lengths": max_lengths(),
            "max_records": self.max_records,
            "max_dev_records": self.max_dev_records,
            "warmup_steps": self.warmup_steps,
            "timed_steps": self.timed_steps,
            "compare_steps": self.compare_steps,
            "flops_batch": [self.flops_batch_size, 128],
            "flops_steps": self.flops_steps,
            "matmul_size": self.matmul_size,
            "predict_tokens_per_task": self.predict_tokens,
            "repeats": self.repeats,
            "sampler_temperature": self.sampler.temperature,
        }


def find_data(data_dir: str | Path | None) -> BenchData:
    """The real dev files under ``data_dir`` (or ``$KLUE_DATA_DIR``), else the bundled samples."""
    root = data_dir or os.environ.get("KLUE_DATA_DIR") or None
    if root is None:
        files = sample_files()
        train = {t: files[t].format(split="train") for t in klue_tasks()}
        dev = {t: files[t].format(split="dev") for t in klue_tasks()}
        return BenchData("samples", SAMPLES_DIR, train, dev)
    folder = Path(root).expanduser()
    if (folder / "official").is_dir():
        folder = folder / "official"
    official = official_dev_files()
    resources = [f for t in klue_tasks() for f in TASKS[t].release_resources.values()]
    for name in (*official.values(), *resources):
        if not (folder / name).is_file():
            raise KlueInputError(
                folder / name, None, "KLUE dev file not found (bench reads the official dev set)"
            )
    files = dict(official)
    return BenchData("klue-dev", folder, files, dict(files))


def make_plan(model_size: str, data_dir: str | Path | None, quick: bool) -> Plan:
    """The measurement plan of one run (``quick``: a few records and steps, for tests)."""
    if model_size not in MODEL_SIZES:
        raise KlueInputError(
            None, "--model-size", f"unknown size {model_size!r}; known: tiny, base", kind="key"
        )
    data = find_data(data_dir)
    base = model_size == "base"
    if quick:
        dev_limit = None if data.source == "samples" else 24
        batch = {t: 4 for t in klue_tasks()}
        return Plan(model_size, True, data, batch, 12, dev_limit, 1, 2, 2, 2, 1, 256, 256, 1)
    batch = base_batch_sizes() if base else {t: 32 for t in klue_tasks()}
    return Plan(
        model_size,
        False,
        data,
        batch,
        max_records=None,
        max_dev_records=None,
        warmup_steps=1,
        timed_steps=12 if base else 40,
        compare_steps=6 if base else 40,
        flops_batch_size=16 if base else 32,
        flops_steps=2 if base else 10,
        matmul_size=4096 if base else 2048,
        predict_tokens=1024 if base else 16384,
        repeats=3,
    )


def run_config(plan: Plan, cache_dir: str | Path, output_dir: str | Path, steps: int = 1) -> RunConfig:
    """The run config every training measurement uses: all eight tasks, no evaluation, no saving."""
    d = plan.data
    tasks = {
        t: TaskConfig(
            train=d.train[t],
            dev=None,  # scored separately (mtl.bench.scoring): a run only trains here
            batch_size=plan.batch_sizes[t],
            max_train_examples=plan.max_records,
            **TASKS[t].release_resources,
        )
        for t in klue_tasks()
    }
    return RunConfig(
        encoder=EncoderConfig(
            name=f"{plan.model_size}-random-roberta",
            tokenizer="offline",
            random_init=True,
            architecture=dict(MODEL_SIZES[plan.model_size]),
        ),
        tasks=tasks,
        sampler=SamplerConfig(**vars(plan.sampler)),
        train=TrainConfig(seed=plan.seed, max_steps=steps, warmup_ratio=0.0, log_every=10),
        data_dir=str(d.data_dir),
        output_dir=str(output_dir),
        cache_dir=str(cache_dir),
    )
