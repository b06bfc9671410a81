"""Benchmark harness: protocols, a resumable results store, and a parallel grid runner.

Each finished (dataset, strategy, protocol, seed) run is written as its own Parquet file,
atomically (temporary file, then rename), so a killed benchmark loses at most the runs
in flight and a restart skips everything already stored. A run is claimed (a file under
``.claims/`` in the store) before it starts, so several benchmark processes, on one
machine or on several sharing the store folder, can work through the same grid without
running anything twice.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import math
import os
import socket
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd

from salutary._io import atomic_write
from salutary.experiment import paper_split, run_split
from salutary.loop import PAPER_L2
from salutary.model import LogisticModel
from salutary.strategies import parse_strategy, strategy_class

__all__ = [
    "PROTOCOLS",
    "Protocol",
    "ResultStore",
    "RunKey",
    "run_grid",
    "run_one",
]


@dataclass(frozen=True)
class Protocol:
    """How one benchmark run is set up.

    Attributes
    ----------
    name : str
    description : str
    test_size, val_size : float
        Fractions of the whole dataset held out for testing and labeled validation.
    n_initial : int
        Initial labeled samples (capped at a quarter of the training pool).
    budget : int or float
        Samples per round; a float below 1 is a fraction of the whole dataset.
    rounds : int
    l2 : float
        Penalty of the logistic model on standardized features.
    train_on_validation : bool
        ``fair`` protocols: every strategy's model also trains on the validation
        labels (the initial labeled set becomes L ∪ V). Influence-based strategies still
        measure influence on V.
    """

    name: str
    description: str
    test_size: float = 0.2
    val_size: float = 0.2
    n_initial: int = 300
    budget: int | float = 10
    rounds: int = 10
    l2: float = PAPER_L2
    train_on_validation: bool = False

    def budget_for(self, n_samples: int) -> int:
        """Samples per round for a dataset of ``n_samples``."""
        if isinstance(self.budget, float) and self.budget < 1:
            return max(1, math.ceil(self.budget * n_samples))
        return int(self.budget)


_PAPER = dict(test_size=0.2, val_size=0.2, n_initial=300, budget=10, rounds=10, l2=PAPER_L2)

PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in (
        Protocol("paper", "the paper's: 20% test, 20% validation, 300 initial, 10 x 10, λ=50"),
        Protocol(
            "fair",
            "as paper, but every model also trains on the validation labels (L ∪ V)",
            train_on_validation=True,
        ),
        Protocol("val1", "as paper with a 1% validation set", val_size=0.01),
        Protocol("val5", "as paper with a 5% validation set", val_size=0.05),
        Protocol("budget1pct", "as paper with 1% of the dataset per round", budget=0.01),
        Protocol("rounds30", "as paper with 30 rounds", rounds=30),
        Protocol("l2-1", "as paper with λ=1", l2=1.0),
        Protocol("l2-10", "as paper with λ=10", l2=10.0),
        Protocol("l2-200", "as paper with λ=200", l2=200.0),
    )
}


@dataclass(frozen=True, order=True)
class RunKey:
    """Identifies one run of the grid."""

    dataset: str
    protocol: str
    strategy: str
    seed: int

    @property
    def filename(self) -> str:
        # A strategy spec's ":" is not allowed in Windows file names: stored as "@".
        strategy = self.strategy.replace(":", "@")
        return f"{self.dataset}__{self.protocol}__{strategy}__{self.seed}.parquet"

    @classmethod
    def from_filename(cls, name: str) -> RunKey | None:
        parts = name.removesuffix(".parquet").split("__")
        if len(parts) != 4 or not name.endswith(".parquet") or not parts[3].isdigit():
            return None
        return cls(parts[0], parts[1], parts[2].replace("@", ":"), int(parts[3]))


class ResultStore:
    """A folder of Parquet files, one per finished run.

    Parameters
    ----------
    path : str or Path
        Folder (created on first write).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def done(self) -> set[RunKey]:
        """Keys of every run already stored."""
        if not self.path.is_dir():
            return set()
        keys = (RunKey.from_filename(p.name) for p in self.path.glob("*.parquet"))
        return {k for k in keys if k is not None}

    # ------------------------------------------------------------------ claims
    @property
    def claims_path(self) -> Path:
        """Folder of the claim files of runs in progress."""
        return self.path / ".claims"

    def _claim_file(self, key: RunKey) -> Path:
        return self.claims_path / f"{key.filename.removesuffix('.parquet')}.claim"

    def claim(self, key: RunKey) -> bool:
        """Reserve ``key`` for this process.

        Returns False when the run is stored or another process holds its claim. The
        claim file is created exclusively, so of several processes (also on other
        machines sharing the folder) exactly one gets it.
        """
        if (self.path / key.filename).exists():
            return False
        path = self._claim_file(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            f.write(f"{socket.gethostname()} {os.getpid()}\n")
        if (self.path / key.filename).exists():  # finished between the check and the claim
            self.release(key)
            return False
        return True

    def release(self, key: RunKey) -> None:
        """Drop this process's claim on ``key`` (stored or failed)."""
        self._claim_file(key).unlink(missing_ok=True)

    def claimed(self) -> dict[RunKey, str]:
        """Keys claimed by some process, with the claim's ``host pid``."""
        out = {}
        for p in self.claims_path.glob("*.claim"):
            key = RunKey.from_filename(p.name.removesuffix(".claim") + ".parquet")
            if key is not None:
                try:
                    out[key] = p.read_text().strip()
                except OSError:  # released meanwhile
                    continue
        return out

    def clear_stale_claims(self) -> int:
        """Remove claims left by processes of this machine that no longer run; how many.

        A killed benchmark leaves its claims behind. Claims of other machines are kept:
        whether their process runs cannot be told from here.
        """
        host, cleared = socket.gethostname(), 0
        for key, owner in self.claimed().items():
            claim_host, _, pid = owner.rpartition(" ")
            if claim_host != host or not pid.isdigit() or _alive(int(pid)):
                continue
            path = self._claim_file(key)
            # Move it aside first: a live process may have re-claimed the key meanwhile.
            aside = path.with_name(f".{path.name}.{os.getpid()}")
            try:
                os.rename(path, aside)
            except FileNotFoundError:
                continue
            if aside.read_text().strip() != owner:
                try:  # not the stale claim: give it back
                    os.link(aside, path)
                except FileExistsError:
                    pass
            else:
                cleared += 1
            aside.unlink()
        return cleared

    def write(self, key: RunKey, frame: pd.DataFrame) -> Path:
        """Store one run atomically: a reader sees the whole file or none.

        Parameters
        ----------
        key : RunKey
        frame : DataFrame
            The run's rounds, as :func:`run_one` returns them.

        Returns
        -------
        Path
            The run's file.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        return atomic_write(
            self.path / key.filename, lambda tmp: frame.to_parquet(tmp, index=False)
        )

    def import_frame(self, frame: pd.DataFrame) -> int:
        """Store every run of a consolidated results frame not stored yet; how many."""
        done = self.done()
        added = 0
        keys = ["dataset", "protocol", "strategy", "seed"]
        for (dataset, protocol, strategy, seed), run in frame.groupby(keys, sort=False):
            key = RunKey(str(dataset), str(protocol), str(strategy), int(seed))
            if key not in done:
                self.write(key, run.reset_index(drop=True))
                added += 1
        return added

    def load(self) -> pd.DataFrame:
        """Every stored run, concatenated (empty frame if none).

        Runs stored before ``n_true`` was recorded get it derived
        (:func:`salutary.report.with_n_true`).
        """
        from salutary.report import with_n_true

        files = sorted(p for p in self.path.glob("*.parquet") if RunKey.from_filename(p.name))
        if not files:
            return pd.DataFrame()
        return with_n_true(pd.concat([pd.read_parquet(p) for p in files], ignore_index=True))


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
    hits: ClassVar[int] = 0

    def fit(self, X, y, sample_weight=None):
        if hasattr(self, "coef_") or sample_weight is not None:
            return super().fit(X, y, sample_weight)
        X_c, y_c = np.ascontiguousarray(X), np.asarray(y)
        digest = hashlib.blake2b(repr(sorted(self.get_params().items())).encode())
        digest.update(repr((X_c.shape, X_c.dtype.str, y_c.dtype.str)).encode())
        digest.update(X_c.view(np.uint8).ravel() if X_c.size else b"")
        digest.update(np.ascontiguousarray(y_c).tobytes() if y_c.dtype != object else
                      repr(y_c.tolist()).encode())  # fmt: skip
        key = digest.hexdigest()
        state = self._store.get(key)
        if state is not None:
            type(self).hits += 1
            self._store.move_to_end(key)
            self.__dict__.update(copy.deepcopy(state))
            return self
        super().fit(X, y)
        fitted = {k: v for k, v in self.__dict__.items() if k.endswith("_") or k.startswith("_")}
        self._store[key] = copy.deepcopy(fitted)
        while len(self._store) > self._capacity:
            self._store.popitem(last=False)
        return self


@functools.lru_cache(maxsize=4)
def _dataset(name: str):
    from salutary.datasets import load_dataset

    return load_dataset(name)


def run_one(key: RunKey) -> pd.DataFrame:
    """Run one (dataset, protocol, strategy, seed) and return its per-round frame.

    The split depends only on the dataset, protocol and seed, so all strategies of a
    seed start from the same labeled set and are compared on the same test set.
    """
    protocol = PROTOCOLS[key.protocol]
    data = _dataset(key.dataset)
    t0 = time.perf_counter()
    split = paper_split(
        data.X,
        data.y,
        seed=key.seed,
        n_initial=protocol.n_initial,
        test_size=protocol.test_size,
        val_size=protocol.val_size,
    )
    budget = protocol.budget_for(len(data.y))
    result = run_split(
        split,
        key.strategy,
        seed=key.seed,
        budget=budget,
        rounds=protocol.rounds,
        l2=protocol.l2,
        train_on_validation=protocol.train_on_validation,
        model=_SharedFirstFit(l2=protocol.l2, warm_start=True),
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


def _alive(pid: int) -> bool:
    """Whether a process of this machine with that id runs (or belongs to another user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# Status of a run another process stored or claimed (a string: it crosses process pools).
_TAKEN = "\0taken"


def _worker(key: RunKey, store_path: str) -> tuple[RunKey, str | None]:
    """Claim, run and store one key: ``(key, None)``, ``(key, _TAKEN)`` or ``(key, error)``."""
    # One BLAS thread per process: the grid is parallel across processes instead.
    from threadpoolctl import threadpool_limits

    store = ResultStore(store_path)
    if not store.claim(key):
        return key, _TAKEN
    try:
        with threadpool_limits(1):
            frame = run_one(key)
        store.write(key, frame)
        return key, None
    except Exception as exc:  # reported by the parent, the grid goes on
        tb = traceback.format_exc(limit=3)
        return key, f"{type(exc).__name__}: {exc}\n{tb}"
    finally:
        store.release(key)


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
    datasets, protocols, strategies, seeds = (
        list(x) for x in (datasets, protocols, strategies, seeds)
    )
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
) -> GridOutcome:
    """Run every key not yet in ``store``; each finished run is stored at once.

    Each run is claimed just before it starts, and skipped if another process has
    stored or claimed it by then, so several processes may run the same grid into one
    store. Claims that processes of this machine left behind when they died are
    cleared first.

    Parameters
    ----------
    store : ResultStore
    keys : sequence of RunKey
    n_jobs : int
        Worker processes (one BLAS thread each); 1 runs in this process.
    on_done : callable
        ``on_done(key, error_or_None)`` after each run, also one taken by another
        process, e.g. to advance a progress bar.
    """
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

    if n_jobs == 1:
        for key in todo:
            finish(*_worker(key, str(store.path)))
        return outcome
    with ProcessPoolExecutor(max_workers=n_jobs) as pool:
        futures = [pool.submit(_worker, key, str(store.path)) for key in todo]
        for fut in as_completed(futures):
            finish(*fut.result())
    return outcome
