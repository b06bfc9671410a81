"""Files: atomic writes, and the data files bundled with the package."""

from __future__ import annotations

import importlib.resources
import os
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow.parquet as pq

if TYPE_CHECKING:
    if sys.version_info >= (3, 11):
        from importlib.resources.abc import Traversable
    else:  # importlib.resources.abc is Python 3.11+
        from importlib.abc import Traversable

__all__ = ["atomic_write", "bundled_file", "read_bundled"]


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` on a temporary file next to ``path``, then move it into place.

    The temporary name keeps ``path``'s extension (writers that infer the format from it
    keep working). An existing ``path`` is replaced only if ``write`` succeeds; on any
    failure the temporary file is removed and the exception propagates.

    Parameters
    ----------
    path : str or path-like
        The final file.
    write : callable
        ``write(tmp_path)`` writes the whole file.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:12]}.tmp{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def bundled_file(filename: str) -> Traversable:
    """A data file shipped in ``salutary/data`` (it may be missing from a broken install)."""
    return importlib.resources.files("salutary") / "data" / filename


def read_bundled(filename: str, columns: list[str] | None = None) -> pd.DataFrame:
    """Read ``columns`` (default: all) of a Parquet file bundled in ``salutary/data``.

    Raises
    ------
    FileNotFoundError
        If the file is missing from the installed package.
    """
    path = bundled_file(filename)
    if not path.is_file():
        raise FileNotFoundError(
            f"bundled data file {filename!r} is missing from the salutary package; "
            "regenerate it with scripts/build_datasets.py"
        )
    with path.open("rb") as fh:
        table = pq.read_table(fh, columns=columns)
    return table.to_pandas()
