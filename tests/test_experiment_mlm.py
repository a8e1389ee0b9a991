"""The experiment's optional masked-LM stage, end to end on the bundled samples with a tiny model."""

from __future__ import annotations

import numpy as np
import pytest

from mtl.config import load_config
from mtl.experiments.experiment import _run
from mtl.experiments.mlm_stage import bootstrap, mlm_stage, render_mlm
from mtl.tasks import get_task

DEMO = "configs/demo.yaml"
TINY = [
    "encoder.architecture.hidden_size=32",
    "encoder.architecture.num_hidden_layers=1",
    "encoder.architecture.num_attention_heads=2",
    "encoder.architecture.intermediate_size=64",
    "train.max_steps=4",
    "train.log_every=2",
]


def test_bootstrap_intervals_are_paired_and_contain_the_point_value() -> None:
    task = get_task("nli")
    task.resources = {"labels": list(task.labels)}
    rng = np.random.default_rng(0)
    golds = [{"guid": str(i), "label": int(rng.integers(3))} for i in range(200)]
    same = [{"guid": g["guid"], "label": task.labels[g["label"]]} for g in golds]
    noisy = [{"guid": g["guid"], "label": task.labels[int(rng.integers(3))]} for g in golds]
    out = bootstrap(
        task, golds, {"joint": noisy, "same": noisy, "perfect": same}, "accuracy", "joint", samples=200
    )
    assert out["same"]["diff_low"] == out["same"]["diff_high"] == 0.0  # paired: identical runs never differ
    assert out["perfect"]["value"] == 100.0 and out["perfect"]["diff_low"] > 0
    for row in out.values():
        assert row["low"] <= row["value"] <= row["high"]


@pytest.mark.slow
def test_the_mlm_stage_runs_both_variants_and_reports_intervals(tmp_path) -> None:
    cfg = load_config(DEMO, TINY)
    cfg.tasks = {name: cfg.tasks[name] for name in ("ynat", "ner")}
    _run(cfg, tmp_path / "joint")
    stage = mlm_stage(cfg, tmp_path, _run, steps=3)
    assert (tmp_path / "joint-after-mlm" / "last").exists() and (tmp_path / "joint-mlm-aux" / "last").exists()
    assert set(stage["intervals"]) == {"ynat", "ner"}
    assert (
        stage["intervals"]["ner"]["units"] == 16 and "diff_low" in stage["intervals"]["ner"]["mlm_then_joint"]
    )
    assert "masked_accuracy" in stage["pretrain_results"]["mlm"]
    text = "\n".join(render_mlm(stage))
    assert "| ynat | macro_f1 |" in text and "MLM → joint" in text
