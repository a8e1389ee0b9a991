"""`klue-mtl bench`: the quick run writes every field; the arithmetic behind the figures is right."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mtl.batching.featurize import feature_lengths, featurize
from mtl.batching.order import longest_batch
from mtl.batching.prepare import Split, TaskData, add_task_tokens, read_split, resolve_path, setup_task
from mtl.bench.memory import activation_estimate, batch_tokens
from mtl.bench.padding import padding_efficiency, processed_tokens, task_padding
from mtl.bench.plan import find_data, make_plan, run_config
from mtl.bench.report import TARGETS, check_targets
from mtl.bench.scoring import first_records, reference_predictions
from mtl.bench.steps import PlainStream, pad_to_length
from mtl.bench.training import matmul_parameters, training_flops
from mtl.cli.main import main
from mtl.errors import KlueInputError
from mtl.modeling.encoder import build_encoder
from mtl.modeling.model import MultiTaskModel
from mtl.modeling.tokenizer import build_offline_tokenizer

TASK_NAMES = ("ynat", "nli", "sts", "ner", "re", "dp", "mrc", "wos")
# The official release's dev file names and KLUE-baseline's max lengths, written out independently.
OFFICIAL_DEV_FILES = {
    "ynat": "ynat-v1.1_dev.json",
    "nli": "klue-nli-v1.1_dev.json",
    "sts": "klue-sts-v1.1_dev.json",
    "ner": "klue-ner-v1.1_dev.tsv",
    "re": "klue-re-v1.1_dev.json",
    "dp": "klue-dp-v1.1_dev.tsv",
    "mrc": "klue-mrc-v1_dev.subset.json",
    "wos": "wos-v1_dev.subset.json",
}
BASELINE_MAX_LENGTH = {
    "ynat": 128,
    "nli": 128,
    "sts": 128,
    "ner": 510,
    "re": 256,
    "dp": 256,
    "mrc": 510,
    "wos": 510,
}


# -- the quick run -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, Path, str]:
    out = tmp_path_factory.mktemp("bench")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("KLUE_DATA_DIR", raising=False)  # the bundled samples, whatever the environment
        stdout = io.StringIO()
        with contextlib.redirect_stdout(stdout):
            status = main(["bench", "--quick", "--model-size", "tiny", "--output", str(out)])
    return status, out, stdout.getvalue()


def test_quick_bench_writes_every_figure_with_its_target(quick_run: tuple[int, Path, str]) -> None:
    status, out, printed = quick_run
    assert status == 0
    r = json.loads((out / "bench.json").read_text(encoding="utf-8"))
    assert r["plan"]["quick"] and r["plan"]["data"] == "samples" and r["plan"]["model_size"] == "tiny"
    assert set(r["targets"]) == set(TARGETS)
    for name, t in r["targets"].items():
        assert isinstance(t["value"], float) and isinstance(t["met"], bool), name
        assert t["target"] == TARGETS[name][3]
    for key in ("cpu", "cpu_cores", "torch_threads", "torch", "transformers"):
        assert r["machine"][key] not in (None, ""), key
    assert r["machine"]["other_processes_cores"] >= 0  # how disturbed the timings were
    assert set(r["other_processes_cores"]) == {"joint_loop", "bare", "trainer", "plain_recipe"}
    assert {"device", "autocast_dtype", "optimizer", "compile"} <= set(r["engine"])
    assert set(r["padding_efficiency"]["per_task"]) == set(TASK_NAMES)
    th = r["throughput"]
    for run in ("joint_loop", "plain_recipe"):
        assert th[run]["steps"] == r["plan"]["timed_steps"] and th[run]["real_tokens_per_second"] > 0
    # The plain recipe trains the same tasks as many times, padded to the baseline lengths.
    assert th["joint_loop"]["steps_per_task"] == th["plain_recipe"]["steps_per_task"]
    assert th["plain_recipe"]["padded_tokens"] >= th["plain_recipe"]["real_tokens"]
    assert r["trainer_vs_loop"]["same_batches"] is True
    assert r["engine_overhead"]["bare_seconds_per_step"] > 0
    for part in ("scoring", "predict"):
        assert set(r["evaluation"][part]) == set(TASK_NAMES)
    assert all(v["examples_per_second"] > 0 for v in r["evaluation"]["predict"].values())
    assert set(r["featurization"]["per_task"]) == set(TASK_NAMES)
    assert r["featurization"]["first_seconds"] > r["featurization"]["cached_seconds"] > 0
    assert 0 < r["compute_efficiency"]["fraction_of_peak"] < 1
    m = r["mlm_step"]
    assert m["masked_only_seconds"] > 0 and m["full_projection_seconds"] > 0 and m["masked_tokens"] > 0
    assert m["speedup"] == pytest.approx(m["full_projection_seconds"] / m["masked_only_seconds"], rel=1e-2)
    assert r["memory"]["joint_peak_rss_bytes"] > 0 and r["memory"]["single_task"] in TASK_NAMES
    serving = r["serving"]
    assert set(serving["api_speed"]) == set(TASK_NAMES)
    assert all(v["examples_per_second"] > 0 for v in serving["api_speed"].values())
    # The classification tasks are compared with the pipeline, and both give the same labels.
    assert set(serving["api_vs_pipeline"]) == {"ynat", "nli"}
    for c in serving["api_vs_pipeline"].values():
        assert c["speedup"] > 0 and c["same_labels"] == f"{c['examples']}/{c['examples']}"
    assert serving["memory"]["models_loaded"] == {"joint": 1, "separate": 8}
    assert 0 < serving["memory"]["ratio"] < 1.5
    # HTTP serving: a real `klue-mtl serve` process answered every request of the quick load run
    http = r["http_serving"]
    assert set(http["targets"]) == {
        "analyze_speedup_min_2.4",
        "micro_batching_speedup_min_3",
        "memory_above_imports_max_0.25",
        "load_no_failed_good",
        "load_rss_growth_max_10pct",
    }
    a = http["analyze_vs_separate"]
    assert (
        a["tasks"] == ["ynat", "ner", "dp"] and a["identical_results"] == f"{a['examples']}/{a['examples']}"
    )
    assert http["micro_batching"]["speedup"] > 0
    load = http["load"]
    assert load["requests"] == load["good"] + load["bad"] == sum(load["statuses"].values())
    assert load["failed_good"] == 0 and load["bad_not_4xx"] == 0, load["failures"]
    assert 0 < load["p50_ms"] <= load["p99_ms"] and load["rss_first_half_bytes"] > 0
    # the eight exports were measured once, for both serving sections
    assert http["memory"]["separate_peak_rss_bytes"] == serving["memory"]["separate_peak_rss_bytes"]


def test_quick_bench_prints_the_table_it_writes(quick_run: tuple[int, Path, str]) -> None:
    _, out, printed = quick_run
    table = (out / "bench.md").read_text(encoding="utf-8")
    assert table.strip() in printed
    for what, *_ in TARGETS.values():
        assert f"| {what} |" in table
    for task in TASK_NAMES:
        assert f"| {task} |" in table
    assert "## HTTP serving" in table and "| load: 100 requests, 16 concurrent |" in table


# -- data and plan -------------------------------------------------------------------------------
def test_without_a_data_dir_the_bundled_samples_are_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KLUE_DATA_DIR", raising=False)
    data = find_data(None)
    assert data.source == "samples"
    assert all(
        (data.data_dir / data.train[t]).is_file() and (data.data_dir / data.dev[t]).is_file()
        for t in TASK_NAMES
    )


def test_the_data_dir_may_hold_official_and_a_missing_file_is_named(tmp_path: Path) -> None:
    official = tmp_path / "official"
    official.mkdir()
    for name in list(OFFICIAL_DEV_FILES.values())[:-1]:
        (official / name).write_text("[]")
    with pytest.raises(KlueInputError, match="wos-v1_dev.subset.json"):
        find_data(tmp_path)
    (official / OFFICIAL_DEV_FILES["wos"]).write_text("[]")
    (official / "ontology.json").write_text("{}")
    data = find_data(tmp_path)
    assert data.source == "klue-dev" and data.data_dir == official
    assert data.train == data.dev == OFFICIAL_DEV_FILES


def test_an_unknown_model_size_is_an_input_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KLUE_DATA_DIR", raising=False)
    with pytest.raises(KlueInputError, match="huge"):
        make_plan("huge", None, quick=True)


def test_the_base_plan_is_roberta_base_shaped(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("KLUE_DATA_DIR", raising=False)
    plan = make_plan("base", None, quick=False)
    cfg = run_config(plan, tmp_path / "c", tmp_path / "o")
    arch = cfg.encoder.architecture
    assert (arch["hidden_size"], arch["num_hidden_layers"], arch["num_attention_heads"]) == (768, 12, 12)
    assert arch["intermediate_size"] == 3072
    assert all(cfg.task_settings(t).max_length == BASELINE_MAX_LENGTH[t] for t in TASK_NAMES)
    assert all(cfg.tasks[t].dev is None for t in TASK_NAMES)  # training runs never evaluate


# -- padding arithmetic --------------------------------------------------------------------------
def test_processed_tokens_pad_to_the_longest_row_or_to_a_fixed_length() -> None:
    lengths = np.array([3, 5, 2, 7])
    batches = [np.array([0, 1]), np.array([2, 3])]
    assert processed_tokens(lengths, batches) == 2 * 5 + 2 * 7
    assert processed_tokens(lengths, batches, fixed=10) == 40


def test_length_grouping_pads_less_than_random_order_on_mixed_lengths() -> None:
    rng = np.random.default_rng(0)
    lengths = np.concatenate([rng.integers(10, 20, 500), rng.integers(200, 300, 500)])
    counts = task_padding(lengths, 16, 512, seed=1)
    real = int(lengths.sum())
    assert all(r == real for r, _ in counts.values())
    assert counts["baseline_max_length"][1] == 1000 * 512
    ours, rand = (real / counts[k][1] for k in ("ours", "random_dynamic"))
    assert ours > 0.9 and rand < 0.7


def test_the_joint_figure_pools_tokens_over_tasks() -> None:
    lengths = {"ynat": np.array([10, 10]), "mrc": np.array([100, 50])}
    report = padding_efficiency(lengths, {"ynat": 2, "mrc": 2}, {"ynat": 20, "mrc": 100}, seed=0)
    assert report["per_task"]["ynat"]["baseline_max_length"] == 0.5
    assert report["joint"]["baseline_max_length"] == round(170 / 240, 4)
    assert report["joint"]["ours"] == round(170 / 220, 4)


# -- streams and batches -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sample_tasks() -> dict[str, TaskData]:
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("KLUE_DATA_DIR", raising=False)
        plan = make_plan("tiny", None, quick=True)
    cfg = run_config(plan, "unused", "unused")
    tokenizer = build_offline_tokenizer()
    tasks = {t: setup_task(t, cfg, tokenizer) for t in TASK_NAMES}
    add_task_tokens(tokenizer, list(tasks.values()))
    out = {}
    for name, task in tasks.items():
        records = read_split(task, resolve_path(cfg, plan.data.dev[name]), "dev", None)
        features = featurize(task, records, progress=False)
        split = Split(records, features, feature_lengths(features))
        out[name] = TaskData(task, split, split)
    return out


def test_pad_to_length_pads_every_token_field_with_its_own_value(sample_tasks: dict[str, TaskData]) -> None:
    from mtl.batching.collate import batch_for

    for name in ("ner", "mrc", "dp"):
        td = sample_tasks[name]
        shortest = np.argsort(td.train.lengths)[:2]  # type: ignore[union-attr]
        batch = batch_for(td.task, td.train, shortest, "cpu")  # type: ignore[arg-type]
        width = batch["input_ids"].shape[1]
        padded = pad_to_length(td.task, batch, width + 40)
        assert padded["input_ids"].shape == padded["attention_mask"].shape == (2, width + 40)
        assert torch.equal(padded["input_ids"][:, :width], batch["input_ids"])
        assert (padded["input_ids"][:, width:] == td.task.tokenizer.pad_token_id).all()
        assert (padded["attention_mask"][:, width:] == 0).all()
        assert padded["attention_mask"].sum() == batch["attention_mask"].sum()
        for key, value in batch.items():
            if key in td.task.token_fields and key != "input_ids":
                tail = padded[key][:, width:]
                assert (tail == (False if value.dtype == torch.bool else -100)).all(), key
            elif key not in ("input_ids", "attention_mask"):
                assert torch.equal(padded[key], value), key  # per-word and per-example fields untouched


def test_the_plain_stream_trains_one_task_after_the_other_at_baseline_length(
    sample_tasks: dict[str, TaskData],
) -> None:
    stream = PlainStream(sample_tasks, [("ynat", 2), ("ner", 1), ("wos", 3)], seed=0, device="cpu")
    drawn = [next(stream) for _ in range(6)]
    assert [b["task"] for b in drawn] == ["ynat", "ynat", "ner", "wos", "wos", "wos"]
    for b in drawn:
        assert b["input_ids"].shape[1] == BASELINE_MAX_LENGTH[b["task"]]


def test_reference_predictions_are_valid_and_scored_below_perfect(sample_tasks: dict[str, TaskData]) -> None:
    for name, td in sample_tasks.items():
        golds, preds = reference_predictions(td.task, td.train.records)  # type: ignore[union-attr]
        assert len(preds) == len(golds) > 0
        for gold, pred in zip(golds, preds, strict=True):
            assert td.task.check_prediction(pred, gold) is None, (name, pred)
        metrics = td.task.compute_metrics(golds, preds)
        assert 0 < metrics[td.task.main_metric] < 100, (name, metrics)


def test_first_records_keeps_whole_records_with_their_features(sample_tasks: dict[str, TaskData]) -> None:
    split = sample_tasks["mrc"].train
    sub = first_records(split, int(split.lengths[:3].sum()))  # type: ignore[union-attr]
    n = len(sub.records)
    assert sub.records == split.records[:n]  # type: ignore[union-attr]
    assert list(sub.features["example_index"]) == [i for i in split.features["example_index"] if i < n]  # type: ignore[union-attr]
    assert len(first_records(split, 1).records) == 1  # type: ignore[arg-type]


# -- FLOPs and memory helpers --------------------------------------------------------------------
def test_training_flops_count_matmul_parameters_and_attention() -> None:
    from mtl.config import EncoderConfig

    arch = {"hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 32}
    encoder = build_encoder(EncoderConfig(random_init=True, architecture=arch), 100)
    model = MultiTaskModel(encoder, {"ynat": {"kind": "classification", "args": {"num_labels": 7}}})
    # Per layer: Q, K, V, output (16x16 + 16 each), FFN in/out, two LayerNorms; embeddings' LayerNorm.
    per_layer = 4 * (16 * 16 + 16) + (16 * 32 + 32) + (32 * 16 + 16) + 2 * 2 * 16
    head = (16 * 16 + 16) + (16 * 7 + 7)
    expected_params = 2 * per_layer + 2 * 16 + head
    assert matmul_parameters(model, "ynat") == expected_params
    assert training_flops(model, "ynat", 4, 8) == 4 * 8 * (6 * expected_params + 12 * 2 * 8 * 16)


def test_the_memory_runs_peak_on_the_batch_with_the_largest_activations() -> None:
    lengths = np.array([5, 9, 2, 9, 7])
    assert longest_batch(lengths, 3) == [1, 3, 4]
    assert batch_tokens(lengths, [1, 3, 4]) == 27
    # roberta-base: 8 x 256 tokens hold more tokens than 4 x 510, but less attention memory.
    re_cost = activation_estimate(np.full(8, 256), list(range(8)), 768, 12)
    mrc_cost = activation_estimate(np.full(4, 510), list(range(4)), 768, 12)
    assert 8 * 256 > 4 * 510 and mrc_cost > re_cost
    assert re_cost == 8 * 256 * (34 + 5 * 12 * 256 / 768)


def test_targets_compare_in_their_own_direction() -> None:
    values = {
        "padding_efficiency": {"joint": {"ours": 0.95}},
        "throughput": {"speedup": 1.5},
        "engine_overhead": {"overhead": 0.01},
        "trainer_vs_loop": {"difference": -0.2},
        "featurization": {"cached_speedup": 30.0},
        "evaluation": {"slowest_metrics_seconds": 0.2},
        "compute_efficiency": {"fraction_of_peak": 0.31},
        "memory": {"ratio": 1.21},
        "seconds": 500.0,
        "serving": {"api_vs_pipeline_min": 1.4, "memory": {"ratio": 0.2}},
    }
    checked = check_targets(values)
    met = {k: v["met"] for k, v in checked.items()}
    assert all(v["applies"] for v in checked.values())  # no plan: a base-size run
    tiny = check_targets({**values, "plan": {"model_size": "tiny"}})
    assert [k for k, v in tiny.items() if not v["applies"]] == [
        "compute_efficiency",
        "api_vs_pipeline",
        "serving_memory_ratio",
    ]
    assert met == {
        "padding_efficiency": True,
        "joint_vs_plain_throughput": False,
        "engine_overhead": True,
        "trainer_vs_loop": False,
        "featurization_cache_speedup": True,
        "slowest_scoring_seconds": True,
        "compute_efficiency": True,
        "memory_ratio": False,
        "bench_seconds": True,
        "api_vs_pipeline": False,
        "serving_memory_ratio": True,
    }
