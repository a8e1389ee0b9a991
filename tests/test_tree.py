"""mst_decode: always a single-root tree, and the best one (checked against brute force)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heads.tree import mst_decode


def _is_single_root_tree(heads: np.ndarray) -> bool:
    n = len(heads)
    if not all(0 <= h <= n for h in heads) or sum(1 for h in heads if h == 0) != 1:
        return False
    for word in range(1, n + 1):
        seen = set()
        node = word
        while node != 0:
            if node in seen:
                return False
            seen.add(node)
            node = heads[node - 1]
    return True


def _score(scores: np.ndarray, heads: np.ndarray) -> float:
    return float(sum(scores[dep, head] for dep, head in enumerate(heads, start=1)))


def _brute_force_best(scores: np.ndarray) -> float:
    """Maximum score over every single-root tree, by enumerating all of them."""
    n = scores.shape[0] - 1
    best = -np.inf
    for root_child in range(1, n + 1):
        others = [w for w in range(1, n + 1) if w != root_child]
        choices = [[h for h in range(1, n + 1) if h != w] for w in others]
        for picked in itertools.product(*choices):
            heads = np.zeros(n, dtype=np.int64)
            heads[[w - 1 for w in others]] = picked
            if _is_single_root_tree(heads):
                best = max(best, _score(scores, heads))
    return best


def _random_scores(seed: int, n: int, integer: bool) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if integer:
        # Small integers force many ties, the case where a careless contraction picks a wrong edge.
        return rng.integers(-3, 4, size=(n + 1, n + 1)).astype(np.float64)
    return rng.normal(size=(n + 1, n + 1)) * rng.uniform(0.1, 5.0)


@settings(max_examples=150, deadline=None)
@given(n=st.integers(1, 25), seed=st.integers(0, 2**32 - 1), integer=st.booleans())
def test_always_returns_a_single_root_tree(n: int, seed: int, integer: bool) -> None:
    scores = _random_scores(seed, n, integer)
    heads = mst_decode(scores)
    assert heads.shape == (n,)
    assert heads.dtype == np.int64
    assert _is_single_root_tree(heads), heads


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6])
def test_matches_brute_force_maximum_for_small_sentences(n: int) -> None:
    trials = 60 if n <= 5 else 12
    for seed in range(trials):
        for integer in (False, True):
            scores = _random_scores(1000 * n + seed, n, integer)
            heads = mst_decode(scores)
            assert _is_single_root_tree(heads)
            assert _score(scores, heads) == pytest.approx(_brute_force_best(scores), abs=1e-9)


def test_prefers_single_root_tree_when_every_word_wants_root() -> None:
    # Every word's best head is ROOT; only one may keep it. Word 2 has the strongest root edge and
    # the other words attach to it next best.
    scores = np.full((4, 4), -5.0)
    scores[1:, 0] = [0.0, 1.0, 0.0]
    scores[1, 2] = scores[3, 2] = -1.0
    assert mst_decode(scores).tolist() == [2, 0, 2]


def test_ignores_root_row_and_diagonal() -> None:
    scores = np.log(np.full((3, 3), 0.5))
    scores[0, :] = np.nan
    np.fill_diagonal(scores, np.inf)
    scores[1, 0] = 0.0
    assert mst_decode(scores).tolist() == [0, 1]


def test_empty_sentence_gives_empty_heads() -> None:
    assert mst_decode(np.zeros((1, 1))).shape == (0,)


@pytest.mark.parametrize("bad", [np.zeros((3, 4)), np.zeros(3), np.zeros((0, 0))])
def test_rejects_non_square_matrix(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="square"):
        mst_decode(bad)


def test_rejects_non_finite_scores_it_would_use() -> None:
    scores = np.zeros((3, 3))
    scores[2, 1] = -np.inf
    with pytest.raises(ValueError, match="finite"):
        mst_decode(scores)


def test_is_fast_enough_for_long_sentences() -> None:
    # A 100-word sentence whose words all prefer ROOT exercises the single-root search fully.
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(101, 101))
    scores[1:, 0] += 20.0
    heads = mst_decode(scores)
    assert _is_single_root_tree(heads)
