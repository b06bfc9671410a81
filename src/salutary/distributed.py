"""Salutary labeling of pools that live on a Dask cluster.

The pool can be a :class:`dask.array.Array`, a :class:`dask.dataframe.DataFrame`, a
path or glob of Parquet files, or an in-memory array. The influence factors (a few
``K x D`` matrices) are computed once on the client, sent once to the workers, and every
partition is scored where it lives. The top ``budget`` rows are found by a tree
reduction over per-partition candidates: only ``O(budget)`` rows per partition ever
leave a worker, never the pool.

Results equal the in-memory path exactly (indices, labels and the bits of the scores):

* Scores. BLAS gives results that depend on the shape of the matrix product (on this
  machine the bits of ``X @ W.T`` change with the number of rows), so the per-row
  influence is *not* independent of the chunking. The in-memory path scores the pool
  in chunks of ``chunk_size`` rows (``InfluenceFactors.best_labels``, 4096 by default)
  counted from its first row. Here every task scores exactly those chunks: a task
  takes the chunks that start in its partition and borrows the few rows it needs from
  the next partition(s) (a small slice, sent between workers). Rows excluded with
  ``exclude`` (already labeled) are removed before chunking, as the in-memory loop
  removes them from the pool.
* Ties. :func:`salutary.strategies.top_k` ranks ties by ``rng.permutation(n)`` over the
  whole pool. The client draws that same permutation (one rng call, as ``top_k`` does)
  and sends each partition its slice. This needs ``8 n`` bytes on the client, so it is
  limited to :data:`MAX_TIEBREAK_ROWS` rows (50 million, 400 MB).

Dask is imported only inside these functions: ``import salutary`` does not need it.
Install it with ``pip install 'salutary[dask]'``. Workers of a remote cluster need
``salutary`` installed too (they unpickle :class:`~salutary.InfluenceFactors`).
"""

from __future__ import annotations

import asyncio
import inspect
import math
import os
import socket
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import dask.array as da
    from distributed import Client

    from salutary.influence import InfluenceFactors

__all__ = [
    "CONNECT_TIMEOUT",
    "MAX_TIEBREAK_ROWS",
    "LabelRound",
    "as_dask_array",
    "distributed_top_k",
    "get_client",
    "label_rounds",
    "scatter_pool",
    "score_pool",
    "select_salutary",
]

#: Largest pool (rows still unlabeled) whose ties are broken exactly like ``top_k``.
MAX_TIEBREAK_ROWS = 50_000_000

#: Seconds :func:`get_client` waits for a scheduler.
CONNECT_TIMEOUT = 10.0

#: Target size of the partitions :func:`as_dask_array` makes from in-memory arrays.
_PARTITION_BYTES = 64 * 2**20

_INSTALL_HINT = "dask is not installed: pip install 'salutary[dask]'"


def _dask():
    """``(dask, dask.array)``, or an ImportError that says how to install them."""
    try:
        import dask
        import dask.array
    except ImportError as exc:  # pragma: no cover - exercised only without dask
        raise ImportError(_INSTALL_HINT) from exc
    return dask, dask.array


# ---------------------------------------------------------------------------- client


async def _identity(address: str, timeout: float) -> dict:
    from distributed.comm import connect

    async def ask() -> dict:
        comm = await connect(address, timeout=timeout)
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            comm.abort()

    # connect() does not bound its handshake by the timeout: a server that accepts the
    # connection but never answers would hang it.
    try:
        return await asyncio.wait_for(ask(), timeout)
    except asyncio.TimeoutError:
        raise TimeoutError(f"no answer within {timeout:g} s") from None


