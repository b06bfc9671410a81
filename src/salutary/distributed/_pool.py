"""The pool on a Dask cluster: the Dask engine of the one labeling loop."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from salutary.distributed._arrays import (
    as_dask_array,
    fetch_rows,
    positions_to_rows,
    sorted_exclude,
)
from salutary.distributed._scoring import score_tasks, top_k_of_tasks
from salutary.influence import InfluenceFactors
from salutary.loop import LabelRound, label_pool
from salutary.pool import Pool, RowScorer, TopK
from salutary.strategies import BestLabels, SalutaryLabeling, Strategy

if TYPE_CHECKING:
    import dask.array as da
    from distributed import Client

__all__ = ["DaskPool", "label_rounds", "select_salutary"]


class DaskPool(Pool):
    """A pool held by the workers of a Dask cluster.

    Every strategy that ranks rows by a per-row score runs on it unchanged: each task
    scores whole chunks of the remaining rows on the worker that holds them (with the
    scorer sent once), keeps its ``k`` best, and the candidates are merged up a tree;
    only the best rows, and the features of the rows a strategy asks for
    (:meth:`take`, e.g. a shortlist), come back to the client. Rows removed are only
    recorded (an exclusion list), never moved. The picks, labels and scores equal those
    of :class:`~salutary.pool.ArrayPool` on the same rows, bit for bit, when the
    workers run the same NumPy and BLAS build on the same kind of CPU.

    Parameters
    ----------
    pool : dask Array, dask DataFrame, Parquet path(s) or in-memory array
        Anything :func:`as_dask_array` takes, e.g. from :func:`scatter_pool`.
    client : distributed.Client or None
        The cluster; ``None``: Dask's default scheduler.
    feature_columns : sequence of str or None
        For a DataFrame or Parquet pool: the feature columns, in the model's order.
    exclude : array-like of int or None
        Rows of ``pool`` that are not in the pool (e.g. already labeled).
    split_every : int, default=8
        Fan-in of the top-k reduction tree.
    """

    def __init__(
        self,
        pool: Any,
        client: Client | None = None,
        *,
        feature_columns: Sequence[str] | None = None,
        exclude: Any = None,
        split_every: int = 8,
    ) -> None:
        self.array: da.Array = as_dask_array(pool, feature_columns=feature_columns, client=client)
        self.client = client
        self.split_every = split_every
        self.excluded = sorted_exclude(exclude, self.array.shape[0])

    @property
    def n_rows(self) -> int:
        return int(self.array.shape[0]) - len(self.excluded)

    @property
    def n_features(self) -> int:
        return int(self.array.shape[1])

    def rows(self, positions: np.ndarray) -> np.ndarray:
        """Rows of the underlying array at ``positions`` of this pool."""
        return positions_to_rows(np.asarray(positions, dtype=np.int64), self.excluded)

    def top_k(
        self,
        scorer: RowScorer,
        k: int,
        rng: np.random.Generator,
        *,
        first: np.ndarray | None = None,
    ) -> TopK:
        tasks = score_tasks(self.array, self.excluded, scorer, scorer.chunk_size, self.client)
        positions, labels, scores = top_k_of_tasks(
            tasks, self.n_rows, k, rng, first=first, client=self.client,
            split_every=self.split_every,
        )  # fmt: skip
        positions = np.asarray(positions, dtype=np.intp)
        return TopK(positions, scores, labels if scorer.has_labels else None)

    def take(self, rows: np.ndarray) -> np.ndarray:
        return fetch_rows(self.array, self.rows(rows), self.client)

    def without(self, rows: np.ndarray) -> DaskPool:
        pool = DaskPool.__new__(DaskPool)
        pool.array, pool.client, pool.split_every = self.array, self.client, self.split_every
        pool.excluded = np.union1d(self.excluded, self.rows(rows))
        return pool

    def remove(self, rows: np.ndarray) -> None:
        self.excluded = np.union1d(self.excluded, self.rows(rows))

    def to_numpy(self) -> np.ndarray:
        raise ValueError(
            "this strategy needs every pool row in memory at once; it cannot run on a "
            "Dask pool (use the in-memory engine)"
        )


def select_salutary(
    factors: InfluenceFactors,
    pool: Any,
    budget: int,
    seed: int | np.random.Generator | None,
    client: Client | None = None,
    *,
    feature_columns: Sequence[str] | None = None,
    exclude: Any = None,
    chunk_size: int | None = None,
    split_every: int = 8,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``budget`` most salutary pool rows, their salutary labels and scores.

    The same result as, in memory::

        rest = np.setdiff1d(np.arange(len(X_pool)), exclude)
        labels, scores = factors.best_labels(X_pool[rest])
        idx = top_k(scores, budget, np.random.default_rng(seed))
        rest[idx], factors.classes_[labels[idx]], scores[idx]

    bit for bit (``seed`` may be a Generator, advanced as ``top_k`` advances it).

    Parameters
    ----------
    factors : InfluenceFactors
    pool : see :func:`as_dask_array`
    budget : int
    seed : int, Generator or None
    client : distributed.Client or None
    feature_columns : sequence of str or None
    exclude : array-like of int or None
        Rows not to consider (already labeled).
    chunk_size : int or None
        Rows per matrix product (default 4096, the in-memory default).
    split_every : int
        Fan-in of the top-k reduction tree.

    Returns
    -------
    (rows, labels, scores) : ndarrays
        Row indices into the full pool (best first), class values, and scores.
    """
    dask_pool = DaskPool(
        pool, client, feature_columns=feature_columns, exclude=exclude, split_every=split_every
    )
    scorer = BestLabels(factors)
    if chunk_size:
        scorer.chunk_size = int(chunk_size)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    best = dask_pool.top_k(scorer, budget, rng)
    assert best.labels is not None  # BestLabels labels every row
    return dask_pool.rows(best.indices), factors.classes_[best.labels], best.scores


