"""Three files checked and encoded for salutary labeling."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from salutary.exceptions import InputError
from salutary.tabular._columns import (
    categorical_problem,
    categories,
    column,
    first,
    numeric_problem,
)
from salutary.tabular._read import NA_STRINGS, Table, q, qv, read_table, show_list

__all__ = ["Tables", "load_tables"]


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
            f"{table.name} has no target column {q(target)}; its columns: "
            f"{show_list(list(table.frame.columns))}"
        )


def _check_same_columns(reference: Table, others: Sequence[Table], target: str) -> list[str]:
    columns = [c for c in reference.frame.columns if c != target]
    if not columns:
        raise InputError(f"{reference.name} has no feature columns besides the target {q(target)}")
    problems = []
    for t in others:
        theirs = [c for c in t.frame.columns if c != target]
        theirs_set, ours_set = set(theirs), set(columns)
        lacks = [c for c in columns if c not in theirs_set]
        extra = [c for c in theirs if c not in ours_set]
        parts = []
        if lacks:
            parts.append(f"lacks {show_list(lacks, 5)}")
        if extra:
            parts.append(f"has extra {show_list(extra, 5)}")
        if parts:
            problems.append(f"{t.name} {' and '.join(parts)}")
    if problems:
        raise InputError(
            f"columns differ between files: {'; '.join(problems)} (compared with {reference.name})"
        )
    return columns


def _check_target_values(table: Table, target: str) -> None:
    if table.text is not None:
        missing = table.text[target].str.strip().isin(NA_STRINGS).to_numpy()
    else:
        missing = table.frame[target].isna().to_numpy()
    i = first(missing)
    if i is not None:
        raise InputError(f"{table.name}: target column {q(target)} has no value at {table.row(i)}")


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
            f"{labeled.name} has a single class in target column {q(target)} "
            f"({qv(classes[0])}); need at least two"
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
                f"{validation.name}: {validation.row(i)} has the label {qv(key)} in target "
                f"column {q(target)}, never seen in {labeled.name} (its labels: "
                f"{show_list(classes.tolist())})"
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
            raise InputError(f"--categorical {q(col)} is the target column, not a feature")
        if col not in columns:
            raise InputError(
                f"--categorical {q(col)} is not a feature column of {lab.name} "
                f"(its features: {show_list(columns)})"
            )
    _check_target_values(lab, target)
    _check_target_values(val, target)

    prepared = {col: [column(t, col) for t in tables] for col in columns}
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
                problem = numeric_problem(t, col, c)
            else:
                problem = categorical_problem(t, col, c)
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
        texts = [categories(t, col, c) for t, c in zip(tables, parts, strict=True)]
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