def _check_scheduler(address: str, timeout: float) -> None:
    """ConnectionError unless a dask scheduler answers at ``address`` (plain TCP).

    A refused TCP connection fails at once (``distributed`` itself would retry until
    the timeout), and probing before creating the ``Client`` keeps a failed attempt
    from leaving a half-built client behind (whose clean-up prints a traceback).
    """
    from distributed.comm.addressing import parse_address, parse_host_port

    def fail(reason: object) -> ConnectionError:
        return ConnectionError(f"cannot connect to dask scheduler {address!r}: {reason}")

    try:
        scheme, location = parse_address(address)
        if scheme in ("tcp", "tls"):
            host, port = parse_host_port(location)
    except ValueError as exc:
        raise fail(exc) from None
    if scheme in ("tcp", "tls"):
        try:
            socket.create_connection((host, port), timeout=timeout).close()
        except OSError as exc:
            raise fail(exc.strerror or exc) from None
    if scheme != "tcp":
        return  # other transports need their own settings (TLS certificates): let Client try
    with ThreadPoolExecutor(1) as pool:  # works whether or not an event loop is running
        try:
            reply = pool.submit(asyncio.run, _identity(address, timeout)).result()
        except Exception as exc:
            raise fail(exc) from None
    if not isinstance(reply, dict) or reply.get("type") != "Scheduler":
        raise fail("the server there is not a dask scheduler")


def get_client(
    scheduler: str | None = None,
    n_workers: int | None = None,
    *,
    timeout: float | None = None,
) -> Client:
    """A ``distributed.Client``: connected to ``scheduler``, or to a new local cluster.

    Parameters
    ----------
    scheduler : str or None
        Address of a running scheduler (``tcp://host:8786``). ``None`` starts a
        ``LocalCluster`` of worker processes listening on 127.0.0.1 only (one thread
        each, HTTP on a random loopback port), owned by the client: ``client.close()``
        stops it.
    n_workers : int or None
        Workers of the local cluster (default: one per core). Only without
        ``scheduler``.
    timeout : float or None
        Seconds to wait for the scheduler (default :data:`CONNECT_TIMEOUT`).

    Raises
    ------
    ConnectionError
        ``cannot connect to dask scheduler ADDRESS: reason``.
    ImportError
        When ``dask.distributed`` is not installed.
    """
    _dask()
    try:
        from distributed import Client
    except ImportError as exc:  # pragma: no cover
        raise ImportError(_INSTALL_HINT) from exc
    timeout = CONNECT_TIMEOUT if timeout is None else float(timeout)
    if scheduler is not None:
        if n_workers is not None:
            raise ValueError("n_workers applies to a local cluster, not to a scheduler address")
        _check_scheduler(scheduler, timeout)
        try:
            return Client(scheduler, timeout=timeout)
        except (OSError, TimeoutError, ValueError) as exc:
            raise ConnectionError(
                f"cannot connect to dask scheduler {scheduler!r}: {exc}"
            ) from None
    if n_workers is not None and n_workers < 1:
        raise ValueError(f"n_workers must be at least 1, got {n_workers}")
    return Client(
        n_workers=n_workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        # None would still host the scheduler's HTTP server, on 0.0.0.0:8787.
        dashboard_address="127.0.0.1:0",
    )


def _compute(obj: Any, client: Client | None) -> Any:
    if client is not None:
        return client.compute(obj, sync=True)
    dask, _ = _dask()
    return dask.compute(obj)[0]


def _broadcast(obj: Any, client: Client | None) -> Any:
    """``obj`` as one node of the graph: scattered to every worker, or one delayed key."""
    dask, _ = _dask()
    if client is not None:
        return client.scatter(obj, broadcast=True, hash=False)
    return dask.delayed(obj, name=f"shared-{type(obj).__name__}-{os.urandom(8).hex()}")


def _n_workers(client: Client | None) -> int:
    if client is None:
        return os.cpu_count() or 1
    return max(1, len(client.nthreads()))


# ----------------------------------------------------------------------------- pools


def default_chunk_size(factors: InfluenceFactors | None = None) -> int:
    """The ``chunk_size`` the in-memory ``best_labels`` scores with by default."""
    from salutary.influence import InfluenceFactors

    cls = type(factors) if factors is not None else InfluenceFactors
    param = inspect.signature(cls.best_labels).parameters.get("chunk_size")
    default = getattr(param, "default", None)
    if isinstance(default, int) and not isinstance(default, bool) and default > 0:
        return default
    return 4096


