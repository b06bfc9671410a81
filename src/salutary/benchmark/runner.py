"""The benchmark grid: one run of a (dataset, protocol, strategy, seed), and many in parallel
(in processes of this machine, or on the workers of a Dask cluster)."""

from __future__ import annotations

import copy
import functools
import hashlib
import threading
import time
import traceback
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from salutary._optional import import_optional
from salutary.benchmark.protocols import PROTOCOLS, RunKey
from salutary.benchmark.store import ResultStore
from salutary.datasets import Dataset, load_dataset
from salutary.experiment import run_split
from salutary.model import LogisticModel
from salutary.strategies import parse_strategy, strategy_class

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["GridOutcome", "grid", "run_grid", "run_one"]


class _SharedFirstFit(LogisticModel):
    """``LogisticModel`` whose first (cold) fit is shared by runs in the same process.

    All strategies of one (dataset, protocol, seed) start from the same initial labeled
    set, so they fit the same initial model; on raw MNIST under ``fair`` that fit is
    about a third of a random run. A cold fit is looked up by a digest of its inputs
    and parameters; a hit copies the stored fitted state (weights, classes, the CG
    preconditioner), which is what the fit would have computed, so the runs stay bit
    for bit the same. Warm refits are never shared.
    """

    _store: ClassVar[OrderedDict[str, dict]] = OrderedDict()
    _capacity: ClassVar[int] = 2
    # A Dask worker may run several runs at once on threads of one process.
    _lock: ClassVar[threading.Lock] = threading.Lock()
    hits: ClassVar[int] = 0

    def fit(self, X, y, sample_weight=None):
        if hasattr(self, "coef_") or sample_weight is not None:
            return super().fit(X, y, sample_weight)
        X_c, y_c = np.ascontiguousarray(X), np.asarray(y)
        digest = hashlib.blake2b(repr(sorted(self.get_params().items())).encode())
        digest.update(repr((X_c.shape, X_c.dtype.str, y_c.dtype.str)).encode())
        digest.update(X_c.view(np.uint8).ravel().data if X_c.size else b"")
        digest.update(np.ascontiguousarray(y_c).tobytes() if y_c.dtype != object else
                      repr(y_c.tolist()).encode())  # fmt: skip
        key = digest.hexdigest()
        with self._lock:
            state = self._store.get(key)
            if state is not None:
                type(self).hits += 1
                self._store.move_to_end(key)
        if state is not None:
            self.__dict__.update(copy.deepcopy(state))
            return self
        super().fit(X, y)
        fitted = {k: v for k, v in self.__dict__.items() if k.endswith("_") or k.startswith("_")}
        with self._lock:
            self._store[key] = copy.deepcopy(fitted)
            while len(self._store) > self._capacity:
                self._store.popitem(last=False)
        return self


@functools.lru_cache(maxsize=4)
def _dataset(name: str) -> Dataset:
    return load_dataset(name)


def run_one(key: RunKey, data: Dataset | None = None) -> pd.DataFrame:
    """Run one (dataset, protocol, strategy, seed) and return its per-round frame.

    The split depends only on the dataset, protocol and seed, so all strategies of a
    seed start from the same labeled set and are compared on the same test set.

    Parameters
    ----------
    key : RunKey
    data : Dataset, optional
        The dataset ``key.dataset`` names, already in memory (e.g. a user's file read by
        ``salutary bench --data``); by default it is loaded from the registry by name.

    Returns
    -------
    pandas.DataFrame
        One row per round.
    """
    protocol = PROTOCOLS[key.protocol]
    if data is None:
        data = _dataset(key.dataset)
    elif data.name != key.dataset:
        raise ValueError(f"run {key} was given the dataset {data.name!r}")
    t0 = time.perf_counter()
    split = protocol.make_split(data.X, data.y, key.seed)
    budget = protocol.budget_for(len(data.y))
    result = run_split(
        split,
        key.strategy,
        seed=key.seed,
        budget=budget,
        rounds=protocol.rounds,
        l2=protocol.l2,
        train_on_validation=protocol.train_on_validation,
        model=_SharedFirstFit(**protocol.model_params, warm_start=True),
    )
    frame = result.to_frame()
    frame.insert(0, "dataset", key.dataset)
    frame.insert(1, "protocol", key.protocol)
    frame["budget"] = budget
    frame["n_val"] = len(split.y_val)
    frame["n_pool"] = len(split.y_pool)
    frame["oracle"] = strategy_class(key.strategy).requires_oracle
    frame["run_seconds"] = time.perf_counter() - t0
    return frame


