"""One feature column of one file: parsed, checked, and how it is encoded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np
import pandas as pd

from salutary.tabular._read import NA_STRINGS, NAN_WORDS, Table, q, qv

__all__ = ["Column", "categorical_problem", "categories", "column", "first", "numeric_problem"]


@dataclass
class Column:
    """One feature column of one file, prepared for checks."""

    missing: np.ndarray  # bool per row
    numbers: np.ndarray  # float per row, NaN where missing or not a number
    numeric_dtype: bool  # the file stores it as numbers (every non-missing value parses)
    text: np.ndarray | None  # object array of strings (None where missing)


def column(table: Table, col: str) -> Column:
    series = table.frame[col]
    if table.text is None and pd.api.types.is_numeric_dtype(series):
        numbers = series.to_numpy(dtype=np.float64, na_value=np.nan)
        missing = np.asarray(series.isna()) | np.isnan(numbers)
        return Column(missing, numbers, True, None)
    if table.text is not None:
        raw = table.text[col]
        missing = raw.str.strip().isin(NA_STRINGS).to_numpy()
        text = raw.to_numpy(dtype=object).copy()
    else:
        missing = series.isna().to_numpy()
        text = np.array(
            [None if m else str(v) for v, m in zip(series, missing, strict=True)], dtype=object
        )
    stripped = pd.Series(text, dtype=object).str.strip()
    missing = missing | stripped.str.lower().isin(NAN_WORDS).to_numpy()
    text[missing] = None
    numbers = pd.to_numeric(stripped.where(~missing), errors="coerce").to_numpy(
        dtype=np.float64, copy=True
    )
    numbers[missing] = np.nan
    parsed = ~missing & ~np.isnan(numbers)
    return Column(missing, numbers, bool(np.all(parsed | missing)), text)


def first(mask: np.ndarray) -> int | None:
    idx = np.flatnonzero(mask)
    return int(idx[0]) if len(idx) else None


def numeric_problem(table: Table, col: str, c: Column) -> tuple[int, str] | None:
    """The first bad row of a numeric column and its message."""
    problems: list[tuple[int, str]] = []
    i = first(c.missing)
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
        i = first(~c.missing & np.isnan(c.numbers))
        if i is not None:
            problems.append(
                (
                    i,
                    f"{table.name}: column {q(col)} is numeric but {table.row(i)} has the "
                    f"non-numeric value {qv(c.text[i])}",
                )
            )
    i = first(np.isinf(c.numbers))
    if i is not None:
        shown = qv(c.text[i]) if c.text is not None else qv(c.numbers[i])
        problems.append(
            (i, f"{table.name}: column {q(col)} has an infinite value {shown} at {table.row(i)}")
        )
    return min(problems, key=lambda p: p[0]) if problems else None


def categorical_problem(table: Table, col: str, c: Column) -> tuple[int, str] | None:
    i = first(c.missing)
    if i is None:
        return None
    written = cast(str, table.text[col].iat[i]) if table.text is not None else None
    shown = f" {qv(written)}" if written is not None and written.strip() else ""
    where = table.row(i)
    return i, f"{table.name}: categorical column {q(col)} has a missing value{shown} at {where}"


def categories(table: Table, col: str, c: Column) -> np.ndarray:
    """Category values as strings (the text as written for CSV)."""
    if c.text is not None:
        return c.text.astype(str)
    return table.frame[col].astype(str).to_numpy(dtype=object).astype(str)