def _partition_rows(n_rows: int, row_bytes: int, chunk_size: int, n_workers: int) -> int:
    """Rows per partition: a multiple of ``chunk_size``, about 64 MB, two per worker."""
    by_bytes = max(1, _PARTITION_BYTES // max(1, row_bytes))
    by_workers = math.ceil(n_rows / (2 * n_workers)) if n_rows else 1
    rows = min(by_bytes, by_workers)
    return chunk_size * max(1, math.ceil(rows / chunk_size))


def as_dask_array(
    pool: Any,
    *,
    feature_columns: Sequence[str] | None = None,
    rows_per_partition: int | None = None,
    client: Client | None = None,
) -> da.Array:
    """The pool as a 2-D dask array: row partitions of known size, all columns together.

    Parameters
    ----------
    pool : dask Array, dask DataFrame, path or glob of Parquet files (or a list of
        them), or an in-memory array
        A DataFrame or Parquet files are read as ``feature_columns`` (default: all
        columns, which must be numeric); partitions stay as they are.
    feature_columns : sequence of str or None
        Columns to use (DataFrames and Parquet only).
    rows_per_partition : int or None
        Partition size for an in-memory array (default: a multiple of 4096 rows of
        about 64 MB).
    client : distributed.Client or None
        Where to count the rows of DataFrame partitions (the workers may see files the
        client does not); ``None``: dask's default scheduler.
    """
    _, da = _dask()
    import dask.dataframe as dd
    import pandas as pd

    if isinstance(pool, (str, os.PathLike)) or (
        isinstance(pool, (list, tuple)) and pool and isinstance(pool[0], (str, os.PathLike))
    ):
        paths = [os.fspath(p) for p in pool] if isinstance(pool, (list, tuple)) else os.fspath(pool)
        cols = list(feature_columns) if feature_columns is not None else None
        pool = dd.read_parquet(paths, columns=cols)
    if isinstance(pool, dd.DataFrame):
        frame = pool[list(feature_columns)] if feature_columns is not None else pool
        bad = [str(c) for c, t in frame.dtypes.items() if not pd.api.types.is_numeric_dtype(t)]
        if bad:
            raise TypeError(
                f"the pool has non-numeric feature columns {', '.join(map(repr, bad[:5]))}; "
                "encode them first or pass feature_columns"
            )
        lengths = _compute(frame.map_partitions(len), client)
        arr = frame.to_dask_array(lengths=[int(m) for m in lengths])
    elif isinstance(pool, da.Array):
        if feature_columns is not None:
            raise ValueError("feature_columns applies to DataFrames and Parquet files")
        arr = pool
    else:
        if feature_columns is not None:
            raise ValueError("feature_columns applies to DataFrames and Parquet files")
        return scatter_pool(pool, None, rows_per_partition=rows_per_partition)
    if arr.ndim != 2:
        raise ValueError(f"the pool must be 2-D, got {arr.ndim} dimensions")
    if len(arr.chunks[1]) > 1:
        arr = arr.rechunk({1: -1})
    return _known_rows(arr, client)


def _known_rows(arr: da.Array, client: Client | None) -> da.Array:
    """``arr`` with the row count of every block known (counted where the blocks are)."""
    if not any(math.isnan(c) for c in arr.chunks[0]):
        return arr
    _, da = _dask()
    if any(math.isnan(c) for c in arr.shape[1:]):
        raise ValueError("the pool's number of columns is unknown")
    blocks = arr.to_delayed(optimize_graph=False).ravel()
    dask, _ = _dask()
    sizes = _compute([dask.delayed(len)(b) for b in blocks], client)
    return da.concatenate(
        [
            da.from_delayed(b, (int(m), *arr.shape[1:]), dtype=arr.dtype)
            for b, m in zip(blocks, sizes, strict=True)
        ]
    )


def scatter_pool(
    X: np.ndarray, client: Client | None = None, *, rows_per_partition: int | None = None
) -> da.Array:
    """An in-memory pool as a dask array held by the cluster's workers.

    Partitions are multiples of the scoring chunk (so the first round needs no rows
    from a neighbouring partition), about 64 MB, and at least two per worker.

    Parameters
    ----------
    X : array of shape (n_pool, n_features)
    client : dask.distributed.Client, optional
        Workers to persist the array on; without one, a lazy array is returned.
    rows_per_partition : int, optional
        Overrides the partition size.

    Returns
    -------
    dask.array.Array
    """
    _, da = _dask()
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"the pool must be 2-D, got shape {X.shape}")
    rows = rows_per_partition or _partition_rows(
        X.shape[0], X.shape[1] * X.itemsize, default_chunk_size(), _n_workers(client)
    )
    arr = da.from_array(X, chunks=(max(1, rows), -1))
    return client.persist(arr) if client is not None else arr


