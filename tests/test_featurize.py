"""Featurization of a few uncached records (an API or server request) skips ``Dataset.map``: its
result must be ``map``'s, column types included, for every task on real KLUE dev records."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mtl.batching.featurize import IN_MEMORY_RECORDS, featurize
from mtl.batching.prepare import add_task_tokens, read_split, setup_task
from mtl.config import EncoderConfig, RunConfig, TaskConfig
from mtl.modeling.tokenizer import build_offline_tokenizer

pytestmark = pytest.mark.realdata

TASKS = ("ynat", "nli", "sts", "ner", "re", "dp", "mrc", "wos")
OFFICIAL = Path(os.environ.get("KLUE_DATA_DIR", "")) / "official"


@pytest.mark.parametrize("name", TASKS)
def test_a_few_records_featurized_in_memory_equal_datasets_map(name: str, tmp_path: Path) -> None:
    if not OFFICIAL.is_dir():
        pytest.skip("KLUE_DATA_DIR is not set (point it at the shared klue folder)")
    settings = {"ontology": "ontology.json"} if name == "wos" else {}
    cfg = RunConfig(
        encoder=EncoderConfig(tokenizer="offline", random_init=True),
        tasks={name: TaskConfig(**settings)},
        data_dir=str(OFFICIAL),
    )
    tokenizer = build_offline_tokenizer()
    task = setup_task(name, cfg, tokenizer)
    add_task_tokens(tokenizer, [task])
    (dev,) = sorted(p for pattern in task.dev_patterns for p in OFFICIAL.glob(pattern))
    records = read_split(task, str(dev), "dev", None)[: IN_MEMORY_RECORDS // 4]
    for sample in (records, records[:1]):
        mapped = featurize(task, sample, cache_dir=tmp_path / "cache", progress=False)  # Dataset.map
        in_memory = featurize(task, sample, progress=False)
        assert in_memory.features == mapped.features
        assert in_memory.to_list() == mapped.to_list()
        assert len(in_memory) >= len(sample)
