"""Scoring a Dask pool where it lives, and its top-k by a tree reduction.

Every task scores whole chunks of the remaining rows (:func:`plan`), so each row gets the
bits the in-memory pool gives it; the top-k ranks ties by one permutation of all
remaining rows drawn on the client, exactly as :func:`salutary.pool.top_k` does, and only
``k`` candidates per task ever leave a worker.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from salutary._chunks import CHUNK_SIZE
from salutary.distributed._arrays import (
    as_dask_array,
    known_rows,
    plan,
    sorted_exclude,
)
from salutary.distributed._client import broadcast, compute, dask_module
from salutary.influence import InfluenceFactors
from salutary.strategies import BestLabels

if TYPE_CHECKING:
    import dask.array as da
    from distributed import Client

__all__ = [
    "MAX_TIEBREAK_ROWS",
    "distributed_top_k",
    "score_pool",
    "score_tasks",
    "top_k_of_tasks",
]

#: Largest pool (rows still unlabeled) whose ties are broken exactly like ``top_k``.
MAX_TIEBREAK_ROWS = 50_000_000

# One scored task: (the delayed result, first remaining row, end).
ScoredTask = tuple[Any, int, int]


def _score_rows(scorer: Callable[[np.ndarray], Any], pieces: list[np.ndarray], drop: np.ndarray):
    """Score one task's rows (runs on a worker)."""
    X = pieces[0] if len(pieces) == 1 else np.concatenate(pieces, axis=0)
    if len(drop):
        keep = np.ones(X.shape[0], dtype=bool)
        keep[drop] = False
        X = X[keep]
    return scorer(np.ascontiguousarray(X))


def score_tasks(
    arr: da.Array,
    exclude: np.ndarray,
    scorer: Callable[[np.ndarray], Any],
    chunk_size: int,
    client: Client | None,
) -> list[ScoredTask]:
    """One delayed ``scorer`` call per task of :func:`plan` (the scorer sent once)."""
    blocks = arr.to_delayed(optimize_graph=False).ravel()
    block_rows = arr.chunks[0]
    shared = broadcast(scorer, client)
    score = dask_module("dask").delayed(_score_rows)  # fresh keys per call
    out = []
    for t in plan(block_rows, exclude, chunk_size):
        parts = [
            blocks[b] if (lo, hi) == (0, block_rows[b]) else blocks[b][lo:hi]
            for b, lo, hi in t.pieces
        ]
        out.append((score(shared, parts, t.drop), t.q0, t.q1))
    return out


# A candidate set: (rows, labels, scores, tiebreak ranks), best first.
_Candidates = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _order(scores: np.ndarray, tiebreak: np.ndarray) -> np.ndarray:
    # The key of salutary.pool.top_k: score descending (as float64), then the rank.
    return np.lexsort((tiebreak, -np.asarray(scores, dtype=np.float64)))


def _local_top_k(
    result: tuple[np.ndarray, np.ndarray | None],
    tiebreak: np.ndarray,
    offset: int,
    k: int,
    first: np.ndarray,
) -> _Candidates:
    """The ``k`` best rows of one task (runs on a worker); ``first`` rank as ``+inf``."""
    scores, labels = np.asarray(result[0]), result[1]
    labels = np.zeros(len(scores), np.intp) if labels is None else np.asarray(labels)
    if len(first):
        scores = np.array(scores, copy=True)
        scores[first] = np.inf
    idx = np.arange(len(scores), dtype=np.int64)
    if 0 < k < len(scores):
        key = -np.asarray(scores, dtype=np.float64)
        kth = np.partition(key, k - 1)[k - 1]  # NaN sort last, as in lexsort
        if not np.isnan(kth):
            idx = np.flatnonzero(key <= kth)  # the k best and every row tied with them
    order = idx[_order(scores[idx], tiebreak[idx])][:k]
    return order + offset, labels[order], scores[order], tiebreak[order]


def _merge(candidates: list[_Candidates], k: int) -> _Candidates:
    rows, labels, scores, tiebreak = (np.concatenate(x) for x in zip(*candidates, strict=True))
    order = _order(scores, tiebreak)[:k]
    return rows[order], labels[order], scores[order], tiebreak[order]