def _sorted_exclude(exclude: Any, n: int) -> np.ndarray:
    if exclude is None:
        return np.zeros(0, dtype=np.int64)
    ex = np.unique(np.asarray(exclude, dtype=np.int64).ravel())
    if len(ex) and (ex[0] < 0 or ex[-1] >= n):
        raise IndexError(f"exclude has rows outside 0..{n - 1}")
    return ex


def _positions_to_rows(positions: np.ndarray, exclude: np.ndarray) -> np.ndarray:
    """Rows of the full pool at ``positions`` of the pool with ``exclude`` removed."""
    positions = np.asarray(positions, dtype=np.int64)
    if not len(exclude):
        return positions
    gaps = exclude - np.arange(len(exclude))  # remaining rows before each excluded row
    return positions + np.searchsorted(gaps, positions, side="right")


@dataclass
class _Task:
    """Rows ``[q0, q1)`` of the remaining pool: whole scoring chunks, from given blocks."""

    q0: int
    q1: int
    pieces: list[tuple[int, int, int]]  # (block, start, stop) within the block
    drop: np.ndarray  # excluded rows, as offsets into the concatenated pieces


def _plan(block_rows: Sequence[int], exclude: np.ndarray, chunk_size: int) -> list[_Task]:
    """Which rows every task scores, so that its chunks are the in-memory ones.

    Chunk ``c`` holds remaining rows ``[c * chunk_size, (c + 1) * chunk_size)``; it goes
    to the task of the block holding its first row, which borrows the rest of it from
    the blocks after.
    """
    starts = np.concatenate([[0], np.cumsum(block_rows, dtype=np.int64)])
    n_rem = int(starts[-1]) - len(exclude)
    rem_starts = starts - np.searchsorted(exclude, starts, side="left")
    tasks = []
    for b in range(len(block_rows)):
        c0 = -(-int(rem_starts[b]) // chunk_size)
        c1 = -(-int(rem_starts[b + 1]) // chunk_size)
        if c0 >= c1:
            continue
        q0, q1 = c0 * chunk_size, min(c1 * chunk_size, n_rem)
        g0, g_last = _positions_to_rows(np.array([q0, q1 - 1]), exclude)
        g1 = int(g_last) + 1
        pieces = []
        for blk in range(b, len(block_rows)):
            lo, hi = max(int(g0), int(starts[blk])), min(g1, int(starts[blk + 1]))
            if lo >= hi:
                if starts[blk] >= g1:
                    break
                continue
            pieces.append((blk, lo - int(starts[blk]), hi - int(starts[blk])))
        inside = exclude[(exclude >= g0) & (exclude < g1)]
        tasks.append(_Task(q0, q1, pieces, inside - int(g0)))
    return tasks


def _score_rows(
    factors: InfluenceFactors,
    pieces: list[np.ndarray],
    drop: np.ndarray,
    chunk_size: int,
    output: str,
) -> Any:
    """Score one task's rows (runs on a worker)."""
    X = pieces[0] if len(pieces) == 1 else np.concatenate(pieces, axis=0)
    if len(drop):
        keep = np.ones(X.shape[0], dtype=bool)
        keep[drop] = False
        X = X[keep]
    X = np.ascontiguousarray(X)
    if output == "influence":
        return factors.score(X, chunk_size=chunk_size)
    return factors.best_labels(X, chunk_size=chunk_size)


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
    _, da = _dask()
    if output not in ("best", "influence"):
        raise ValueError(f"output must be 'best' or 'influence', got {output!r}")
    arr = as_dask_array(pool, feature_columns=feature_columns, client=client)
    d = factors.theta_.shape[1] - (1 if factors.fit_intercept_ else 0)
    if arr.shape[1] != d:
        raise ValueError(f"the pool has {arr.shape[1]} features, the factors {d}")
    chunk_size = int(chunk_size or default_chunk_size(factors))
    exclude = _sorted_exclude(exclude, arr.shape[0])
    blocks = arr.to_delayed(optimize_graph=False).ravel()
    block_rows = arr.chunks[0]
    shared = _broadcast(factors, client)
    dask, _ = _dask()
    score = dask.delayed(_score_rows)  # fresh keys per call (see distributed_top_k)
    dtype = _score_dtype(arr.dtype)
    n_classes = len(factors.classes_)
    labels, scores, influence = [], [], []
    for t in _plan(block_rows, exclude, chunk_size):
        parts = [
            blocks[b] if (lo, hi) == (0, block_rows[b]) else blocks[b][lo:hi]
            for b, lo, hi in t.pieces
        ]
        result = score(shared, parts, t.drop, chunk_size, output)
        m = t.q1 - t.q0
        if output == "influence":
            influence.append(da.from_delayed(result, (m, n_classes), dtype=dtype))
        else:
            labels.append(da.from_delayed(result[0], (m,), dtype=np.intp))
            scores.append(da.from_delayed(result[1], (m,), dtype=dtype))
    if output == "influence":
        if not influence:
            return da.zeros((0, n_classes), dtype=dtype)
        return da.concatenate(influence, axis=0)
    if not labels:
        return da.zeros((0,), dtype=np.intp), da.zeros((0,), dtype=dtype)
    return da.concatenate(labels), da.concatenate(scores)


# ----------------------------------------------------------------------------- top-k

# A candidate set: (rows, labels, scores, tiebreak ranks), best first.
_Candidates = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _order(scores: np.ndarray, tiebreak: np.ndarray) -> np.ndarray:
    # The key of salutary.strategies.top_k: score descending (as float64), then the rank.
    return np.lexsort((tiebreak, -np.asarray(scores, dtype=np.float64)))


def _local_top_k(
    labels: np.ndarray, scores: np.ndarray, tiebreak: np.ndarray, offset: int, k: int
) -> _Candidates:
    """The ``k`` best rows of one partition (runs on a worker)."""
    labels, scores = np.asarray(labels), np.asarray(scores)
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
    dask, da = _dask()
    scores = da.asarray(scores)
    labels = da.asarray(labels)
    if scores.ndim != 1 or labels.shape != scores.shape:
        raise ValueError(
            f"labels and scores must be 1-D of one length: {labels.shape}, {scores.shape}"
        )
    scores = _known_rows(scores, client)
    n = int(scores.shape[0])
    if n > MAX_TIEBREAK_ROWS:
        raise ValueError(
            f"{n} rows: exact tie-breaking draws a permutation of all rows on the client, "
            f"supported up to MAX_TIEBREAK_ROWS = {MAX_TIEBREAK_ROWS}"
        )
    if split_every < 2:
        raise ValueError(f"split_every must be at least 2, got {split_every}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    tiebreak = rng.permutation(n)  # the very call top_k makes
    k = min(int(k), n)
    if k <= 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, np.zeros(0, dtype=labels.dtype), np.zeros(0, dtype=scores.dtype)
    labels = labels.rechunk(scores.chunks)
    lab_blocks = labels.to_delayed(optimize_graph=False).ravel()
    score_blocks = scores.to_delayed(optimize_graph=False).ravel()
    offsets = np.concatenate([[0], np.cumsum(scores.chunks[0], dtype=np.int64)])
    slices = [tiebreak[offsets[i] : offsets[i + 1]] for i in range(len(score_blocks))]
    if client is not None:
        # Straight to the workers, not through the graph. hash=False: equal slices of an
        # earlier call would get the same key, and the release of the earlier futures can
        # reach the scheduler after this scatter, leaving tasks with lost dependencies.
        slices = client.scatter(slices, hash=False)
    local = dask.delayed(_local_top_k)
    level = [
        local(lab_blocks[i], score_blocks[i], slices[i], int(offsets[i]), k)
        for i in range(len(score_blocks))
        if offsets[i + 1] > offsets[i]
    ]
    merge = dask.delayed(_merge)
    while len(level) > 1:
        level = [merge(level[i : i + split_every], k) for i in range(0, len(level), split_every)]
    rows, top_labels, top_scores, _ = _compute(level[0], client)
    return rows, top_labels, top_scores


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
        See :func:`score_pool`.
    split_every : int
        Fan-in of the top-k reduction tree.

    Returns
    -------
    (rows, labels, scores) : ndarrays
        Row indices into the full pool (best first), class values, and scores.
    """
    arr = as_dask_array(pool, feature_columns=feature_columns, client=client)
    exclude = _sorted_exclude(exclude, arr.shape[0])
    labels, scores = score_pool(factors, arr, exclude=exclude, chunk_size=chunk_size, client=client)
    positions, lab, sc = distributed_top_k(
        labels, scores, budget, seed, client=client, split_every=split_every
    )
    return _positions_to_rows(positions, exclude), factors.classes_[lab], sc


# ----------------------------------------------------------------------------- rounds


@dataclass
class LabelRound:
    """One round of :func:`label_rounds`: rows of the pool, their labels and scores."""

    round: int
    rows: np.ndarray
    labels: np.ndarray
    scores: np.ndarray


def _fetch_rows(arr: da.Array, rows: np.ndarray, client: Client | None) -> np.ndarray:
    """``arr[rows]`` in the order given, moving only those rows."""
    order = np.argsort(rows, kind="stable")
    got = np.asarray(_compute(arr[rows[order]], client))
    out = np.empty_like(got)
    out[order] = got
    return out


def label_rounds(
    model: object,
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
) -> tuple[list[LabelRound], object]:
    """The paper's salutary labeling (first-order top-b) with the pool on a cluster.

    Fits ``model`` (cloned) on the labeled rows; each round computes the influence
    factors on the client (they only involve the labeled and validation rows), picks
    the ``budget`` most salutary rows still unlabeled with :func:`select_salutary`,
    fetches those rows, adds them with their salutary labels and refits. With the same
    arguments it picks exactly the rows, labels and scores that
    ``SalutaryLabeler(model, budget=..., rounds=..., strategy="salutary",
    random_state=...)`` picks when the pool rows are its unlabeled rows (same seed
    derivation, same tie-breaking).

    Parameters
    ----------
    model : estimator
        A :class:`~salutary.model.LogisticModel` (or compatible); cloned, not changed.
    X_labeled, y_labeled : arrays
        The labeled rows (in the client's process).
    pool : dask array, dask DataFrame, Parquet path(s) or in-memory array
        The unlabeled rows; anything :func:`as_dask_array` takes, e.g. from
        :func:`scatter_pool`.
    X_val, y_val : arrays
        The labeled validation set the influence is measured on.
    budget, rounds : int
        Rows added per round, and rounds.
    random_state : int, optional
        Seeds the tie-breaking.
    client : dask.distributed.Client, optional
        Without one, Dask's default scheduler runs the graphs (a ``Client`` created
        earlier in the process, else the local threads).
    feature_columns : sequence of str, optional
        For a DataFrame or Parquet pool: the feature columns, in the model's order.
    callback : callable, optional
        Called with each :class:`LabelRound` as it ends (e.g. a progress bar).

    Returns
    -------
    rounds : list of LabelRound
        Per round: pool row indices, salutary labels and scores.
    model : estimator
        The final model, fitted on the labeled rows plus every labeled pool row.
    """
    from sklearn.base import clone
    from sklearn.utils.validation import check_random_state

    from salutary.influence import InfluenceFactors
    from salutary.loop import warn_small_validation
    from salutary.strategies import SalutaryLabeling

    warn_small_validation(len(y_val))
    arr = as_dask_array(pool, feature_columns=feature_columns, client=client)
    # SalutaryLabeler.fit derives its Generator this way; keep the two in step.
    rng = check_random_state(random_state)
    rng = np.random.default_rng(rng.randint(np.iinfo(np.int32).max))
    strategy = SalutaryLabeling()
    model = clone(model)
    X_train, y_train = np.asarray(X_labeled), np.asarray(y_labeled)
    model.fit(X_train, y_train)
    chosen = np.zeros(0, dtype=np.int64)
    done: list[LabelRound] = []
    for r in range(1, rounds + 1):
        factors = InfluenceFactors(solver=strategy.solver, tol=strategy.tol).fit(
            model, X_train, X_val, y_val
        )
        rows, labels, scores = select_salutary(
            factors, arr, budget, rng, client=client, exclude=chosen
        )
        X_train = np.vstack([X_train, _fetch_rows(arr, rows, client)])
        y_train = np.concatenate([y_train, labels.astype(y_train.dtype, copy=False)])
        chosen = np.concatenate([chosen, rows])
        model.fit(X_train, y_train)
        done.append(LabelRound(r, rows, labels, np.asarray(scores)))
        if callback is not None:
            callback(done[-1])
    return done, model
