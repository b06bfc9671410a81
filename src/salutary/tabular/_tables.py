"""Files checked and encoded: the three of salutary labeling, or one of labeled rows."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from salutary.exceptions import InputError
from salutary.tabular._columns import (
    MAX_CATEGORIES,
    Column,
    categorical_problem,
    categories,
    column,
    first,
    numeric_problem,
)
from salutary.tabular._read import NA_STRINGS, Table, q, qv, read_table, show_list

__all__ = ["DataTable", "Tables", "load_table", "load_tables"]


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
    pool_rows : ndarray of int
        The rows of the unlabeled file that ``X_pool`` holds, in order (0-based).
    known_rows : ndarray of int
        Rows of the unlabeled file that already had a target value: they are labeled
        rows (in ``X_labeled``, after the labeled file's), never relabeled.
    dropped : dict of str to int
        Rows left out per file for missing values (``missing="drop"``).
    imputed : int
        Missing feature values filled in (``missing="impute"``).
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
    pool_rows: np.ndarray
    known_rows: np.ndarray
    dropped: dict[str, int]
    imputed: int
    labeled_file: Table = field(repr=False)
    unlabeled_file: Table = field(repr=False)
    validation_file: Table = field(repr=False)


@dataclass
class DataTable:
    """One file of labeled rows checked and encoded, e.g. a user's dataset to benchmark.

    Attributes
    ----------
    X : ndarray of float64
        The features of the rows kept: numeric columns as they are, text columns one-hot
        encoded (not standardized).
    y : ndarray
        Target values of the rows kept, as read (original dtype).
    feature_names : list of str
        Names of the columns of ``X`` (one-hot columns are ``col_value``).
    target : str
    columns : list of str
        The feature columns of the file, in its order.
    categorical : list of str
        Feature columns that were one-hot encoded.
    rows : ndarray of int
        The rows of the file that ``X`` holds, in order (0-based).
    dropped : int
        Rows left out for missing values (``missing="drop"``).
    imputed : int
        Missing feature values filled in (``missing="impute"``).
    table : Table
    """

    X: np.ndarray
    y: np.ndarray
    feature_names: list[str]
    target: str
    columns: list[str]
    categorical: list[str]
    rows: np.ndarray
    dropped: int
    imputed: int
    table: Table = field(repr=False)


def _check_target_present(table: Table, target: str) -> None:
    if target not in table.frame.columns:
        raise InputError(
            f"{table.name} has no target column {q(target)}; its columns: "
            f"{show_list(list(table.frame.columns))}"
        )


def _check_same_columns(
    reference: Table, others: Sequence[Table], target: str, not_features: set[str]
) -> list[str]:
    skip = {target, *not_features}
    columns = [c for c in reference.frame.columns if c not in skip]
    if not columns:
        raise InputError(
            f"{reference.name} has no feature columns besides the target {q(target)}"
            + (f" and {show_list(sorted(not_features))}" if not_features else "")
        )
    problems = []
    for t in others:
        theirs = [c for c in t.frame.columns if c not in skip]
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


def _missing_target(table: Table, target: str) -> np.ndarray:
    """Rows without a target value: empty or a missing-value word, as in every column."""
    if table.text is not None:
        return table.text[target].str.strip().isin(NA_STRINGS).to_numpy()
    values = table.frame[target]
    blank = values.map(lambda v: isinstance(v, str) and v.strip() in NA_STRINGS)
    return (values.isna() | blank.astype(bool)).to_numpy()


def _check_target_values(table: Table, target: str) -> None:
    missing = _missing_target(table, target)
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


def _encode_labels(labeled: Table, validation: Table, target: str, pool: Table, known: np.ndarray):
    y_lab = labeled.frame[target].to_numpy()
    y_val = validation.frame[target].to_numpy()
    tables = (labeled, validation, pool) if known.any() else (labeled, validation)
    as_text = not all(pd.api.types.is_numeric_dtype(t.frame[target]) for t in tables)
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
    known_codes = np.empty(int(known.sum()), dtype=np.int64)
    if known.any():
        keys = _label_keys(pool, target, as_text)
        for j, i in enumerate(np.flatnonzero(known).tolist()):
            code = key_code.get(keys[i])
            if code is None:
                raise InputError(
                    f"{pool.name}: {pool.row(i)} already has the label {qv(keys[i])} in "
                    f"target column {q(target)}, never seen in {labeled.name} (its labels: "
                    f"{show_list(classes.tolist())})"
                )
            known_codes[j] = code
    return y_lab, y_val, classes, lab_codes, val_codes, known_codes


def load_tables(
    labeled: str | os.PathLike[str],
    unlabeled: str | os.PathLike[str],
    validation: str | os.PathLike[str],
    target: str,
    categorical: Sequence[str] = (),
    *,
    id_column: str | None = None,
    ignore: Sequence[str] = (),
    missing: str = "error",
    progress: Callable[[str, int, int], None] | None = None,
) -> Tables:
    """Read, check and encode the three files of a salutary labeling run.

    Parameters
    ----------
    labeled, unlabeled, validation : path
        CSV (``.csv``) or Parquet (``.parquet``, ``.pq``) files. The unlabeled file may
        lack the target column; rows where it has a value are labeled rows (used as
        such, and never relabeled).
    target : str
        Name of the label column.
    categorical : sequence of str
        Feature columns to one-hot encode even if they hold numbers. Other columns are
        numeric if they are stored as numbers in every file, or if more than half of
        their non-missing values (over the three files) are numbers; otherwise they are
        categorical (at most :data:`MAX_CATEGORIES` distinct values; dates, times and
        nested Parquet values are refused).
    id_column : str, optional
        A column of the unlabeled file that identifies its rows (unique, no missing
        value): carried to the output, never a feature (in any file).
    ignore : sequence of str
        Columns that are not features (in any file that has them).
    missing : {"error", "drop", "impute"}, default="error"
        What a missing feature value does: an error naming it; its row is left out
        (of every file: a pool row is then never labeled); or it is filled in (numeric
        columns: the labeled file's median; text columns: a category of its own).
    progress : callable, optional
        Called as ``progress(what, done, total)`` while the files are read, their columns
        parsed and the features encoded (a progress bar's update).

    Returns
    -------
    Tables

    Raises
    ------
    InputError
        For any problem with the files or options, with a one-line message naming the
        file and, where it applies, the column and the (1-based data) row.
    """
    if missing not in ("error", "drop", "impute"):
        raise InputError(f"--missing must be error, drop or impute, not {q(missing)}")
    report = progress or (lambda what, done, total: None)
    paths = {"labeled": labeled, "unlabeled": unlabeled, "validation": validation}
    read = []
    for k, (role, path) in enumerate(paths.items()):
        report(f"reading the {role} file{_size(path)}", k, 3)
        read.append(read_table(path, role))
    lab, pool, val = tables = tuple(read)
    report("reading files", 3, 3)
    _check_target_present(lab, target)
    _check_target_present(val, target)
    not_features = _check_roles(tables, target, id_column, ignore)
    columns = _check_same_columns(lab, (pool, val), target, not_features)
    forced = _check_forced(categorical, target, columns, lab)
    _check_target_values(lab, target)
    _check_target_values(val, target)
    known = _known_labels(pool, target)
    features = _encode_features(tables, columns, forced, missing, report)
    keep = features.keep
    X_lab, X_pool, X_val = features.X
    names, cats, imputed = features.names, features.categorical, features.imputed

    known &= keep[1]
    lab_rows = np.flatnonzero(keep[0])
    val_rows = np.flatnonzero(keep[2])
    y_lab, y_val, classes, lab_codes, val_codes, known_codes = _encode_labels(
        lab, val, target, pool, known
    )

    pool_kept = np.flatnonzero(keep[1])
    in_pool = ~known[pool_kept]
    if known.any():
        X_lab = np.vstack([X_lab, X_pool[~in_pool]])
        y_lab = np.concatenate([y_lab[lab_rows], classes[known_codes]])
        lab_codes = np.concatenate([lab_codes[lab_rows], known_codes])
    else:
        y_lab, lab_codes = y_lab[lab_rows], lab_codes[lab_rows]
    X_pool = X_pool[in_pool]
    if len(X_pool) == 0:
        raise InputError(
            f"{pool.name} has no row left to label: {int(known.sum())} already have a value in "
            f"{q(target)}, {int((~keep[1]).sum())} have missing values"
        )
    y_val, val_codes = y_val[val_rows], val_codes[val_rows]
    if len(np.unique(lab_codes)) < 2:
        raise InputError(
            f"{lab.name}: the rows kept have a single class in target column {q(target)}; "
            "need at least two"
        )
    scaler = StandardScaler().fit(X_lab)
    report("encoding features", 1, 1)
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
        pool_rows=pool_kept[in_pool],
        known_rows=np.flatnonzero(known),
        dropped={t.role: int((~m).sum()) for t, m in zip(tables, keep, strict=True)},
        imputed=imputed,
        labeled_file=lab,
        unlabeled_file=pool,
        validation_file=val,
    )


def load_table(
    path: str | os.PathLike[str],
    target: str,
    categorical: Sequence[str] = (),
    *,
    id_column: str | None = None,
    ignore: Sequence[str] = (),
    missing: str = "error",
    role: str = "data",
    progress: Callable[[str, int, int], None] | None = None,
) -> DataTable:
    """Read, check and encode one file of labeled rows, by the rules of :func:`load_tables`.

    Every row needs a target value; the features are encoded as :func:`load_tables`
    encodes them, but not standardized.

    Parameters
    ----------
    path : path
        A CSV (``.csv``) or Parquet (``.parquet``, ``.pq``) file.
    target : str
        Name of the label column (at least two classes).
    categorical : sequence of str
        Feature columns to one-hot encode even if they hold numbers (see
        :func:`load_tables`).
    id_column : str, optional
        A column that identifies the rows (unique, no missing value): never a feature.
    ignore : sequence of str
        Columns that are not features.
    missing : {"error", "drop", "impute"}, default="error"
        What a missing feature value does: an error naming it; its row is left out; or
        it is filled in (numeric columns: the file's median; text columns: a category of
        its own).
    role : str, default="data"
        How messages name the file (``data file 'path'``).
    progress : callable, optional
        Called as ``progress(what, done, total)`` while the file is read and encoded.

    Returns
    -------
    DataTable

    Raises
    ------
    InputError
        For any problem with the file or options, with a one-line message naming the
        file and, where it applies, the column and the (1-based data) row.
    """
    if missing not in ("error", "drop", "impute"):
        raise InputError(f"--missing must be error, drop or impute, not {q(missing)}")
    report = progress or (lambda what, done, total: None)
    report(f"reading the {role} file{_size(path)}", 0, 1)
    table = read_table(path, role)
    _check_target_present(table, target)
    not_features = _check_roles((table,), target, id_column, ignore)
    columns = _check_same_columns(table, (), target, not_features)
    forced = _check_forced(categorical, target, columns, table)
    _check_target_values(table, target)
    features = _encode_features((table,), columns, forced, missing, report)
    keep = features.keep[0]
    y = table.frame[target].to_numpy()[keep]
    classes = _sorted_unique(y)
    if len(classes) < 2:
        raise InputError(
            f"{table.name} has a single class in target column {q(target)} "
            f"({qv(classes[0])}) in the rows kept; need at least two"
        )
    report("encoding features", 1, 1)
    return DataTable(
        X=features.X[0],
        y=y,
        feature_names=features.names,
        target=target,
        columns=columns,
        categorical=features.categorical,
        rows=np.flatnonzero(keep),
        dropped=int((~keep).sum()),
        imputed=features.imputed,
        table=table,
    )


@dataclass
class _Features:
    """The feature matrices of some files (rows kept only) and how they were made."""

    X: list[np.ndarray]
    keep: list[np.ndarray]
    names: list[str]
    categorical: list[str]
    imputed: int


def _check_forced(
    categorical: Sequence[str], target: str, columns: list[str], reference: Table
) -> list[str]:
    """The ``--categorical`` columns, checked to be feature columns of ``reference``."""
    forced = list(dict.fromkeys(categorical))
    for col in forced:
        if col == target:
            raise InputError(f"--categorical {q(col)} is the target column, not a feature")
        if col not in columns:
            raise InputError(
                f"--categorical {q(col)} is not a feature column of {reference.name} "
                f"(its features: {show_list(columns)})"
            )
    return forced


def _encode_features(
    tables: Sequence[Table],
    columns: list[str],
    forced: list[str],
    missing: str,
    report: Callable[[str, int, int], None],
) -> _Features:
    """Parse, check and encode the feature ``columns`` of ``tables`` (the same layout for
    all): numeric or one-hot, missing values refused, dropped or imputed (with the first
    table's median), the first problem of each table raised as an :class:`InputError`.
    The features are not standardized."""
    prepared = {}
    for i, col in enumerate(columns):
        report("parsing columns", i, len(columns))
        prepared[col] = [column(t, col) for t in tables]
    report("encoding features", 0, 1)
    numeric = {}
    for col, parts in prepared.items():
        if col in forced:
            numeric[col] = False
            continue
        n_present = sum(int((~c.missing).sum()) for c in parts)
        n_numbers = sum(int((~c.missing & ~np.isnan(c.numbers)).sum()) for c in parts)
        numeric[col] = all(c.numeric_dtype for c in parts) or n_numbers > 0.5 * n_present

    keep = [np.ones(len(t), dtype=bool) for t in tables]
    if missing == "drop":
        for k in range(len(tables)):
            for col in columns:
                keep[k] &= ~prepared[col][k].missing
            if not keep[k].any():
                raise InputError(f"{tables[k].name}: every row has a missing feature value")
    for col in columns:
        if not numeric[col]:
            _check_categorical(tables, col, prepared[col], keep, forced=col in forced)

    imputed = 0
    for k, t in enumerate(tables):
        problems = []
        for col in columns:
            c = prepared[col][k]
            skip = c.missing if missing == "impute" else None
            if numeric[col]:
                problem = numeric_problem(t, col, c, keep[k], skip)
            else:
                problem = categorical_problem(t, col, c, keep[k], skip)
            if problem is not None:
                problems.append(problem)
        if problems:
            raise InputError(min(problems, key=lambda p: p[0])[1])
    if missing == "impute":
        for col in columns:
            parts = prepared[col]
            imputed += sum(int((c.missing & keep[k]).sum()) for k, c in enumerate(parts))
            if numeric[col]:
                present = parts[0].numbers[~parts[0].missing & keep[0]]
                fill = float(np.median(present)) if len(present) else 0.0
                for c in parts:
                    c.numbers[c.missing] = fill
            else:
                for c in parts:
                    cells = c.cells()
                    assert cells is not None  # text columns keep their text
                    cells[c.missing] = "(missing)"

    blocks: list[list[np.ndarray]] = [[] for _ in tables]
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
        # Categories of the rows kept; a dropped row's value may be none of them.
        enc = OneHotEncoder(sparse_output=False, dtype=np.float64, handle_unknown="ignore")
        enc.fit(np.concatenate([v[m] for v, m in zip(texts, keep, strict=True)])[:, None])
        for k, values in enumerate(texts):
            blocks[k].append(enc.transform(values[:, None]))
        names.extend(str(n) for n in enc.get_feature_names_out([col]))
    X = [np.hstack(b).astype(np.float64, copy=False)[m] for b, m in zip(blocks, keep, strict=True)]
    return _Features(X, keep, names, cats, imputed)


def _size(path: str | os.PathLike[str]) -> str:
    """`` (342 MB)``: the size of a file, for progress."""
    try:
        return f" ({os.path.getsize(path) / 1e6:,.0f} MB)"
    except OSError:  # read_table names the problem
        return ""


def _check_roles(
    tables: Sequence[Table], target: str, id_column: str | None, ignore: Sequence[str]
) -> set[str]:
    """The columns that are not features (``--id``, ``--ignore``), checked."""
    pool = tables[1] if len(tables) > 1 else tables[0]  # the file that may have ids
    everywhere = {c for t in tables for c in t.frame.columns}
    where = "any of the three files" if len(tables) > 1 else tables[0].name
    for col in ignore:
        if col == target:
            raise InputError(f"--ignore {q(col)} is the target column")
        if col not in everywhere:
            raise InputError(f"--ignore {q(col)} is not a column of {where}")
    if id_column is None:
        return set(ignore)
    if id_column == target:
        raise InputError(f"--id {q(id_column)} is the target column")
    if id_column not in pool.frame.columns:
        raise InputError(
            f"--id {q(id_column)} is not a column of {pool.name} (its columns: "
            f"{show_list(list(pool.frame.columns))})"
        )
    ids = pool.text[id_column] if pool.text is not None else pool.frame[id_column]
    missing = ids.str.strip().isin(NA_STRINGS) if pool.text is not None else ids.isna()
    i = first(missing.to_numpy())
    if i is not None:
        raise InputError(f"{pool.name}: id column {q(id_column)} has no value at {pool.row(i)}")
    dup = ids.duplicated(keep=False).to_numpy()
    i = first(dup)
    if i is not None:
        j = int(np.flatnonzero(dup & (ids == ids.iloc[i]).to_numpy())[1])
        raise InputError(
            f"{pool.name}: id column {q(id_column)} has the value {qv(ids.iloc[i])} at "
            f"{pool.row(i)} and {pool.row(j)}; ids must be unique"
        )
    return {id_column, *ignore}


def _known_labels(pool: Table, target: str) -> np.ndarray:
    """Rows of the unlabeled file that already have a target value."""
    if target not in pool.frame.columns:
        return np.zeros(len(pool), dtype=bool)
    return ~_missing_target(pool, target)


def _check_categorical(
    tables: Sequence[Table], col: str, parts: Sequence[Column], keep: Sequence[np.ndarray],
    *, forced: bool,
) -> None:  # fmt: skip
    """Refuse a text column that cannot be one-hot encoded: nested values, dates and
    times (unless ``--categorical``), or too many distinct values (an id, free text)."""
    hint = f"pass --ignore {q(col)}"
    for t, c in zip(tables, parts, strict=True):
        if c.kind == "nested":
            raise InputError(
                f"{t.name}: column {q(col)} holds nested values ({c.example}, e.g. a "
                f"Parquet list or struct), which salutary cannot use as a feature; flatten "
                f"it into columns of numbers or text, or {hint}"
            )
        if c.kind == "datetime" and not forced:
            raise InputError(
                f"{t.name}: column {q(col)} holds dates or times (e.g. {qv(c.example)}), "
                f"which one-hot encoding would turn into a feature per distinct value; "
                f"convert it to a number (e.g. days since a reference date), or {hint}"
            )
    values: set[object] = set()
    for t, c, m in zip(tables, parts, keep, strict=True):
        values.update(categories(t, col, c)[m & ~c.missing].tolist())
    if len(values) > MAX_CATEGORIES:
        n_rows = sum(int(m.sum()) for m in keep)
        raise InputError(
            f"column {q(col)} is text with {len(values):,} distinct values in {n_rows:,} rows: "
            f"an id or free text, not a category (at most {MAX_CATEGORIES:,} are one-hot "
            f"encoded); pass --id {q(col)} to carry it to the output, or --ignore {q(col)}"
        )
