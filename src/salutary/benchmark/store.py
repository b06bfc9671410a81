"""A resumable results store: one Parquet file per finished run, claims for runs in flight.

Each finished (dataset, strategy, protocol, seed) run is written as its own Parquet file,
atomically (temporary file, then rename), so a killed benchmark loses at most the runs
in flight and a restart skips everything already stored. A run is claimed (a file under
``.claims/`` in the store) before it starts, so several benchmark processes, on one
machine or on several sharing the store folder, can work through the same grid without
running anything twice.
"""

from __future__ import annotations

import os
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from salutary._io import atomic_write
from salutary.benchmark.protocols import RunKey
from salutary.strategies import strategy_class

__all__ = ["ResultStore", "known_strategy", "oracle_kind", "with_n_true"]


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
        for values, run in frame.groupby(keys, sort=False):
            dataset, protocol, strategy, seed = map(str, values)
            key = RunKey(dataset, protocol, strategy, int(seed))
            if key not in done:
                self.write(key, run.reset_index(drop=True))
                added += 1
        return added

    def files(self) -> list[Path]:
        """The stored runs' files, sorted by name (the order of :meth:`load`'s rows)."""
        return sorted(p for p in self.path.glob("*.parquet") if RunKey.from_filename(p.name))

    def load(self) -> pd.DataFrame:
        """Every stored run, concatenated in file-name order (empty frame if none).

        The same frame as ``pd.concat`` of ``pd.read_parquet`` of each file, several
        times faster on a store of thousands of runs (the files are read on threads). Runs
        stored before ``n_true`` was recorded get it derived (:func:`with_n_true`).
        """
        files = self.files()
        if not files:
            return pd.DataFrame()
        return with_n_true(_read_runs(files))


def _read_table(path: Path) -> pa.Table:
    # ParquetFile skips the dataset machinery that pq.read_table and pd.read_parquet set
    # up for every call: most of the time of reading a file of a few rows.
    return pq.ParquetFile(path).read(use_pandas_metadata=True, use_threads=False)


def _read_runs(files: list[Path], max_workers: int | None = None) -> pd.DataFrame:
    """``pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)``, faster.

    The files are read as Arrow tables on threads, files of one schema are joined into
    one table and converted to pandas once, and only the few frames of different
    schemas (runs stored by older versions, which lack columns) are concatenated by
    pandas, which gives missing columns, mixed types, the column order and the row order
    exactly as concatenating the files one by one would.

    Parameters
    ----------
    files : list of Path
        Parquet files, in the order of the rows wanted.
    max_workers : int or None
        Reading threads (default: as :class:`~concurrent.futures.ThreadPoolExecutor`).

    Returns
    -------
    pandas.DataFrame
    """
    if not files:
        raise ValueError("no files to read")
    with ThreadPoolExecutor(max_workers) as pool:
        tables = list(pool.map(_read_table, files))
    # Schemas compared with their pandas metadata, which steers the conversion.
    groups: dict[bytes, list[int]] = {}
    for i, table in enumerate(tables):
        groups.setdefault(table.schema.serialize().to_pybytes(), []).append(i)
    frames = [pa.concat_tables([tables[i] for i in g]).to_pandas() for g in groups.values()]
    if len(frames) == 1:
        return frames[0]
    # Groups in order of their first file keep pandas' column order (first appearance).
    out = pd.concat(frames, ignore_index=True)
    starts = np.cumsum([0] + [t.num_rows for t in tables])
    position = np.empty(len(out), dtype=np.int64)  # row of out -> row of the file order
    at = 0
    for members in groups.values():
        for i in members:
            position[at : at + tables[i].num_rows] = np.arange(starts[i], starts[i + 1])
            at += tables[i].num_rows
    order = np.empty_like(position)
    order[position] = np.arange(len(out))
    return out.take(order).reset_index(drop=True)


def _alive(pid: int) -> bool:
    """Whether a process of this machine with that id runs (or belongs to another user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def oracle_kind(strategy: str) -> float:
    """1 if every pick of ``strategy`` gets a true label, 0 if none does, NaN otherwise
    (unknown, or a strategy that asks about only some of its picks)."""
    try:
        cls = strategy_class(strategy)  # a spec ("name:param=value") counts as its class
    except ValueError:
        return np.nan
    if cls.partial_oracle:
        return np.nan
    return float(cls.requires_oracle)


def known_strategy(strategy: str) -> bool:
    """Whether ``strategy`` names a registered strategy, or a spec of one."""
    try:
        strategy_class(strategy)
    except ValueError:
        return False
    return True


def with_n_true(results: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``results`` with ``n_true`` (oracle labels spent so far) on every row.

    Runs stored before the column existed lack it (or hold NaN there once concatenated
    with newer runs). For those rows it is derived: every pick of an oracle strategy
    is a true label, so ``n_true = n_labeled - n_labeled at round 0`` (``round *
    budget`` where ``n_labeled`` is missing); oracle-free strategies spend none. A
    strategy that asks about only some picks (``salutary-hybrid``) cannot be derived
    and stays NaN. A spec (``name:param=value``) counts as its strategy; names that are
    neither follow the stored ``oracle`` column.

    Parameters
    ----------
    results : pandas.DataFrame
        Rounds of runs: ``strategy`` and ``round``, and ``n_labeled`` or ``budget``.

    Returns
    -------
    pandas.DataFrame
    """
    out = results.copy()
    if "n_true" not in out:
        out["n_true"] = np.nan
    missing = out["n_true"].isna()
    if missing.any():
        keys = [k for k in ("protocol", "dataset", "strategy", "seed") if k in out]
        spent = pd.Series(np.nan, index=out.index)
        if "n_labeled" in out:
            spent = out["n_labeled"] - out.groupby(keys)["n_labeled"].transform("min")
        if "budget" in out:
            spent = spent.fillna(out["round"] * out["budget"])
        # Once per distinct name, not per row: parsing a spec costs a few microseconds.
        names = pd.unique(out["strategy"])
        oracle = out["strategy"].map(dict(zip(names, map(oracle_kind, names), strict=True)))
        if "oracle" in out:
            known = dict(zip(names, map(known_strategy, names), strict=True))
            unknown = ~out["strategy"].map(known).astype(bool)
            oracle[unknown] = out.loc[unknown, "oracle"].astype(float)
        derived = spent.where(oracle == 1.0, np.where(oracle == 0.0, 0.0, np.nan))
        out["n_true"] = out["n_true"].astype(float).where(~missing, derived)
    if not out["n_true"].isna().any():
        out["n_true"] = out["n_true"].astype(np.int64)
    return out
