"""Reading the user's CSV and Parquet files, and quoting their names and values in messages."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from salutary.exceptions import InputError

__all__ = [
    "NAN_WORDS",
    "NA_STRINGS",
    "SUPPORTED_EXTENSIONS",
    "Table",
    "file_format",
    "one_line",
    "q",
    "qv",
    "read_table",
    "show_list",
]

#: File extensions understood, and the format each one means.
SUPPORTED_EXTENSIONS: dict[str, str] = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}

# The strings pandas reads as missing by default (compared after stripping blanks).
NA_STRINGS = frozenset(
    {
        "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
        "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
    }
)  # fmt: skip

NAN_WORDS = frozenset({"nan", "-nan", "+nan", "na", "n/a", "null", "none", "<na>"})

_MAX_SHOWN = 40  # longest value quoted in a message


def q(name: object) -> str:
    """Quote a file or column name for a one-line message (newlines escaped)."""
    return repr(str(name))


def qv(value: object) -> str:
    """Quote a cell value for a one-line message (long values cut); numbers as they are."""
    if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
        return str(value)
    text = str(value)
    if len(text) > _MAX_SHOWN:
        text = text[: _MAX_SHOWN - 3] + "..."
    return repr(text)


def one_line(text: object) -> str:
    """``text`` on one line (runs of white space, newlines included, become one blank)."""
    return " ".join(str(text).split())


def show_list(values: Sequence[object], limit: int = 10) -> str:
    """The first ``limit`` values, quoted, and how many there are in all."""
    shown = ", ".join(qv(v) for v in values[:limit])
    if len(values) > limit:
        shown += f", ... ({len(values)} in all)"
    return shown


def file_format(path: str | os.PathLike[str], role: str = "") -> str:
    """``"csv"`` or ``"parquet"`` from the file's extension.

    Parameters
    ----------
    path : str or path-like
    role : str, optional
        Named in the error (``"labeled"``, ``"output"``, ...).

    Raises
    ------
    InputError
        The extension is not ``.csv``, ``.parquet`` or ``.pq``.
    """
    suffix = Path(path).suffix.lower()
    try:
        return SUPPORTED_EXTENSIONS[suffix]
    except KeyError:
        what = f"{role} file" if role else "file"
        ext = f"extension {q(suffix)}" if suffix else "no extension"
        raise InputError(f"{what} {q(path)} has {ext}; use .csv, .parquet or .pq") from None


@dataclass
class Table:
    """One file as read.

    Attributes
    ----------
    path : str
        The path as given.
    role : str
        ``"labeled"``, ``"unlabeled"`` or ``"validation"`` (used in messages).
    kind : str
        ``"csv"`` or ``"parquet"``.
    frame : pandas.DataFrame
        The data with pandas' usual types (integers stay integers), index ``0..n-1``.
    text : pandas.DataFrame or None
        CSV only: every cell as the exact text in the file (object dtype).
    lines : ndarray or None
        CSV only: the line of the file each data row starts on.
    """

    path: str
    role: str
    kind: str
    frame: pd.DataFrame
    text: pd.DataFrame | None = None
    lines: np.ndarray | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        """``labeled file 'path'``, the way messages refer to the file."""
        return f"{self.role} file {q(self.path)}" if self.role else f"file {q(self.path)}"

    def row(self, i: int) -> str:
        """``row 7 (line 8)`` for the 0-based data row ``i``."""
        if self.lines is not None:
            return f"row {i + 1} (line {int(self.lines[i])})"
        return f"row {i + 1}"

    def __len__(self) -> int:
        return len(self.frame)


def _read_bytes(path: Path, name: str) -> bytes:
    try:
        with path.open("rb") as fh:
            return fh.read()
    except PermissionError:
        raise InputError(f"cannot read {name}: permission denied") from None
    except OSError as exc:
        raise InputError(f"cannot read {name}: {one_line(exc.strerror or exc)}") from None


def _read_csv(path: Path, name: str) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    data = _read_bytes(path, name)
    if not data:
        raise InputError(f"{name} is empty (0 bytes)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(f"cannot read {name}: not UTF-8 text (line {line})") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=False)
    header: list[str] | None = None
    rows: list[list[str]] = []
    lines: list[int] = []
    start = 1
    try:
        for record in reader:
            if record:  # blank lines are skipped, as pandas does
                if header is None:
                    header = record
                else:
                    if len(record) != len(header):
                        raise InputError(
                            f"{name}: row {len(rows) + 1} (line {start}) has "
                            f"{len(record)} fields but the header has {len(header)}"
                        )
                    rows.append(record)
                    lines.append(start)
            start = reader.line_num + 1
    except csv.Error as exc:
        raise InputError(
            f"cannot parse {name} as CSV at line {reader.line_num}: {one_line(exc)}"
        ) from None
    if header is None:
        raise InputError(f"{name} is empty (no header line)")
    dupes = sorted({c for c in header if header.count(c) > 1})
    if dupes:
        raise InputError(f"{name} has duplicate column names: {show_list(dupes)}")
    if not rows:
        raise InputError(f"{name} has a header but no data rows")
    raw = pd.DataFrame(rows, columns=header, dtype=object)
    try:
        typed = pd.read_csv(
            io.StringIO(text), header=0, names=header, index_col=False, skip_blank_lines=True
        )
    except (ValueError, pd.errors.ParserError):
        typed = None
    if typed is None or len(typed) != len(raw):  # pragma: no cover - odd files only
        typed = raw.mask(raw.apply(lambda c: c.str.strip().isin(NA_STRINGS)))
    return typed, raw, np.asarray(lines, dtype=np.int64)


def _read_parquet(path: Path, name: str) -> pd.DataFrame:
    try:
        if path.stat().st_size == 0:
            raise InputError(f"{name} is empty (0 bytes)")
        # Duplicate names first: Arrow's own message for them names no column plainly.
        names = [str(c) for c in pq.read_schema(path).names]
        dupes = sorted({c for c in names if names.count(c) > 1})
        if dupes:
            raise InputError(f"{name} has duplicate column names: {show_list(dupes)}")
        frame = pq.read_table(path).to_pandas()
    except PermissionError:
        raise InputError(f"cannot read {name}: permission denied") from None
    except InputError:
        raise
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise InputError(f"cannot read {name} as Parquet: {one_line(exc)}") from None
    columns = [str(c) for c in frame.columns]
    dupes = sorted({c for c in columns if columns.count(c) > 1})
    if dupes:
        raise InputError(f"{name} has duplicate column names: {show_list(dupes)}")
    frame.columns = columns
    if frame.shape[1] == 0:
        raise InputError(f"{name} has no columns")
    if len(frame) == 0:
        raise InputError(f"{name} has no data rows")
    return frame.reset_index(drop=True)


def read_table(path: str | os.PathLike[str], role: str = "") -> Table:
    """Read a CSV or Parquet file (chosen by extension) into a :class:`Table`.

    Parameters
    ----------
    path : str or path-like
    role : str, optional
        Named in errors (``"labeled"``, ``"unlabeled"``, ``"validation"``).

    Returns
    -------
    Table
        The frame, plus what error messages need (file name, CSV line numbers).

    Raises
    ------
    InputError
        Unsupported extension, missing, unreadable, corrupt or empty file (no data rows),
        CSV rows with a wrong number of fields, duplicate column names.
    """
    p = Path(path)
    name = f"{role} file {q(path)}" if role else f"file {q(path)}"
    if not p.exists():
        raise InputError(f"{name} does not exist")
    if p.is_dir():
        raise InputError(f"{name} is a directory, not a file")
    kind = file_format(path, role)
    if kind == "csv":
        typed, raw, lines = _read_csv(p, name)
        return Table(str(path), role, kind, typed, raw, lines)
    return Table(str(path), role, kind, _read_parquet(p, name))
