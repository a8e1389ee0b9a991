"""Length-grouped batches and dynamic padding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mtl.batching.collate import collate
from mtl.batching.order import TaskBatches, eval_batches
from mtl.training.budget import per_rank_batch_size


def test_every_feature_once_per_epoch_and_batches_are_length_grouped() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 500, size=1000)
    batches = TaskBatches(lengths, 16, seed=3, group_factor=50)
    epoch = [next(batches) for _ in range(batches.batches_per_epoch)]
    seen = np.concatenate(epoch)
    assert sorted(seen.tolist()) == list(range(1000))
    padded = sum(len(b) * lengths[b].max() for b in epoch)
    assert lengths.sum() / padded > 0.9  # random order would give ~0.5 here
    assert batches.epoch == 0 and next(batches) is not None and batches.epoch == 1


def test_state_restores_the_same_stream() -> None:
    lengths = np.arange(1, 101)
    a = TaskBatches(lengths, 8, seed=1)
    for _ in range(17):
        next(a)
    b = TaskBatches(lengths, 8, seed=1)
    b.load_state_dict(a.state_dict())
    for _ in range(30):
        assert np.array_equal(next(a), next(b))


@pytest.mark.parametrize("batch_size", [8, 6])
def test_ranks_take_disjoint_shards_of_the_global_batch_a_single_process_draws(batch_size: int) -> None:
    # batch_size is global: two ranks split the very batches one process draws with the same setting
    # (62 rows: the last batch of each epoch is short).
    lengths = np.arange(1, 63)
    r0, r1 = (TaskBatches(lengths, batch_size, seed=5, rank=r, world_size=2) for r in (0, 1))
    full = TaskBatches(lengths, batch_size, seed=5)
    assert r0.batches_per_epoch == full.batches_per_epoch
    for _ in range(20):
        a, b, g = next(r0), next(r1), next(full)
        assert not set(a) & set(b) and sorted([*a, *b]) == sorted(g)
        assert max(len(a), len(b)) <= per_rank_batch_size(batch_size, 2)


def test_eval_batches_cover_everything_longest_first() -> None:
    lengths = np.array([3, 9, 1, 7, 5])
    batches = eval_batches(lengths, 2)
    assert [list(b) for b in batches] == [[1, 3], [4, 0], [2]]


def test_collate_pads_to_the_longest_in_batch() -> None:
    rows = {
        "input_ids": [[0, 5, 6, 2], [0, 7, 2]],
        "labels": [[-100, 1, 2, -100], [-100, 3, -100]],
        "span_mask": [[0, 1, 1, 0], [0, 1, 0]],
        "word_starts": [[1, 2], [1]],
        "score": [1.5, 2.0],
        "example_index": [0, 1],
    }
    batch = collate(rows, pad_token_id=1, token_fields=("labels", "span_mask"), item_fields=("word_starts",))
    assert batch["input_ids"].tolist() == [[0, 5, 6, 2], [0, 7, 2, 1]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]
    assert batch["labels"].tolist()[1] == [-100, 3, -100, -100]
    assert batch["span_mask"].dtype == torch.bool and batch["span_mask"].tolist()[1] == [
        False,
        True,
        False,
        False,
    ]
    assert batch["word_starts"].tolist() == [[1, 2], [1, -100]]
    assert batch["score"].dtype == torch.float32
    assert "example_index" not in batch