# Status of a run another process stored or claimed (a string: it crosses process pools).
_TAKEN = "\0taken"


class _OneBlasThread:
    """One BLAS thread while any run of this process is running, as a context manager.

    Runs are parallel across processes (or Dask workers) instead, and one thread gives
    the same bits in every engine. ``threadpool_limits`` sets a limit for the whole
    process, so runs on several threads of one process (a Dask worker with more than
    one thread) share one limit, set by the first and lifted by the last.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._limit: Any = None

    @contextmanager
    def __call__(self) -> Iterator[None]:
        with self._lock:
            if self._users == 0:
                self._limit = threadpool_limits(1)
            self._users += 1
        try:
            yield
        finally:
            with self._lock:
                self._users -= 1
                if self._users == 0:
                    self._limit.restore_original_limits()


_one_blas_thread = _OneBlasThread()


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}"


# The datasets given to run_grid, in a worker process of its pool (set once per process).
_given: dict[str, Dataset] = {}


def _receive(data: Mapping[str, Dataset]) -> None:
    """Initializer of a worker process: keep the datasets given to :func:`run_grid`."""
    _given.clear()
    _given.update(data)


def _worker(key: RunKey, store_path: str, data: Dataset | None = None) -> tuple[RunKey, str | None]:
    """Claim, run and store one key: ``(key, None)``, ``(key, _TAKEN)`` or ``(key, error)``.

    ``data``: the dataset of the key, if given to :func:`run_grid`; in a worker process
    of its pool, the datasets it received are looked up by name.
    """
    store = ResultStore(store_path)
    if not store.claim(key):
        return key, _TAKEN
    try:
        with _one_blas_thread():
            frame = run_one(key, data if data is not None else _given.get(key.dataset))
        store.write(key, frame)
        return key, None
    except Exception as exc:  # reported by the parent, the grid goes on
        return key, _error(exc)
    finally:
        store.release(key)


def _cluster_task(
    key: RunKey, data: Dataset | None = None
) -> tuple[pd.DataFrame | None, str | None]:
    """Run one key on a Dask worker: ``(frame, None)`` or ``(None, error)``.

    The frame goes back to the client, which stores it: the workers need neither the
    store nor a file system shared with the client. ``data``: the key's dataset when
    it was given to :func:`run_grid` (scattered to the workers once).
    """
    try:
        with _one_blas_thread():
            return run_one(key, data), None
    except Exception as exc:  # reported by the client, the grid goes on
        return None, _error(exc)


def _run_on_cluster(
    store: ResultStore,
    todo: Sequence[RunKey],
    client: Client,
    finish: Callable[[RunKey, str | None], None],
    data: Mapping[str, Dataset],
) -> None:
    """Map ``todo`` over the workers of ``client``; store each result as it arrives.

    Runs are claimed (by this process) just before they are submitted, and only about
    two per worker thread are in flight at a time, so other processes working on the
    same store still get their share and an interrupt gives back only the runs in flight.
    """
    distributed = import_optional("distributed", what="the Dask engine")
    window = 2 * max(1, sum(client.nthreads().values()))
    pending = iter(todo)
    # Each given dataset goes to every worker once; a task refers to it.
    needed = {k.dataset for k in todo}
    scattered = {
        name: client.scatter(ds, broadcast=True, hash=False)
        for name, ds in data.items()
        if name in needed
    }
    running: dict[Any, RunKey] = {}
    arrived = distributed.as_completed(loop=client.loop)  # not the default client

    def submit_next() -> bool:
        for key in pending:
            if store.claim(key):
                name = f"salutary-bench-{key.filename.removesuffix('.parquet')}"
                try:
                    future = client.submit(
                        _cluster_task, key, scattered.get(key.dataset),
                        key=f"{name}-{uuid.uuid4().hex[:8]}", pure=False,
                    )  # fmt: skip
                except BaseException:
                    store.release(key)
                    raise
                running[future] = key
                arrived.add(future)
                return True
            finish(key, _TAKEN)
        return False

    try:
        while len(running) < window and submit_next():
            pass
        for future in arrived:
            key = running.pop(future)
            try:
                frame, error = future.result()
                if frame is not None:
                    store.write(key, frame)
            except Exception as exc:  # a worker lost, or a result that cannot be stored
                error = _error(exc)
            finally:
                store.release(key)
            finish(key, error)
            submit_next()
    finally:  # interrupted: give back the runs in flight
        for key in running.values():
            store.release(key)
        for future in running:
            future.cancel()


@dataclass
class GridOutcome:
    """What :func:`run_grid` did."""

    ran: list[RunKey]
    skipped: list[RunKey]
    failed: dict[RunKey, str]
    #: keys that another process stored or was running when this one reached them
    taken: list[RunKey] = field(default_factory=list)


def grid(
    datasets: Iterable[str],
    protocols: Iterable[str],
    strategies: Iterable[str],
    seeds: Iterable[int],
) -> list[RunKey]:
    """All keys of a grid, checked against the registries."""
    datasets, protocols, strategies = list(datasets), list(protocols), list(strategies)
    seeds = list(seeds)
    for p in protocols:
        if p not in PROTOCOLS:
            raise ValueError(f"unknown protocol {p!r}; choose from {', '.join(PROTOCOLS)}")
    for s in strategies:
        parse_strategy(s)  # unknown names and parameters fail before any run
    return [
        RunKey(d, p, s, int(seed))
        for d in datasets
        for p in protocols
        for seed in seeds
        for s in strategies
    ]


def run_grid(
    store: ResultStore,
    keys: Sequence[RunKey],
    *,
    n_jobs: int = 1,
    on_done: Callable[[RunKey, str | None], None] | None = None,
    client: Client | None = None,
    data: Mapping[str, Dataset] | None = None,
) -> GridOutcome:
    """Run every key not yet in ``store``; each finished run is stored at once.

    Each run is claimed just before it starts, and skipped if another process has
    stored or claimed it by then, so several processes may run the same grid into one
    store. Claims that processes of this machine left behind when they died are
    cleared first. Every engine gives the same results, bit for bit (apart from the
    timings).

    Parameters
    ----------
    store : ResultStore
    keys : sequence of RunKey
    n_jobs : int
        Worker processes (one BLAS thread each); 1 runs in this process. Ignored
        with ``client``.
    on_done : callable
        ``on_done(key, error_or_None)`` after each run, also one taken by another
        process, e.g. to advance a progress bar.
    client : distributed.Client, optional
        Run on this Dask cluster instead: the runs are mapped over its workers (one
        BLAS thread per run) and this process stores each result as it arrives. The
        workers need ``salutary`` and the registered datasets of the grid, not the store.
    data : mapping of str to Dataset, optional
        Datasets held in memory, by name (e.g. a user's file): the keys whose dataset is
        one of them run on these arrays instead of loading the registry's. They reach
        each worker process (``n_jobs``) or Dask worker once.

    Returns
    -------
    GridOutcome
    """
    given = dict(data or {})
    store.clear_stale_claims()
    done = store.done()
    todo = [k for k in keys if k not in done]
    outcome = GridOutcome(ran=[], skipped=[k for k in keys if k in done], failed={})

    def finish(key: RunKey, status: str | None) -> None:
        if status is None:
            outcome.ran.append(key)
        elif status == _TAKEN:
            outcome.taken.append(key)
        else:
            outcome.failed[key] = status
        if on_done is not None:
            on_done(key, None if status == _TAKEN else status)

    if client is not None:
        _run_on_cluster(store, todo, client, finish, given)
        return outcome
    if n_jobs == 1:
        for key in todo:
            finish(*_worker(key, str(store.path), given.get(key.dataset)))
        return outcome
    with ProcessPoolExecutor(max_workers=n_jobs, initializer=_receive, initargs=(given,)) as pool:
        futures = [pool.submit(_worker, key, str(store.path)) for key in todo]
        for fut in as_completed(futures):
            finish(*fut.result())
    return outcome
