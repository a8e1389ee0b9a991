"""Every command's output piped to a file: plain lines, no carriage returns (no progress bars of ours,
transformers', huggingface_hub's or datasets')."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "mtl" / "samples"
TINY = [
    "encoder.architecture.hidden_size=32",
    "encoder.architecture.num_hidden_layers=1",
    "encoder.architecture.num_attention_heads=2",
    "encoder.architecture.intermediate_size=64",
    "train.eval_every=0",
]


def piped(*args: object) -> str:
    """Run ``klue-mtl args`` with stdout and stderr piped (not a terminal); both, joined."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(
        [sys.executable, "-m", "mtl", *map(str, args)], capture_output=True, text=True, env=env, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout + proc.stderr


@pytest.mark.slow
def test_no_command_writes_carriage_returns_into_a_pipe(tmp_path: Path) -> None:
    run = tmp_path / "run"
    demo = ROOT / "configs" / "demo.yaml"
    outputs = {
        "train": piped("train", "--config", demo, "--output", run, "train.max_steps=2", *TINY),
        "finetune": piped(
            "finetune",
            "--from",
            run / "last",
            "--task",
            "ynat",
            "--output",
            tmp_path / "ft",
            "train.max_steps=1",
        ),
        "evaluate": piped("evaluate", "--checkpoint", run / "last", "--tasks", "ynat", "ner"),
        "predict": piped(
            "predict",
            "--checkpoint",
            run / "last",
            "--task",
            "ynat",
            "--input",
            SAMPLES / "ynat_dev.json",
            "--output",
            tmp_path / "ynat.jsonl",
        ),
        "export": piped(
            "export", "--checkpoint", run / "last", "--task", "sts", "--output", tmp_path / "sts"
        ),
        "budget": piped("budget", "--config", demo),
        "experiment --help": piped("experiment", "--help"),
    }
    outputs["score"] = piped(
        "score", "--task", "ynat", "--gold", SAMPLES / "ynat_dev.json", "--pred", tmp_path / "ynat.jsonl"
    )
    for command, text in outputs.items():
        assert text.strip(), command
        assert "\r" not in text, f"{command}: {text[:500]!r}"
