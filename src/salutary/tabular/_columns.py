"""One feature column of one file: parsed, checked, and how it is encoded."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

import numpy as np
import pandas as pd

from salutary.tabular._read import NA_STRINGS, NAN_WORDS, Table, q, qv

__all__ = [
    "MAX_CATEGORIES",
    "Column",
    "categorical_problem",
    "categories",
    "column",
    "first",
    "numeric_problem",
]


#: Most distinct values a text column may have to be one-hot encoded: more is an id or
#: free text (100,000 ids would be a 75 GiB one-hot matrix), not a category.
MAX_CATEGORIES = 1000

# Dates and times as CSV files write them: ISO 8601 dates, with a time or not.
_ISO_DATE = re.compile(
    r"^\d{4}-\d{2}-\d{2}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?\s*(Z|[+-]\d{2}:?\d{2})?)?$"
)


@dataclass
class Column:
    """One feature column of one file, prepared for checks.

    ``kind`` is what the file stores: ``"number"``, ``"text"``, ``"datetime"`` (a date
    or time type, or text that is ISO dates) or ``"nested"`` (Parquet lists, structs,
    maps).
    """

    missing: np.ndarray  # bool per row
    numbers: np.ndarray  # float per row, NaN where missing or not a number
    numeric_dtype: bool  # the file stores it as numbers (every non-missing value parses)
    text: np.ndarray | None  # object array of strings (None where missing)
    kind: str = "text"
    example: str = ""  # a value of a datetime or nested column, for the message
    load_text: Callable[[], np.ndarray] | None = field(default=None, repr=False)

    def cells(self) -> np.ndarray | None:
        """``text``, read from the file the first time it is needed (CSV numbers)."""
        if self.text is None and self.load_text is not None:
            self.text = self.load_text()
        return self.text


def _nested(series: pd.Series) -> object | None:
    """The first list, tuple, dict or array value of an object column, if any."""
    for v in series.dropna().head(100):
        if isinstance(v, (list, tuple, dict, np.ndarray)):
            return v
    return None


def _as_written(table: Table, col: str, missing: np.ndarray) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        assert table.text is not None
        text = table.text[col].to_numpy(dtype=object).copy()
        text[missing] = None
        return text

    return load


def column(table: Table, col: str) -> Column:
    """Parse one feature column of one file (numbers, text, dates, nested values)."""
    series = table.frame[col]
    if table.text is not None and (
        pd.api.types.is_integer_dtype(series) or pd.api.types.is_float_dtype(series)
    ):
        # pandas read every cell as a number or one of its missing-value words: the same
        # numbers and missing values as parsing the text, without a Python string per cell.
        numbers = series.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
        missing = np.isnan(numbers)
        return Column(missing, numbers, True, None, "number", "", _as_written(table, col, missing))
    if table.text is None and pd.api.types.is_numeric_dtype(series):
        numbers = series.to_numpy(dtype=np.float64, na_value=np.nan)
        missing = np.asarray(series.isna()) | np.isnan(numbers)
        return Column(missing, numbers, True, None, "number")
    if table.text is None and (
        pd.api.types.is_datetime64_any_dtype(series)
        or pd.api.types.is_timedelta64_dtype(series)
        or isinstance(series.dtype, pd.PeriodDtype)
    ):
        missing = series.isna().to_numpy()
        shown = str(series[~missing].iloc[0]) if (~missing).any() else ""
        return Column(missing, np.full(len(series), np.nan), False, None, "datetime", shown)
    if table.text is None and series.dtype == object:
        value = _nested(series)
        if value is not None:
            missing = series.isna().to_numpy()
            kind = type(value).__name__
            return Column(missing, np.full(len(series), np.nan), False, None, "nested", kind)
    if table.text is not None:
        text = table.text[col].to_numpy(dtype=object).copy()
    else:
        text = np.array(
            [None if m else str(v) for v, m in zip(series, series.isna(), strict=True)],
            dtype=object,
        )
    # Each distinct text is parsed once: a column of a million rows often has a few
    # hundred distinct values.
    codes, uniques = pd.factorize(text)
    distinct = pd.Series(uniques, dtype=object).str.strip()
    u_missing = distinct.str.lower().isin(NAN_WORDS).to_numpy(copy=True)
    if table.text is not None:
        u_missing |= distinct.isin(NA_STRINGS).to_numpy()
    u_numbers = pd.to_numeric(distinct.where(~u_missing), errors="coerce").to_numpy(
        dtype=np.float64, copy=True
    )
    u_numbers[u_missing] = np.nan
    missing = codes < 0
    missing[~missing] = u_missing[codes[~missing]]
    numbers = np.full(len(text), np.nan)
    numbers[~missing] = u_numbers[codes[~missing]]
    text[missing] = None
    parsed = ~missing & ~np.isnan(numbers)
    head = np.flatnonzero(~missing & ~parsed)[:200]
    present = distinct.iloc[codes[head]]
    if len(present) and present.str.match(_ISO_DATE).mean() >= 0.9:
        kind, shown = "datetime", str(present.iloc[0])
    else:
        kind, shown = "text", ""
    return Column(missing, numbers, bool(np.all(parsed | missing)), text, kind, shown)


def first(mask: np.ndarray) -> int | None:
    """The first True position of ``mask``, or None."""
    idx = np.flatnonzero(mask)
    return int(idx[0]) if len(idx) else None


def numeric_problem(
    table: Table,
    col: str,
    c: Column,
    keep: np.ndarray | None = None,
    skip: np.ndarray | None = None,
) -> tuple[int, str] | None:
    """The first bad row of a numeric column and its message, among the rows ``keep``
    (default all) and not counting missing values in ``skip`` (to be imputed)."""
    rows = np.ones(len(c.missing), dtype=bool) if keep is None else keep
    problems: list[tuple[int, str]] = []
    i = first(c.missing & rows & (True if skip is None else ~skip))
    if i is not None:
        if table.text is None:
            shown = "(NaN)"
        else:
            written = cast(str, table.text[col].iat[i])  # the cell text of a CSV file
            shown = f"{qv(written)} (NaN)" if written.strip() else "(empty)"
        problems.append(
            (i, f"{table.name}: column {q(col)} has a missing value {shown} at {table.row(i)}")
        )
    if c.text is not None:
        i = first(~c.missing & np.isnan(c.numbers) & rows)
        if i is not None:
            problems.append(
                (
                    i,
                    f"{table.name}: column {q(col)} is numeric but {table.row(i)} has the "
                    f"non-numeric value {qv(c.text[i])}",
                )
            )
    i = first(np.isinf(c.numbers) & rows)
    if i is not None:
        cells = c.cells()
        shown = qv(cells[i]) if cells is not None else qv(c.numbers[i])
        problems.append(
            (i, f"{table.name}: column {q(col)} has an infinite value {shown} at {table.row(i)}")
        )
    return min(problems, key=lambda p: p[0]) if problems else None


def categorical_problem(
    table: Table,
    col: str,
    c: Column,
    keep: np.ndarray | None = None,
    skip: np.ndarray | None = None,
) -> tuple[int, str] | None:
    """The first missing value of a text column and its message (see numeric_problem)."""
    rows = np.ones(len(c.missing), dtype=bool) if keep is None else keep
    i = first(c.missing & rows & (True if skip is None else ~skip))
    if i is None:
        return None
    written = cast(str, table.text[col].iat[i]) if table.text is not None else None
    shown = f" {qv(written)}" if written is not None and written.strip() else ""
    where = table.row(i)
    return i, f"{table.name}: categorical column {q(col)} has a missing value{shown} at {where}"


def categories(table: Table, col: str, c: Column) -> np.ndarray:
    """Category values as strings (the text as written for CSV)."""
    cells = c.cells()
    if cells is not None:
        return cells.astype(str)
    return table.frame[col].astype(str).to_numpy(dtype=object).astype(str)