def label_rounds(
    model: Any,
    X_labeled: np.ndarray,
    y_labeled: np.ndarray,
    pool: Any,
    X_val: np.ndarray,
    y_val: np.ndarray,
    *,
    budget: int,
    rounds: int,
    random_state: int | None = None,
    client: Client | None = None,
    feature_columns: Sequence[str] | None = None,
    callback: Callable[[LabelRound], None] | None = None,
    strategy: str | Strategy = SalutaryLabeling.name,
) -> tuple[list[LabelRound], Any]:
    """Oracle-free labeling with the pool on a cluster: :func:`salutary.loop.label_pool`
    on a :class:`DaskPool`.

    With the same arguments it picks exactly the rows, labels and scores that
    ``SalutaryLabeler(model, budget=..., rounds=..., strategy=..., random_state=...)``
    picks when the pool rows are its unlabeled rows.

    Parameters
    ----------
    model : estimator
        A :class:`~salutary.model.LogisticModel` (or compatible); cloned, not changed.
    X_labeled, y_labeled : arrays
        The labeled rows (in the client's process).
    pool : dask array, dask DataFrame, Parquet path(s), in-memory array or DaskPool
        The unlabeled rows.
    X_val, y_val : arrays
        The labeled validation set.
    budget, rounds : int
        Rows added per round, and rounds.
    random_state : int, optional
        Seeds the tie-breaking.
    client : dask.distributed.Client, optional
        Without one, Dask's default scheduler runs the graphs.
    feature_columns : sequence of str, optional
        For a DataFrame or Parquet pool: the feature columns, in the model's order.
    callback : callable, optional
        Called with each :class:`LabelRound` as it ends (rounds 1..R).
    strategy : str or Strategy, default="salutary"
        Any oracle-free strategy (the default is the paper's, this function's original
        method; ``SalutaryLabeler`` and ``salutary label`` default to
        ``salutary-newton``).

    Returns
    -------
    rounds : list of LabelRound
        Per round: pool row indices, labels and scores.
    model : estimator
        The final model, fitted on the labeled rows plus every labeled pool row.
    """
    dask_pool = pool if isinstance(pool, DaskPool) else DaskPool(
        pool, client, feature_columns=feature_columns
    )  # fmt: skip

    def report(done: LabelRound) -> None:
        if done.round > 0 and callback is not None:
            callback(done)

    return label_pool(
        model, X_labeled, y_labeled, dask_pool, X_val, y_val, strategy=strategy,
        budget=budget, rounds=rounds, random_state=random_state, callback=report,
    )  # fmt: skip
