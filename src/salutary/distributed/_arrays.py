"""Pools as Dask arrays: making them, excluding rows, and planning chunk-aligned tasks."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from salutary._chunks import CHUNK_SIZE
from salutary.distributed._client import compute, dask_module, n_workers

if TYPE_CHECKING:
    import dask.array as da
    from distributed import Client

__all__ = [
    "Task",
    "as_dask_array",
    "fetch_rows",
    "known_rows",
    "plan",
    "positions_to_rows",
    "scatter_pool",
    "sorted_exclude",
]

#: Target size of the partitions :func:`as_dask_array` makes from in-memory arrays.
_PARTITION_BYTES = 64 * 2**20


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
    da = dask_module("dask.array")
    dd = dask_module("dask.dataframe")
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
        lengths = compute(frame.map_partitions(len), client)
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
    return known_rows(arr, client)


def known_rows(arr: da.Array, client: Client | None) -> da.Array:
    """``arr`` with the row count of every block known (counted where the blocks are)."""
    if not any(math.isnan(c) for c in arr.chunks[0]):
        return arr
    da = dask_module("dask.array")
    if any(math.isnan(c) for c in arr.shape[1:]):
        raise ValueError("the pool's number of columns is unknown")
    blocks = arr.to_delayed(optimize_graph=False).ravel()
    delayed = dask_module("dask").delayed
    sizes = compute([delayed(len)(b) for b in blocks], client)
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
    da = dask_module("dask.array")
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"the pool must be 2-D, got shape {X.shape}")
    rows = rows_per_partition or _partition_rows(
        X.shape[0], X.shape[1] * X.itemsize, CHUNK_SIZE, n_workers(client)
    )
    arr = da.from_array(X, chunks=(max(1, rows), -1))
    return client.persist(arr) if client is not None else arr


def sorted_exclude(exclude: Any, n: int) -> np.ndarray:
    """``exclude`` as sorted unique row numbers of a pool of ``n`` rows."""
    if exclude is None:
        return np.zeros(0, dtype=np.int64)
    ex = np.unique(np.asarray(exclude, dtype=np.int64).ravel())
    if len(ex) and (ex[0] < 0 or ex[-1] >= n):
        raise IndexError(f"exclude has rows outside 0..{n - 1}")
    return ex


def positions_to_rows(positions: np.ndarray, exclude: np.ndarray) -> np.ndarray:
    """Rows of the full pool at ``positions`` of the pool with ``exclude`` removed."""
    positions = np.asarray(positions, dtype=np.int64)
    if not len(exclude):
        return positions
    gaps = exclude - np.arange(len(exclude))  # remaining rows before each excluded row
    return positions + np.searchsorted(gaps, positions, side="right")


@dataclass
class Task:
    """Rows ``[q0, q1)`` of the remaining pool: whole scoring chunks, from given blocks."""

    q0: int
    q1: int
    pieces: list[tuple[int, int, int]]  # (block, start, stop) within the block
    drop: np.ndarray  # excluded rows, as offsets into the concatenated pieces


def plan(block_rows: Sequence[int], exclude: np.ndarray, chunk_size: int) -> list[Task]:
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
        g0, g_last = positions_to_rows(np.array([q0, q1 - 1]), exclude)
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
        tasks.append(Task(q0, q1, pieces, inside - int(g0)))
    return tasks


def fetch_rows(arr: da.Array, rows: np.ndarray, client: Client | None) -> np.ndarray:
    """``arr[rows]`` in the order given, moving only those rows."""
    order = np.argsort(rows, kind="stable")
    got = np.asarray(compute(arr[rows[order]], client))
    out = np.empty_like(got)
    out[order] = got
    return out