def top_k_of_tasks(
    tasks: Sequence[ScoredTask],
    n: int,
    k: int,
    rng: np.random.Generator,
    *,
    first: np.ndarray | None = None,
    client: Client | None = None,
    split_every: int = 8,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions, labels and scores of the ``k`` best of ``n`` scored rows, best first.

    ``tasks`` cover rows ``0 .. n - 1`` in order, each yielding ``(scores, labels)``
    (labels may be None). Ties are broken by ``rng.permutation(n)``, the call
    :func:`salutary.pool.top_k` makes; rows in ``first`` rank before all others.
    """
    if n > MAX_TIEBREAK_ROWS:
        raise ValueError(
            f"{n} rows: exact tie-breaking draws a permutation of all rows on the client, "
            f"supported up to MAX_TIEBREAK_ROWS = {MAX_TIEBREAK_ROWS}"
        )
    if split_every < 2:
        raise ValueError(f"split_every must be at least 2, got {split_every}")
    tiebreak = rng.permutation(n)  # the very call top_k makes
    k = min(int(k), n)
    if k <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.intp), np.zeros(0)
    boost = np.zeros(0, np.int64) if first is None else np.unique(np.asarray(first, np.int64))
    slices = [tiebreak[q0:q1] for _, q0, q1 in tasks]
    if client is not None:
        # Straight to the workers, not through the graph. hash=False: equal slices of an
        # earlier call would get the same key, and the release of the earlier futures can
        # reach the scheduler after this scatter, leaving tasks with lost dependencies.
        slices = client.scatter(slices, hash=False)
    delayed = dask_module("dask").delayed
    local = delayed(_local_top_k)
    level = [
        local(result, slices[i], q0, k, boost[(boost >= q0) & (boost < q1)] - q0)
        for i, (result, q0, q1) in enumerate(tasks)
        if q1 > q0
    ]
    merge = delayed(_merge)
    while len(level) > 1:
        level = [merge(level[i : i + split_every], k) for i in range(0, len(level), split_every)]
    rows, top_labels, top_scores, _ = compute(level[0], client)
    return rows, top_labels, top_scores


def _pair(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return scores, labels


def distributed_top_k(
    labels: Any,
    scores: Any,
    k: int,
    seed: int | np.random.Generator | None,
    *,
    client: Client | None = None,
    split_every: int = 8,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``k`` largest scores, best first, ties broken as ``top_k`` breaks them.

    Equals ``top_k(scores, k, rng)`` with ``rng = np.random.default_rng(seed)`` (or
    ``seed`` itself when it is a Generator, which is advanced by the same one call).
    Each partition sends its ``k`` best rows; candidates are merged ``split_every`` at a
    time up a tree.

    Parameters
    ----------
    labels, scores : 1-D dask arrays (or arrays) of the same length
    k : int
    seed : int, Generator or None
    client : distributed.Client or None
    split_every : int
        Fan-in of the reduction tree.

    Returns
    -------
    (indices, labels, scores) : ndarrays
        Row indices into ``scores`` (int64), and the labels and scores of those rows.

    Raises
    ------
    ValueError
        When ``len(scores)`` exceeds :data:`MAX_TIEBREAK_ROWS`.
    """
    da = dask_module("dask.array")
    scores = da.asarray(scores)
    labels = da.asarray(labels)
    if scores.ndim != 1 or labels.shape != scores.shape:
        raise ValueError(
            f"labels and scores must be 1-D of one length: {labels.shape}, {scores.shape}"
        )
    scores = known_rows(scores, client)
    labels = labels.rechunk(scores.chunks)
    lab_blocks = labels.to_delayed(optimize_graph=False).ravel()
    score_blocks = scores.to_delayed(optimize_graph=False).ravel()
    offsets = np.concatenate([[0], np.cumsum(scores.chunks[0], dtype=np.int64)])
    pair = dask_module("dask").delayed(_pair)
    tasks = [
        (pair(score_blocks[i], lab_blocks[i]), int(offsets[i]), int(offsets[i + 1]))
        for i in range(len(score_blocks))
    ]
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    rows, top_labels, top_scores = top_k_of_tasks(
        tasks, int(offsets[-1]), k, rng, client=client, split_every=split_every
    )
    if len(rows) == 0:
        return rows, np.zeros(0, dtype=labels.dtype), np.zeros(0, dtype=scores.dtype)
    return rows, top_labels, top_scores


class _Influence:
    """The influence matrix of a pool's rows (runs on a worker)."""

    def __init__(self, factors: InfluenceFactors, chunk_size: int) -> None:
        self.factors = factors
        self.chunk_size = chunk_size

    def __call__(self, X: np.ndarray) -> np.ndarray:
        return self.factors.score(X, chunk_size=self.chunk_size)


def _score_dtype(dtype: np.dtype) -> np.dtype:
    dtype = np.dtype(dtype)
    return dtype if dtype in (np.float32, np.float64) else np.dtype(np.float64)


def score_pool(
    factors: InfluenceFactors,
    pool: Any,
    *,
    feature_columns: Sequence[str] | None = None,
    exclude: Any = None,
    output: str = "best",
    chunk_size: int | None = None,
    client: Client | None = None,
) -> tuple[da.Array, da.Array] | da.Array:
    """Score a pool partition by partition, lazily.

    Parameters
    ----------
    factors : InfluenceFactors
        Fitted; sent to the workers once (scattered to all of them when ``client`` is
        given, else one shared key of the graph).
    pool : see :func:`as_dask_array`
    feature_columns : sequence of str or None
        Columns of a DataFrame or Parquet pool to use as features.
    exclude : array-like of int or None
        Rows of the pool to leave out (e.g. already labeled); the result covers the
        other rows, in order.
    output : {"best", "influence"}
        ``best``: ``(labels, scores)`` as from ``factors.best_labels`` (labels are
        class indices into ``factors.classes_``). ``influence``: the influence matrix
        of shape ``(n, n_classes)`` as from ``factors.score``.
    chunk_size : int or None
        Rows per matrix product; default that of ``best_labels``, which makes every
        value bit-for-bit equal to the in-memory call on the same rows.
    client : distributed.Client or None
        Cluster to broadcast the factors on; ``None`` leaves it to dask's default.

    Returns
    -------
    (labels, scores) : two 1-D dask arrays, or the influence matrix as a 2-D dask array
    """
    da = dask_module("dask.array")
    if output not in ("best", "influence"):
        raise ValueError(f"output must be 'best' or 'influence', got {output!r}")
    arr = as_dask_array(pool, feature_columns=feature_columns, client=client)
    d = factors.theta_.shape[1] - (1 if factors.fit_intercept_ else 0)
    if arr.shape[1] != d:
        raise ValueError(f"the pool has {arr.shape[1]} features, the factors {d}")
    size = int(chunk_size or CHUNK_SIZE)
    excluded = sorted_exclude(exclude, arr.shape[0])
    dtype = _score_dtype(arr.dtype)
    n_classes = len(factors.classes_)
    if output == "influence":
        tasks = score_tasks(arr, excluded, _Influence(factors, size), size, client)
        parts = [da.from_delayed(r, (q1 - q0, n_classes), dtype=dtype) for r, q0, q1 in tasks]
        return da.concatenate(parts, axis=0) if parts else da.zeros((0, n_classes), dtype=dtype)
    scorer = BestLabels(factors)
    scorer.chunk_size = size
    tasks = score_tasks(arr, excluded, scorer, size, client)
    if not tasks:
        return da.zeros((0,), dtype=np.intp), da.zeros((0,), dtype=dtype)
    labels = [da.from_delayed(r[1], (q1 - q0,), dtype=np.intp) for r, q0, q1 in tasks]
    scores = [da.from_delayed(r[0], (q1 - q0,), dtype=dtype) for r, q0, q1 in tasks]
    return da.concatenate(labels), da.concatenate(scores)
