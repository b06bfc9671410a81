"""Row chunks: the unit every per-row score of the pool is computed in.

BLAS gives results that depend on the shape of a product (and, for a matrix-vector
product, on the number of threads), so a row's score is reproducible only if it is
computed in the same chunk, with the same number of BLAS threads, every time. Every
per-row score of the pool is therefore computed chunk by chunk: chunks of
:data:`CHUNK_SIZE` rows counted from the first row, each product with a single-threaded
BLAS; several chunks run at once in threads. The in-memory pool and the Dask pool both
go through :func:`map_chunks`, so the same row gets the same bits on either engine.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np
from threadpoolctl import ThreadpoolController

__all__ = ["CHUNK_SIZE", "map_chunks", "n_threads"]

#: Rows per chunk: bounds the scratch memory of a product and fixes its shape.
CHUNK_SIZE = 4096

State = TypeVar("State")


@functools.cache
def _blas() -> ThreadpoolController:
    """The BLAS libraries loaded (NumPy's and SciPy's, loaded when salutary is imported).

    Looked up once: ``threadpool_limits`` scans the process's libraries on every call,
    about 3 ms, which made scoring a 50,000-row pool a fifth slower.
    """
    return ThreadpoolController().select(user_api="blas")


def n_threads(n_jobs: int | None, n_chunks: int) -> int:
    """Threads for ``n_chunks`` chunks: ``n_jobs`` (``None``: as many as BLAS would use
    now, so ``threadpool_limits(1)`` makes scoring serial too; ``-1``: all CPUs)."""
    if n_chunks < 2:
        return 1
    n = n_jobs
    if n is None:
        n = max((lib.num_threads for lib in _blas().lib_controllers), default=1)
    elif n < 0:
        n = os.cpu_count() or 1
    return max(1, min(int(n), n_chunks))


def map_chunks(
    X: np.ndarray,
    chunk_size: int,
    work: Callable[[int, np.ndarray, State], None],
    state: Callable[[], State],
    *,
    n_jobs: int | None = None,
) -> None:
    """``work(start, X[start:start + chunk_size], s)`` for every chunk of ``X``.

    With several threads each takes every n-th chunk with a state ``s = state()`` of its
    own (e.g. a scratch buffer). The products run with a single-threaded BLAS, also with
    one thread: the element-wise steps after the product then run in parallel too, which
    a multi-threaded product alone leaves serial, and a matrix-vector product (one logit)
    gives the bits it gives on a one-thread Dask worker. Floating-point warnings are
    silenced: callers check their results for non-finite values.

    Parameters
    ----------
    X : ndarray
        Rows to map; its first row starts a chunk.
    chunk_size : int
        Rows per chunk.
    work : callable
        Computes one chunk, writing its result where the caller wants it.
    state : callable
        Makes the per-thread state passed to ``work``.
    n_jobs : int or None
        See :func:`n_threads`.
    """
    chunk_size = max(int(chunk_size), 1)
    starts = range(0, X.shape[0], chunk_size)
    threads = n_threads(n_jobs, len(starts))

    def run(first: int) -> None:
        s = state()
        # errstate is per thread, so it is set here.
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            for start in starts[first::threads]:
                work(start, X[start : start + chunk_size], s)

    with _blas().limit(limits=1):
        if threads == 1:
            run(0)
            return
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(run, range(threads)))  # list(): re-raise a worker's error
