"""Tabular files for the command line: read, validate, encode, write atomically.

:func:`load_tables` reads a labeled, an unlabeled and a validation file (CSV or Parquet),
checks them and turns them into standardized feature matrices:

* features are every column except the target; numeric columns are used as they are,
  text (categorical) columns are one-hot encoded with categories taken from the union of
  the three files, so all three get the same column layout;
* a :class:`~sklearn.preprocessing.StandardScaler` fit on the labeled rows is applied to
  all three (constant columns stay finite);
* the target's labels are mapped to integer codes ``0..K-1`` in the sorted order of the
  labeled set's classes.

Every problem with the input raises :class:`InputError` with a one-line message that
names the file and, where it applies, the column and the row. Rows are numbered from 1
over the data rows (the header is not counted); for CSV files the line number in the
file is given as well, e.g. ``row 7 (line 8)``.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from salutary._io import atomic_write
from salutary.exceptions import InputError

__all__ = [
    "SUPPORTED_EXTENSIONS",
    "InputError",
    "Table",
    "Tables",
    "atomic_write",
    "check_budget",
    "check_output",
    "file_format",
    "load_tables",
    "read_table",
    "write_table",
]

#: File extensions understood, and the format each one means.
SUPPORTED_EXTENSIONS: dict[str, str] = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}

# The strings pandas reads as missing by default (compared after stripping blanks).
_NA_STRINGS = frozenset(
    {
        "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
        "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
    }
)  # fmt: skip

_NAN_WORDS = frozenset({"nan", "-nan", "+nan", "na", "n/a", "null", "none", "<na>"})

_MAX_SHOWN = 40  # longest value quoted in a message


def _q(name: object) -> str:
    """Quote a file or column name for a one-line message (newlines escaped)."""
    return repr(str(name))


def _qv(value: object) -> str:
    """Quote a cell value for a one-line message (long values cut); numbers as they are."""
    if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
        return str(value)
    text = str(value)
    if len(text) > _MAX_SHOWN:
        text = text[: _MAX_SHOWN - 3] + "..."
    return repr(text)


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _list(values: Sequence[object], limit: int = 10) -> str:
    shown = ", ".join(_qv(v) for v in values[:limit])
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
        ext = f"extension {_q(suffix)}" if suffix else "no extension"
        raise InputError(f"{what} {_q(path)} has {ext}; use .csv, .parquet or .pq") from None


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
        return f"{self.role} file {_q(self.path)}" if self.role else f"file {_q(self.path)}"

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
        raise InputError(f"cannot read {name}: {_one_line(exc.strerror or exc)}") from None


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
            f"cannot parse {name} as CSV at line {reader.line_num}: {_one_line(exc)}"
        ) from None
    if header is None:
        raise InputError(f"{name} is empty (no header line)")
    dupes = sorted({c for c in header if header.count(c) > 1})
    if dupes:
        raise InputError(f"{name} has duplicate column names: {_list(dupes)}")
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
        typed = raw.mask(raw.apply(lambda c: c.str.strip().isin(_NA_STRINGS)))
    return typed, raw, np.asarray(lines, dtype=np.int64)


def _read_parquet(path: Path, name: str) -> pd.DataFrame:
    try:
        if path.stat().st_size == 0:
            raise InputError(f"{name} is empty (0 bytes)")
        frame = pq.read_table(path).to_pandas()
    except PermissionError:
        raise InputError(f"cannot read {name}: permission denied") from None
    except InputError:
        raise
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise InputError(f"cannot read {name} as Parquet: {_one_line(exc)}") from None
    columns = [str(c) for c in frame.columns]
    dupes = sorted({c for c in columns if columns.count(c) > 1})
    if dupes:
        raise InputError(f"{name} has duplicate column names: {_list(dupes)}")
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
    name = f"{role} file {_q(path)}" if role else f"file {_q(path)}"
    if not p.exists():
        raise InputError(f"{name} does not exist")
    if p.is_dir():
        raise InputError(f"{name} is a directory, not a file")
    kind = file_format(path, role)
    if kind == "csv":
        typed, raw, lines = _read_csv(p, name)
        return Table(str(path), role, kind, typed, raw, lines)
    return Table(str(path), role, kind, _read_parquet(p, name))


# --------------------------------------------------------------------------- columns


@dataclass
class _Column:
    """One feature column of one file, prepared for checks."""

    missing: np.ndarray  # bool per row
    numbers: np.ndarray  # float per row, NaN where missing or not a number
    numeric_dtype: bool  # the file stores it as numbers (every non-missing value parses)
    text: np.ndarray | None  # object array of strings (None where missing)


def _column(table: Table, col: str) -> _Column:
    series = table.frame[col]
    if table.text is None and pd.api.types.is_numeric_dtype(series):
        numbers = series.to_numpy(dtype=np.float64, na_value=np.nan)
        missing = np.asarray(series.isna()) | np.isnan(numbers)
        return _Column(missing, numbers, True, None)
    if table.text is not None:
        raw = table.text[col]
        missing = raw.str.strip().isin(_NA_STRINGS).to_numpy()
        text = raw.to_numpy(dtype=object).copy()
    else:
        missing = series.isna().to_numpy()
        text = np.array(
            [None if m else str(v) for v, m in zip(series, missing, strict=True)], dtype=object
        )
    stripped = pd.Series(text, dtype=object).str.strip()
    missing = missing | stripped.str.lower().isin(_NAN_WORDS).to_numpy()
    text[missing] = None
    numbers = pd.to_numeric(stripped.where(~missing), errors="coerce").to_numpy(
        dtype=np.float64, copy=True
    )
    numbers[missing] = np.nan
    parsed = ~missing & ~np.isnan(numbers)
    return _Column(missing, numbers, bool(np.all(parsed | missing)), text)


def _first(mask: np.ndarray) -> int | None:
    idx = np.flatnonzero(mask)
    return int(idx[0]) if len(idx) else None


def _numeric_problem(table: Table, col: str, c: _Column) -> tuple[int, str] | None:
    """The first bad row of a numeric column and its message."""
    problems: list[tuple[int, str]] = []
    i = _first(c.missing)
    if i is not None:
        if table.text is None:
            shown = "(NaN)"
        else:
            written = cast(str, table.text[col].iat[i])  # the cell text of a CSV file
            shown = f"{_qv(written)} (NaN)" if written.strip() else "(empty)"
        problems.append(
            (i, f"{table.name}: column {_q(col)} has a missing value {shown} at {table.row(i)}")
        )
    if c.text is not None:
        i = _first(~c.missing & np.isnan(c.numbers))
        if i is not None:
            problems.append(
                (
                    i,
                    f"{table.name}: column {_q(col)} is numeric but {table.row(i)} has the "
                    f"non-numeric value {_qv(c.text[i])}",
                )
            )
    i = _first(np.isinf(c.numbers))
    if i is not None:
        shown = _qv(c.text[i]) if c.text is not None else _qv(c.numbers[i])
        problems.append(
            (i, f"{table.name}: column {_q(col)} has an infinite value {shown} at {table.row(i)}")
        )
    return min(problems, key=lambda p: p[0]) if problems else None


def _categorical_problem(table: Table, col: str, c: _Column) -> tuple[int, str] | None:
    i = _first(c.missing)
    if i is None:
        return None
    written = cast(str, table.text[col].iat[i]) if table.text is not None else None
    shown = f" {_qv(written)}" if written is not None and written.strip() else ""
    where = table.row(i)
    return i, f"{table.name}: categorical column {_q(col)} has a missing value{shown} at {where}"


# --------------------------------------------------------------------------- tables


@dataclass
class Tables:
    """Three files checked and encoded for salutary labeling.

    Attributes
    ----------
    X_labeled, X_pool, X_val : ndarray of float64
        Standardized features of the labeled, unlabeled and validation rows.
    y_labeled, y_val : ndarray
        Target values as read (original dtype).
    y_labeled_codes, y_val_codes : ndarray of int
        The same as indices into ``classes``.
    classes : ndarray
        Sorted distinct labels of the labeled file (original dtype).
    unlabeled : pandas.DataFrame
        The unlabeled file as read (original columns and values).
    feature_names : list of str
        Names of the columns of the ``X`` matrices (one-hot columns are ``col_value``).
    target : str
    columns : list of str
        The feature columns of the files, in the labeled file's order.
    categorical : list of str
        Feature columns that were one-hot encoded.
    labeled_file, unlabeled_file, validation_file : Table
    """

    X_labeled: np.ndarray
    y_labeled: np.ndarray
    X_pool: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    unlabeled: pd.DataFrame
    feature_names: list[str]
    target: str
    classes: np.ndarray
    y_labeled_codes: np.ndarray
    y_val_codes: np.ndarray
    columns: list[str]
    categorical: list[str]
    labeled_file: Table = field(repr=False)
    unlabeled_file: Table = field(repr=False)
    validation_file: Table = field(repr=False)


def _check_target_present(table: Table, target: str) -> None:
    if target not in table.frame.columns:
        raise InputError(
            f"{table.name} has no target column {_q(target)}; its columns: "
            f"{_list(list(table.frame.columns))}"
        )


def _check_same_columns(reference: Table, others: Sequence[Table], target: str) -> list[str]:
    columns = [c for c in reference.frame.columns if c != target]
    if not columns:
        raise InputError(f"{reference.name} has no feature columns besides the target {_q(target)}")
    problems = []
    for t in others:
        theirs = [c for c in t.frame.columns if c != target]
        theirs_set, ours_set = set(theirs), set(columns)
        lacks = [c for c in columns if c not in theirs_set]
        extra = [c for c in theirs if c not in ours_set]
        parts = []
        if lacks:
            parts.append(f"lacks {_list(lacks, 5)}")
        if extra:
            parts.append(f"has extra {_list(extra, 5)}")
        if parts:
            problems.append(f"{t.name} {' and '.join(parts)}")
    if problems:
        raise InputError(
            f"columns differ between files: {'; '.join(problems)} (compared with {reference.name})"
        )
    return columns


def _check_target_values(table: Table, target: str) -> None:
    if table.text is not None:
        missing = table.text[target].str.strip().isin(_NA_STRINGS).to_numpy()
    else:
        missing = table.frame[target].isna().to_numpy()
    i = _first(missing)
    if i is not None:
        raise InputError(f"{table.name}: target column {_q(target)} has no value at {table.row(i)}")


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    try:
        return np.unique(values)
    except TypeError:  # mixed types in an object column
        uniq = list(dict.fromkeys(values.tolist()))
        uniq.sort(key=lambda v: (type(v).__name__, str(v)))
        out = np.empty(len(uniq), dtype=object)
        out[:] = uniq
        return out


def _label_keys(table: Table, target: str, as_text: bool) -> list[object]:
    """Hashable label identities: numbers, or the text as written when labels are text."""
    if not as_text:
        return table.frame[target].tolist()
    if table.text is not None:
        return table.text[target].tolist()
    return [str(v) for v in table.frame[target].tolist()]


def _encode_labels(labeled: Table, validation: Table, target: str):
    y_lab = labeled.frame[target].to_numpy()
    y_val = validation.frame[target].to_numpy()
    as_text = not (
        pd.api.types.is_numeric_dtype(labeled.frame[target])
        and pd.api.types.is_numeric_dtype(validation.frame[target])
    )
    classes = _sorted_unique(y_lab)
    if len(classes) < 2:
        raise InputError(
            f"{labeled.name} has a single class in target column {_q(target)} "
            f"({_qv(classes[0])}); need at least two"
        )
    lab_keys = _label_keys(labeled, target, as_text)
    code_of_class = {v: i for i, v in enumerate(classes.tolist())}
    lab_codes = np.array([code_of_class[v] for v in y_lab.tolist()], dtype=np.int64)
    key_code: dict[object, int] = {}
    for key, code in zip(lab_keys, lab_codes.tolist(), strict=True):
        key_code.setdefault(key, code)
    val_codes = np.empty(len(y_val), dtype=np.int64)
    for i, key in enumerate(_label_keys(validation, target, as_text)):
        code = key_code.get(key)
        if code is None:
            raise InputError(
                f"{validation.name}: {validation.row(i)} has the label {_qv(key)} in target "
                f"column {_q(target)}, never seen in {labeled.name} (its labels: "
                f"{_list(classes.tolist())})"
            )
        val_codes[i] = code
    return y_lab, y_val, classes, lab_codes, val_codes


def load_tables(
    labeled: str | os.PathLike[str],
    unlabeled: str | os.PathLike[str],
    validation: str | os.PathLike[str],
    target: str,
    categorical: Sequence[str] = (),
) -> Tables:
    """Read, check and encode the three files of a salutary labeling run.

    Parameters
    ----------
    labeled, unlabeled, validation : path
        CSV (``.csv``) or Parquet (``.parquet``, ``.pq``) files. The unlabeled file may
        lack the target column; if it has one, its values are ignored.
    target : str
        Name of the label column.
    categorical : sequence of str
        Feature columns to one-hot encode even if they hold numbers. Other columns are
        numeric if they are stored as numbers in every file, or if more than half of
        their non-missing values (over the three files) are numbers; otherwise they are
        categorical.

    Returns
    -------
    Tables

    Raises
    ------
    InputError
        For any problem with the files, with a one-line message naming the file and,
        where it applies, the column and the (1-based data) row.
    """
    lab = read_table(labeled, "labeled")
    pool = read_table(unlabeled, "unlabeled")
    val = read_table(validation, "validation")
    tables = (lab, pool, val)
    _check_target_present(lab, target)
    _check_target_present(val, target)
    columns = _check_same_columns(lab, (pool, val), target)
    forced = list(dict.fromkeys(categorical))
    for col in forced:
        if col == target:
            raise InputError(f"--categorical {_q(col)} is the target column, not a feature")
        if col not in columns:
            raise InputError(
                f"--categorical {_q(col)} is not a feature column of {lab.name} "
                f"(its features: {_list(columns)})"
            )
    _check_target_values(lab, target)
    _check_target_values(val, target)

    prepared = {col: [_column(t, col) for t in tables] for col in columns}
    numeric = {}
    for col, parts in prepared.items():
        if col in forced:
            numeric[col] = False
            continue
        n_present = sum(int((~c.missing).sum()) for c in parts)
        n_numbers = sum(int((~c.missing & ~np.isnan(c.numbers)).sum()) for c in parts)
        numeric[col] = all(c.numeric_dtype for c in parts) or n_numbers > 0.5 * n_present

    for k, t in enumerate(tables):
        problems = []
        for col in columns:
            c = prepared[col][k]
            if numeric[col]:
                problem = _numeric_problem(t, col, c)
            else:
                problem = _categorical_problem(t, col, c)
            if problem is not None:
                problems.append(problem)
        if problems:
            raise InputError(min(problems, key=lambda p: p[0])[1])

    y_lab, y_val, classes, lab_codes, val_codes = _encode_labels(lab, val, target)

    blocks: list[list[np.ndarray]] = [[], [], []]
    names: list[str] = []
    cats: list[str] = []
    for col in columns:
        parts = prepared[col]
        if numeric[col]:
            for k, c in enumerate(parts):
                blocks[k].append(c.numbers[:, None])
            names.append(col)
            continue
        cats.append(col)
        texts = [_categories(t, col, c) for t, c in zip(tables, parts, strict=True)]
        enc = OneHotEncoder(sparse_output=False, dtype=np.float64, handle_unknown="error")
        enc.fit(np.concatenate(texts)[:, None])
        for k, values in enumerate(texts):
            blocks[k].append(enc.transform(values[:, None]))
        names.extend(str(n) for n in enc.get_feature_names_out([col]))
    X_lab, X_pool, X_val = (np.hstack(b).astype(np.float64, copy=False) for b in blocks)
    scaler = StandardScaler().fit(X_lab)
    X_lab, X_pool, X_val = (scaler.transform(a) for a in (X_lab, X_pool, X_val))
    return Tables(
        X_labeled=X_lab,
        y_labeled=y_lab,
        X_pool=X_pool,
        X_val=X_val,
        y_val=y_val,
        unlabeled=pool.frame,
        feature_names=names,
        target=target,
        classes=classes,
        y_labeled_codes=lab_codes,
        y_val_codes=val_codes,
        columns=columns,
        categorical=cats,
        labeled_file=lab,
        unlabeled_file=pool,
        validation_file=val,
    )


def _categories(table: Table, col: str, c: _Column) -> np.ndarray:
    """Category values as strings (the text as written for CSV)."""
    if c.text is not None:
        return c.text.astype(str)
    return table.frame[col].astype(str).to_numpy(dtype=object).astype(str)


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


# --------------------------------------------------------------------------- writing


def check_output(path: str | os.PathLike[str]) -> str:
    """The output format of ``path``; :class:`InputError` if it cannot be written there."""
    kind = file_format(path, "output")
    p = Path(path)
    parent = p.parent
    if not parent.is_dir():
        raise InputError(f"output file {_q(path)}: directory {_q(parent)} does not exist")
    if p.is_dir():
        raise InputError(f"output file {_q(path)} is a directory")
    return kind


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
