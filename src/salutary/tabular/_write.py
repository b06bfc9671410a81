"""Checking where the output goes, and writing it atomically."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd

from salutary._io import atomic_write
from salutary.exceptions import InputError
from salutary.tabular._read import Table, file_format, q

__all__ = ["check_budget", "check_output", "probe_directory", "write_table"]


def check_budget(budget: int, rounds: int, pool: Table | int, name: str = "") -> None:
    """Check that ``budget x rounds`` rows fit in the pool.

    Parameters
    ----------
    budget, rounds : int
        Both at least 1.
    pool : Table or int
        The unlabeled table, or its number of rows.
    name : str, optional
        Names the pool in the error when ``pool`` is a number.

    Raises
    ------
    InputError
    """
    n = len(pool) if isinstance(pool, Table) else int(pool)
    where = pool.name if isinstance(pool, Table) else (name or "the pool")
    if budget < 1 or rounds < 1:
        raise InputError(f"budget and rounds must be at least 1, got {budget} and {rounds}")
    if budget * rounds > n:
        raise InputError(
            f"budget x rounds = {budget} x {rounds} = {budget * rounds} exceeds the {n} rows "
            f"of {where}"
        )


def check_output(path: str | os.PathLike[str]) -> str:
    """The output format of ``path``; :class:`InputError` if it cannot be written there."""
    kind = file_format(path, "output")
    p = Path(path)
    parent = p.parent
    if not parent.is_dir():
        raise InputError(f"output file {q(path)}: directory {q(parent)} does not exist")
    if p.is_dir():
        raise InputError(f"output file {q(path)} is a directory")
    probe_directory(parent, f"output file {q(path)}")
    return kind


def probe_directory(folder: Path, what: str) -> None:
    """InputError unless a file can be created in ``folder`` (checked before the work,
    with the temporary file the atomic write will make)."""
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".salutary-probe-"):
            pass
    except OSError as exc:
        reason = "permission denied" if isinstance(exc, PermissionError) else exc.strerror
        raise InputError(
            f"{what}: cannot write in directory {q(folder)}: {reason or exc}"
        ) from None


def write_table(frame: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write ``frame`` as CSV or Parquet (by extension), atomically; no index.

    Parameters
    ----------
    frame : DataFrame
    path : str or path-like
        ``.csv``, ``.parquet`` or ``.pq``.

    Returns
    -------
    Path
    """
    kind = file_format(path, "output")

    def write(tmp: Path) -> None:
        if kind == "csv":
            frame.to_csv(tmp, index=False)
        else:
            frame.to_parquet(tmp, index=False)

    return atomic_write(path, write)
