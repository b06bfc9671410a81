"""Reading the user's CSV and Parquet files, and quoting their names and values in messages."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from salutary.exceptions import InputError

__all__ = [
    "CsvText",
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


class CsvText:
    """The cells of a CSV file as the exact text written, one column at a time.

    Held as Arrow strings (a few bytes per cell); ``text[col]`` makes a pandas Series of
    Python strings (object dtype) for that column only, so numeric columns never cost a
    Python object per cell.
    """

    def __init__(self, cells: pa.Table) -> None:
        self._cells = cells
        self.columns = pd.Index(cells.column_names, dtype=object)

    def __getitem__(self, col: str) -> pd.Series:
        values = self._cells.column(col).to_numpy(zero_copy_only=False)
        return pd.Series(values, dtype=object, name=col)

    def __len__(self) -> int:
        return self._cells.num_rows


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
    text : CsvText or None
        CSV only: every cell as the exact text in the file.
    lines : ndarray or None
        CSV only: the line of the file each data row starts on (found when first asked
        for: only messages need it).
    """

    path: str
    role: str
    kind: str
    frame: pd.DataFrame
    text: CsvText | None = None
    _lines: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def name(self) -> str:
        """``labeled file 'path'``, the way messages refer to the file."""
        return f"{self.role} file {q(self.path)}" if self.role else f"file {q(self.path)}"

    @property
    def lines(self) -> np.ndarray | None:
        if self.kind != "csv":
            return None
        if self._lines is None:
            text = Path(self.path).read_bytes().decode("utf-8-sig")
            self._lines = np.asarray([start for start, _ in _records(text)][1:], dtype=np.int64)
        return self._lines

    def row(self, i: int) -> str:
        """``row 7 (line 8)`` for the 0-based data row ``i``."""
        lines = self.lines
        if lines is not None and i < len(lines):
            return f"row {i + 1} (line {int(lines[i])})"
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


class _CsvSyntaxError(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


def _records(text: str) -> Iterator[tuple[int, list[str]]]:
    """The non-blank records of a CSV text and the line each starts on."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=False)
    start = 1
    try:
        for record in reader:
            if record:  # blank lines are skipped, as pandas does
                yield start, record
            start = reader.line_num + 1
    except csv.Error as exc:
        raise _CsvSyntaxError(reader.line_num, one_line(exc)) from None


def _header(path: Path) -> list[str] | None:
    """The first record of a CSV file, or None if it cannot be read as one."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            for record in csv.reader(fh, strict=False):
                if record:
                    return record
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    return None


def _arrow_text(path: Path) -> pa.Table | None:
    """Every cell of a well-formed CSV file as Arrow strings, read by Arrow's parallel
    reader; None for any file it cannot read as such (empty, ragged, not UTF-8, ...), which
    the careful reader then reads to say exactly what is wrong."""
    header = _header(path)
    if not header or len(set(header)) != len(header):
        return None
    try:
        cells = pacsv.read_csv(
            path,
            parse_options=pacsv.ParseOptions(newlines_in_values=True, ignore_empty_lines=True),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(header, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowException, OSError):
        return None
    if cells.column_names != header or cells.num_rows == 0:
        return None
    return cells


def _parse_csv(path: Path, name: str) -> tuple[pa.Table, np.ndarray]:
    """The careful reader: the cells and line numbers, or the message saying what is wrong."""
    data = _read_bytes(path, name)
    if not data:
        raise InputError(f"{name} is empty (0 bytes)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(f"cannot read {name}: not UTF-8 text (line {line})") from None
    del data
    header: list[str] | None = None
    rows: list[list[str]] = []
    lines: list[int] = []
    try:
        for start, record in _records(text):
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
    except _CsvSyntaxError as exc:
        raise InputError(f"cannot parse {name} as CSV at line {exc.line}: {exc}") from None
    if header is None:
        raise InputError(f"{name} is empty (no header line)")
    dupes = sorted({c for c in header if header.count(c) > 1})
    if dupes:
        raise InputError(f"{name} has duplicate column names: {show_list(dupes)}")
    if not rows:
        raise InputError(f"{name} has a header but no data rows")
    columns = {c: pa.array([r[j] for r in rows], pa.string()) for j, c in enumerate(header)}
    return pa.table(columns), np.asarray(lines, dtype=np.int64)


def _read_csv(path: Path, name: str, role: str) -> Table:
    cells = _arrow_text(path)
    lines = None
    if cells is None:
        cells, lines = _parse_csv(path, name)
    header = cells.column_names
    text = CsvText(cells)
    try:
        typed = pd.read_csv(
            path,
            encoding="utf-8-sig",
            header=0,
            names=header,
            index_col=False,
            skip_blank_lines=True,
        )
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError):
        typed = None
    if typed is None or len(typed) != len(text):  # pragma: no cover - odd files only
        raw = pd.DataFrame({c: text[c] for c in header})
        typed = raw.mask(raw.apply(lambda c: c.str.strip().isin(NA_STRINGS)))
    return Table(str(path), role, "csv", typed, text, lines)


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
        return _read_csv(p, name, role)
    return Table(str(path), role, kind, _read_parquet(p, name))
