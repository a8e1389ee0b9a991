"""Baselines beside the trained model: what a model must beat to show it learned anything.

Two kinds, both defined per task on the task classes (``trivial_baseline``, ``nonneural_baseline``)
and scored by the same ``score`` code as any model's predictions:

- trivial: the majority label, the mean score, all-O, always null... (the floor);
- non-neural: a cheap model fitted on the training side only, in seconds of CPU (TF-IDF character
  n-gram logistic regression, character-overlap similarity, most frequent tag per character...).
  Their settings are fixed here, or chosen by cross-validation on the training side; the held-out
  side is never looked at while fitting.

This module holds the shared, task-agnostic pieces; scikit-learn is imported only when one is fitted.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from typing import Any

import numpy as np

#: inverse regularisation strengths tried by 3-fold cross-validation on the training side
C_GRID = (0.25, 1.0, 4.0, 16.0)
SEED = 0


def majority(values: Iterable[Hashable]) -> Any:
    """The most frequent value (ties: the first one seen)."""
    return Counter(values).most_common(1)[0][0]


def char_ngrams(text: str, n: int = 2) -> set[str]:
    """The set of character n-grams of ``text`` with spaces removed (its characters if shorter)."""
    s = "".join(text.split())
    return {s[i : i + n] for i in range(max(len(s) - n + 1, 1))} if s else set()


def jaccard(a: set[str], b: set[str]) -> float:
    """|a & b| / |a | b| (0 for two empty sets)."""
    return len(a & b) / len(a | b) if a | b else 0.0


def overlap_features(first: str, second: str) -> list[float]:
    """Character-overlap features of a text pair: uni/bi/tri-gram Jaccard, word Jaccard, length ratio."""
    grams = [jaccard(char_ngrams(first, n), char_ngrams(second, n)) for n in (1, 2, 3)]
    words = jaccard(set(first.split()), set(second.split()))
    lengths = min(len(first), len(second)) / max(len(first), len(second), 1)
    return [*grams, words, lengths]


def tfidf_logreg(
    train_columns: Sequence[Sequence[str]],
    labels: Sequence[int],
    test_columns: Sequence[Sequence[str]],
    *,
    train_dense: Sequence[Sequence[float]] | None = None,
    test_dense: Sequence[Sequence[float]] | None = None,
    ngram_range: tuple[int, int] = (1, 3),
    C: float | None = None,  # noqa: N803 (scikit-learn's name)
) -> tuple[np.ndarray, list[int]]:
    """Fit a logistic regression on TF-IDF character n-grams of each text column (+ dense features).

    Each column gets its own vectoriser (so "n-gram of the premise" and "n-gram of the hypothesis"
    are different features). ``C`` is chosen from :data:`C_GRID` by 3-fold cross-validation on the
    training side unless given (a fixed ``C`` keeps a many-class fit within seconds). Returns the held-out class probabilities and the classes (label ids) they follow.
    """
    from scipy.sparse import csr_matrix, hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV

    train_blocks, test_blocks = [], []
    for train_texts, test_texts in zip(train_columns, test_columns, strict=True):
        vec = TfidfVectorizer(analyzer="char_wb", ngram_range=ngram_range, sublinear_tf=True, min_df=2)
        train_blocks.append(vec.fit_transform(train_texts))
        test_blocks.append(vec.transform(test_texts))
    if train_dense is not None and test_dense is not None:
        train_blocks.append(csr_matrix(np.asarray(train_dense, dtype=np.float64)))
        test_blocks.append(csr_matrix(np.asarray(test_dense, dtype=np.float64)))
    x_train, x_test = hstack(train_blocks).tocsr(), hstack(test_blocks).tocsr()
    y = np.asarray(labels)
    if C is not None:
        model: Any = LogisticRegression(C=C, max_iter=2000, random_state=SEED)
    elif min(Counter(labels).values()) >= 3:
        # scoring: accuracy, named, because scikit-learn 1.11 changes the default to log loss (and so
        # the C it picks)
        model = LogisticRegressionCV(
            Cs=list(C_GRID), cv=3, scoring="accuracy", max_iter=2000, random_state=SEED
        )
    else:  # a class too rare for 3-fold cross-validation: the default strength
        model = LogisticRegression(C=1.0, max_iter=2000, random_state=SEED)
    with warnings.catch_warnings():
        # scikit-learn 1.9's notices of coming changes that do not touch this fit (an l2 penalty, and
        # fitted attributes it does not read); their parameters do not exist in older versions
        warnings.filterwarnings(
            "ignore", message=".*(l1_ratios|use_legacy_attributes)", category=FutureWarning
        )
        model.fit(x_train, y)
    return model.predict_proba(x_test), [int(c) for c in model.classes_]


def linear_fit(x_train: Sequence[Sequence[float]], y_train: Sequence[float]) -> Any:
    """Least-squares linear map of features to a target (fitted on the training side)."""
    from sklearn.linear_model import LinearRegression

    return LinearRegression().fit(
        np.asarray(x_train, dtype=np.float64), np.asarray(y_train, dtype=np.float64)
    )
