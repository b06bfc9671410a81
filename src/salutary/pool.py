"""The unlabeled pool as strategies see it: one small interface, two engines.

A strategy never indexes the pool's array directly. It asks the pool for

* the best rows by a per-row score (:meth:`Pool.top_k`, with a :class:`RowScorer`),
* the features of a few rows (:meth:`Pool.take`, e.g. a shortlist),
* the pool without some rows (:meth:`Pool.without`), and, for the strategies that need
  every row at once (BADGE, CoreSet), the whole array (:meth:`Pool.to_numpy`).

:class:`ArrayPool` holds an in-memory array; ``salutary.distributed.DaskPool`` holds a
Dask array on a cluster, scores partitions where they live and gathers only the best
rows. Scores are computed in chunks of :data:`~salutary._chunks.CHUNK_SIZE` rows counted
from the first remaining row, and ties are broken by one permutation of all remaining
rows (:func:`top_k`), so both engines pick the same rows, bit for bit.
"""

from __future__ import annotations

import ctypes
import mmap
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from salutary._chunks import CHUNK_SIZE, map_chunks
from salutary._sparse import is_sparse

__all__ = ["ArrayPool", "Pool", "RowScorer", "TopK", "as_pool", "top_k"]


def top_k(scores: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of the ``k`` largest scores, best first; ties broken at random by ``rng``.

    Parameters
    ----------
    scores : array of shape (n,)
    k : int
        How many; at most ``n`` are returned.
    rng : numpy.random.Generator
        Orders equal scores: one ``rng.permutation(n)``, drawn even when ``k`` is 0.

    Returns
    -------
    ndarray of int
        ``min(k, n)`` indices into ``scores``.
    """
    scores = np.asarray(scores, dtype=np.float64)
    k = min(int(k), scores.shape[0])
    tiebreak = rng.permutation(scores.shape[0])
    if k == 0:
        return np.zeros(0, dtype=np.intp)
    # Only rows scoring at least the k-th largest can be picked (ties at that value
    # included), so sort those alone: O(n) instead of a full O(n log n) sort.
    neg = -scores
    kth = np.partition(neg, k - 1)[k - 1]  # NaN sorts last, as in the lexsort below
    cand = np.arange(neg.shape[0]) if np.isnan(kth) else np.flatnonzero(neg <= kth)
    # lexsort sorts by the last key first: score descending, then the random rank.
    order = cand[np.lexsort((tiebreak[cand], neg[cand]))]
    return order[:k]


class RowScorer(ABC):
    """A score (and optionally a label) for every row of the pool, chunk by chunk.

    Subclasses implement :meth:`score_chunk`. Calling the scorer on rows whose first
    row starts a chunk applies it to every chunk of :attr:`chunk_size` rows, each
    with a single-threaded BLAS (:func:`salutary._chunks.map_chunks`), so a row's
    score does not depend on how the pool is partitioned or on the thread count.
    Scorers travel to Dask workers: keep them picklable (no lambdas, no open files).
    """

    #: Rows per chunk (the alignment both engines keep).
    chunk_size: int = CHUNK_SIZE
    #: Whether :meth:`score_chunk` gives labels (``False``: it gives None).
    has_labels: ClassVar[bool] = True

    @abstractmethod
    def score_chunk(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """``(scores, labels)`` of the rows of one chunk (``labels`` may be None)."""

    def __call__(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """``(scores, labels)`` of every row of ``X`` (its first row starts a chunk)."""
        n = X.shape[0]
        parts: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}

        def work(start: int, chunk: np.ndarray, _: None) -> None:
            parts[start] = self.score_chunk(chunk)

        map_chunks(X, self.chunk_size, work, lambda: None)
        if not parts:
            return np.zeros(0), None
        ordered = [parts[s] for s in sorted(parts)]
        scores = np.concatenate([s for s, _ in ordered])
        labels = [lab for _, lab in ordered]
        if any(lab is None for lab in labels):
            return scores[:n], None
        return scores[:n], np.concatenate([lab for lab in labels if lab is not None])


class TopK:
    """The best rows of a pool by a :class:`RowScorer`, best first.

    Attributes
    ----------
    indices : ndarray of int
        Positions in the pool.
    scores : ndarray
        Their scores (``+inf`` for rows put first with ``first``).
    labels : ndarray or None
        Their labels from the scorer.
    """

    __slots__ = ("indices", "labels", "scores")

    def __init__(self, indices: np.ndarray, scores: np.ndarray, labels: np.ndarray | None):
        self.indices = indices
        self.scores = scores
        self.labels = labels


class Pool(ABC):
    """The rows still unlabeled, numbered ``0 .. n_rows - 1`` in their original order."""

    @property
    @abstractmethod
    def n_rows(self) -> int:
        """Rows in the pool."""

    @property
    @abstractmethod
    def n_features(self) -> int:
        """Columns of every row."""

    @abstractmethod
    def top_k(
        self,
        scorer: RowScorer,
        k: int,
        rng: np.random.Generator,
        *,
        first: np.ndarray | None = None,
    ) -> TopK:
        """The ``k`` best rows by ``scorer``, ties broken exactly as :func:`top_k`.

        Parameters
        ----------
        scorer : RowScorer
        k : int
        rng : numpy.random.Generator
            Advanced by one ``permutation(n_rows)``, as :func:`top_k` advances it.
        first : ndarray of int, optional
            Rows that rank before every other row (as if they scored ``+inf``).
        """

    @abstractmethod
    def take(self, rows: np.ndarray) -> np.ndarray:
        """Features of ``rows`` (positions in the pool), in the order given."""

    @abstractmethod
    def without(self, rows: np.ndarray) -> Pool:
        """A new pool of the other rows, in their order (renumbered); this one is unchanged."""

    @abstractmethod
    def remove(self, rows: np.ndarray) -> None:
        """Remove ``rows`` from this pool; the rest keep their order (and are renumbered)."""

    @abstractmethod
    def to_numpy(self) -> Any:
        """Every row, as one in-memory array or sparse matrix (for strategies that need
        all at once)."""

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_rows, n_features)``."""
        return self.n_rows, self.n_features

    def __len__(self) -> int:
        return self.n_rows


class ArrayPool(Pool):
    """A pool held in memory as a 2-D array (or a CSR sparse matrix).

    The array is used as given (not copied) until rows are removed; :meth:`remove`
    then makes one private copy and later removals compact it in place (a fresh copy
    per round would page-fault a whole new pool every round). A sparse matrix is
    copied without the removed rows instead.

    Parameters
    ----------
    X : ndarray or sparse matrix of shape (n_rows, n_features)
    """

    def __init__(self, X: Any) -> None:
        self._X = X.tocsr() if is_sparse(X) else X
        self._n = X.shape[0]
        self._owned = False

    @property
    def n_rows(self) -> int:
        return self._n

    @property
    def n_features(self) -> int:
        return int(self._X.shape[1])

    def to_numpy(self) -> Any:
        """Every row: a view of the array, or the sparse matrix itself."""
        return self._X if is_sparse(self._X) else self._X[: self._n]

    def top_k(
        self,
        scorer: RowScorer,
        k: int,
        rng: np.random.Generator,
        *,
        first: np.ndarray | None = None,
    ) -> TopK:
        scores, labels = scorer(self.to_numpy())
        if first is not None and len(first):
            scores = np.array(scores, copy=True)
            scores[np.asarray(first, dtype=np.intp)] = np.inf
        idx = top_k(scores, k, rng)
        return TopK(idx, scores[idx], None if labels is None else labels[idx])

    def take(self, rows: np.ndarray) -> Any:
        return self.to_numpy()[np.asarray(rows, dtype=np.intp)]

    def without(self, rows: np.ndarray) -> ArrayPool:
        X = self.to_numpy()
        if is_sparse(X):
            return ArrayPool(X[_keep(X.shape[0], rows)])
        pool = ArrayPool(private_copy_without(X, rows))
        pool._owned = True
        return pool

    def remove(self, rows: np.ndarray) -> None:
        """Compacts the array in place once this pool owns it (the first removal makes a
        private copy; the caller's array is never changed)."""
        rows = np.asarray(rows, dtype=np.intp)
        if is_sparse(self._X):
            self._X = self._X[_keep(self._n, rows)]
            self._n = self._X.shape[0]
            return
        if self._owned:
            drop_rows(self._X, self._n, rows)
        else:
            self._X, self._owned = private_copy_without(self.to_numpy(), rows), True
        self._n -= len(np.unique(rows))


def as_pool(pool: Any) -> Pool:
    """``pool`` itself, or an :class:`ArrayPool` of an array or sparse matrix."""
    if isinstance(pool, Pool):
        return pool
    return ArrayPool(pool if is_sparse(pool) else np.asarray(pool))


def _keep(n: int, rows: np.ndarray) -> np.ndarray:
    keep = np.ones(n, dtype=bool)
    keep[rows] = False
    return keep


def drop_rows(X: np.ndarray, n: int, rows: np.ndarray) -> None:
    """Remove ``rows`` from the first ``n`` rows of C-contiguous ``X`` in place, in order.

    Rows after each removed one slide up with one ``memmove`` per gap: a round costs a
    pass over the pool at memory speed, with no allocation.
    """
    if not X.flags.c_contiguous:
        raise ValueError("drop_rows needs a C-contiguous array")
    if len(rows) == 0:  # a strategy may pick nothing (salutary-newton abstaining)
        return
    drop = np.sort(rows)
    ends = np.append(drop[1:], n)
    row = X.strides[0]
    base = X.ctypes.data
    for k, (gap, end) in enumerate(zip(drop.tolist(), ends.tolist(), strict=True)):
        count = end - gap - 1
        if count > 0:
            ctypes.memmove(base + (gap - k) * row, base + (gap + 1) * row, count * row)


def private_copy_without(
    X: np.ndarray, rows: np.ndarray, *, min_bytes: int = 64 * 2**20
) -> np.ndarray:
    """A C-contiguous copy of ``X`` without ``rows`` (``np.delete``), owned by the caller.

    A copy of ``min_bytes`` or more goes to an anonymous mapping populated up front
    (``MAP_POPULATE``, Linux): a fresh NumPy array takes a page fault per page on first
    touch, which cost up to 7 s for a 3 GB pool on our VM against about 0.9 s populated
    in bulk (BENCHMARKS.md). Elsewhere, and for small pools, ``np.delete``.
    """
    drop = np.unique(np.asarray(rows, dtype=np.intp))
    shape = (X.shape[0] - len(drop), *X.shape[1:])
    nbytes = int(np.prod(shape)) * X.dtype.itemsize
    populate = getattr(mmap, "MAP_POPULATE", None)
    if populate is None or nbytes < min_bytes or nbytes == 0:
        return np.ascontiguousarray(np.delete(X, drop, axis=0))
    buf = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | populate)
    out = np.frombuffer(buf, dtype=X.dtype).reshape(shape)  # keeps ``buf`` alive
    # One block copy per run of kept rows (np.compress into ``out`` was 8x slower).
    src = dst = 0
    for stop in [*drop.tolist(), X.shape[0]]:
        out[dst : dst + stop - src] = X[src:stop]
        dst += stop - src
        src = stop + 1
    return out
