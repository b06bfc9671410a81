"""The pool interface: chunk-aligned scoring, top-k with ties, removing rows."""

from __future__ import annotations

import numpy as np
import pytest

from salutary.pool import ArrayPool, RowScorer, top_k


class RowSums(RowScorer):
    """Score = a product's row (BLAS), label = the chunk each row was scored in."""

    def __init__(self, w: np.ndarray, chunk_size: int) -> None:
        self.w = w
        self.chunk_size = chunk_size
        self.calls: list[int] = []

    def score_chunk(self, X):
        self.calls.append(len(X))
        return X @ self.w, np.full(len(X), len(self.calls))


def test_scorer_scores_each_aligned_chunk_once_in_order():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 4))
    scorer = RowSums(rng.normal(size=4), chunk_size=7)
    scores, _ = scorer(X)
    assert sorted(scorer.calls) == [2, 7, 7, 7, 7]  # 30 rows: four full chunks, then 2
    expected = np.concatenate([X[s : s + 7] @ scorer.w for s in range(0, 30, 7)])
    np.testing.assert_array_equal(scores, expected)


def test_scorer_gives_the_same_bits_with_any_number_of_threads():
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(1)
    X = rng.normal(size=(5000, 40))
    w = rng.normal(size=40)
    with threadpool_limits(1):
        one = RowSums(w, 256)(X)[0]
    with threadpool_limits(4):
        many = RowSums(w, 256)(X)[0]
    np.testing.assert_array_equal(one, many)


def test_top_k_breaks_ties_by_the_generator_and_puts_nan_last():
    scores = np.array([1.0, 3.0, np.nan, 3.0, 2.0, 3.0])
    picks = {tuple(top_k(scores, 3, np.random.default_rng(s)).tolist()) for s in range(30)}
    assert all(set(p) == {1, 3, 5} for p in picks) and len(picks) > 1  # ties: any order
    assert top_k(scores, 6, np.random.default_rng(0))[-1] == 2
    assert len(top_k(scores, 0, np.random.default_rng(0))) == 0


def test_array_pool_top_k_equals_top_k_of_the_scores_and_first_goes_first():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(50, 3))
    scorer = RowSums(rng.normal(size=3), chunk_size=16)
    scores = X @ scorer.w
    best = ArrayPool(X).top_k(scorer, 5, np.random.default_rng(3))
    np.testing.assert_array_equal(best.indices, top_k(scores, 5, np.random.default_rng(3)))
    np.testing.assert_array_equal(best.scores, scores[best.indices])
    first = np.array([int(np.argmin(scores)), 7])
    boosted = ArrayPool(X).top_k(scorer, 5, np.random.default_rng(3), first=first)
    assert set(boosted.indices[:2].tolist()) == set(first.tolist())
    assert np.isinf(boosted.scores[:2]).all()


def test_without_leaves_the_pool_and_remove_compacts_it():
    X = np.arange(40.0).reshape(10, 4)
    original = X.copy()
    pool = ArrayPool(X)
    rest = pool.without(np.array([0, 9]))
    assert pool.n_rows == 10 and rest.n_rows == 8
    np.testing.assert_array_equal(rest.to_numpy(), np.delete(X, [0, 9], axis=0))
    pool.remove(np.array([2, 5]))
    np.testing.assert_array_equal(X, original)  # the caller's array is never changed
    np.testing.assert_array_equal(pool.to_numpy(), np.delete(X, [2, 5], axis=0))
    pool.remove(np.array([0]))  # now compacted in place
    np.testing.assert_array_equal(pool.to_numpy(), np.delete(X, [0, 2, 5], axis=0))
    np.testing.assert_array_equal(pool.take(np.array([1, 0])), X[[3, 1]])
    assert pool.shape == (7, 4) and len(pool) == 7


def test_scorer_without_labels():
    class Plain(RowScorer):
        has_labels = False

        def score_chunk(self, X):
            return X[:, 0], None

    X = np.arange(12.0).reshape(6, 2)
    best = ArrayPool(X).top_k(Plain(), 2, np.random.default_rng(0))
    assert best.labels is None
    np.testing.assert_array_equal(best.indices, [5, 4])


@pytest.mark.parametrize("n", [0, 1])
def test_tiny_pools(n):
    X = np.ones((n, 3))
    best = ArrayPool(X).top_k(RowSums(np.ones(3), 4), 3, np.random.default_rng(0))
    assert len(best.indices) == n
