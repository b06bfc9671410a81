"""Property-based tests (Hypothesis): the input layer and the influence engine.

* Random frames (random column types, missing values, infinities, odd names and text,
  integers, booleans, dates), written as CSV or Parquet, through ``salutary label``:
  the command ends with status 0 and a complete output, or status 2 with one
  ``error:`` line and nothing written. Never a traceback, never another status.
* Random CSV texts (quotes, commas and line breaks in cells, CR/LF/CRLF line ends, blank
  lines, a byte-order mark, ragged rows): every cell reads as Python's csv module reads
  it, each row is placed on the line it starts on, or the file is refused.
* Random cells (numbers in many spellings, missing-value words with blanks around them,
  huge and tiny numbers, text, dates) in a CSV or Parquet column: the column parses
  exactly as each cell parses alone (``pandas.to_numeric`` of the stripped text).
* Random well-posed problems (size, features, classes, penalty, intercept, weights):
  the closed-form influence equals the dense oracle (the explicit per-sample Hessian,
  pseudo-inverted).

How many examples each property runs is fixed below (``EXAMPLES``), so CI runs the same
amount of work every time; ``derandomize`` makes the examples themselves reproducible.
"""

from __future__ import annotations

import csv
import io
import os
import string
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_cli import invoke

from salutary import InfluenceFactors, LogisticModel
from salutary.exceptions import InputError
from salutary.tabular._columns import column as parse_column
from salutary.tabular._read import NA_STRINGS, NAN_WORDS, read_table

EXAMPLES = {"files": 100, "csv_text": 100, "cells": 100, "influence": 100}

# Odd column names: blanks, unicode, punctuation, digits first.
NAMES = st.text(
    alphabet=st.sampled_from(string.ascii_letters + string.digits + " _-.,;#é€中\t"),
    min_size=1,
    max_size=12,
).filter(lambda s: s.strip() != "" and s not in ("y",))
CELL_TEXT = st.text(
    alphabet=st.sampled_from(string.ascii_letters + " ,\"';\né€"), min_size=0, max_size=8
)


KINDS = ["float", "int", "bool", "few"]


@st.composite
def random_column(draw, n: int, clean: bool, kind: str):
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    if kind == "float":
        values = rng.normal(size=n) * draw(st.sampled_from([1.0, 1e6, 1e-6]))
        if not clean and draw(st.booleans()):
            values[rng.random(n) < 0.1] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
        return pd.Series(values)
    if kind == "int":
        return pd.Series(rng.integers(-5, 5, size=n))
    if kind == "bool":
        return pd.Series(rng.random(n) < 0.5)
    if kind == "date":
        return pd.Series(pd.date_range("2020-01-01", periods=n, freq="D"))
    if kind == "few":
        return pd.Series(rng.choice(["a", "b", "c"], size=n))
    values = [draw(CELL_TEXT) for _ in range(n)]
    if kind == "mixed":
        values = [v if i % 3 else str(i) for i, v in enumerate(values)]
    return pd.Series(values, dtype=object)


@st.composite
def files(draw):
    """Half the cases are clean (they should succeed), half adversarial."""
    clean = draw(st.booleans())
    n_feat = draw(st.integers(1, 4))
    names = draw(st.lists(NAMES, min_size=n_feat, max_size=n_feat, unique=True))
    sizes = {"labeled": draw(st.integers(2, 25)), "unlabeled": draw(st.integers(1, 25)),
             "validation": draw(st.integers(1, 25))}  # fmt: skip
    # A column has one kind in every file when the case is clean; anything goes otherwise.
    kinds = KINDS if clean else [*KINDS, "text", "mixed", "date"]
    kind_of = {name: draw(st.sampled_from(kinds)) for name in names}
    frames = {}
    for role, n in sizes.items():
        frame = pd.DataFrame({
            name: draw(random_column(
                n, clean, kind_of[name] if clean else draw(st.sampled_from(kinds))
            ))
            for name in names
        })  # fmt: skip
        if role != "unlabeled" or draw(st.booleans()):
            choices = ["p", "q"] if clean else ["p", "q", "r", ""]
            labels = draw(st.lists(st.sampled_from(choices), min_size=n, max_size=n))
            if clean and role == "labeled":
                labels[:2] = ["p", "q"]  # two classes
            frame["y"] = labels if role != "unlabeled" else [""] * n
        frames[role] = frame
    ext = draw(st.sampled_from([".csv", ".parquet"]))
    return frames, ext, clean


@settings(
    max_examples=EXAMPLES["files"],
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(case=files())
def test_any_files_end_in_a_result_or_one_error_line(tmp_path_factory, case):
    frames, ext, clean = case
    folder = tmp_path_factory.mktemp("in")
    out_dir = tmp_path_factory.mktemp("out")
    paths = {}
    for role, frame in frames.items():
        path = Path(folder) / f"{role}{ext}"
        if ext == ".csv":
            frame.to_csv(path, index=False)
        else:
            frame.to_parquet(path, index=False)
        paths[role] = path
    output = Path(out_dir) / f"out{ext}"
    result = invoke([
        "label", "-l", str(paths["labeled"]), "-u", str(paths["unlabeled"]),
        "-V", str(paths["validation"]), "-t", "y", "-b", "1", "-r", "1", "-o", str(output),
    ])  # fmt: skip
    text = result.stdout + result.stderr
    assert "Traceback" not in text, text
    assert result.exit_code in (0, 2), (result.exit_code, text, result.exception)
    if result.exit_code == 2:
        errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1, result.stderr
        assert os.listdir(out_dir) == []
    else:
        written = pd.read_csv(output) if ext == ".csv" else pd.read_parquet(output)
        # One row, or none when the held-out check dropped the round.
        assert len(written) <= 1 and os.listdir(out_dir) == [output.name]
    if clean:  # clean files always work, unless too few validation rows to hold 30% out
        too_small = "too small to hold out" in result.stderr and "--no-check" in result.stderr
        assert result.exit_code == 0 or too_small, (text, frames)


FIELD = st.text(alphabet=st.sampled_from('ab1 ,"\n\r\t;é'), min_size=0, max_size=6)


@st.composite
def csv_texts(draw):
    """A CSV text: a header, rows of quoted or bare fields (some ragged), odd line ends."""
    width = draw(st.integers(1, 4))
    header = [f"c{j}" for j in range(width)]
    ragged = draw(st.booleans())
    rows = []
    for _ in range(draw(st.integers(0, 8))):
        n = draw(st.integers(1, width + 1)) if ragged else width
        rows.append(draw(st.lists(FIELD, min_size=n, max_size=n)))
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator=draw(st.sampled_from(["\n", "\r\n", "\r"]))).writerows(
        [header, *rows]
    )
    text = buffer.getvalue()
    if draw(st.booleans()):  # blank lines between records
        text = text.replace("\nc0", "\n\nc0").replace("\n", "\n\n", 1)
    if draw(st.booleans()) and text.count('"') and not ragged:  # a cell with a stray quote
        text = text.replace('"', "", 1)
    return ("\ufeff" if draw(st.booleans()) else "") + text


@settings(max_examples=EXAMPLES["csv_text"], deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(text=csv_texts())
def test_csv_cells_and_lines_are_those_of_the_csv_module(tmp_path, text):
    path = tmp_path / "t.csv"
    path.write_bytes(text.encode("utf-8"))
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""), strict=False)
    records, starts, start = [], [], 1
    for record in reader:
        if record:
            records.append(record)
            starts.append(start)
        start = reader.line_num + 1
    header, rows = records[0], records[1:]
    well_formed = rows and all(len(r) == len(header) for r in rows)
    if not well_formed:
        try:
            read_table(path, "labeled")
        except InputError as exc:
            assert "\n" not in str(exc) and str(path) in str(exc)
        else:
            raise AssertionError("a ragged or empty file was read")
        return
    table = read_table(path, "labeled")
    assert table.text is not None
    assert [[table.text[c].iat[i] for c in header] for i in range(len(rows))] == rows
    assert [table.row(i) for i in range(len(rows))] == [
        f"row {i + 1} (line {starts[i + 1]})" for i in range(len(rows))
    ]


NUMBER_SPELLINGS = st.one_of(
    st.floats(allow_nan=False, width=64).map(repr),
    st.floats(allow_nan=False, width=64).map(lambda v: f"{v:.6e}"),
    st.integers(-(2**70), 2**70).map(str),
    st.integers(0, 999).map(lambda v: f"{v:05d}"),
    st.sampled_from(["1e500", "-1e-400", ".5", "5.", "+3", "1_000", "0x1f", "1,5", "1e5",
                     "inf", "-inf", "Infinity", "INF", "True", "false", "2020-01-02",
                     "2020-01-02 10:00:00", "1/2/2020"]),
)  # fmt: skip
MISSING_SPELLINGS = st.sampled_from(sorted(NA_STRINGS | NAN_WORDS | {"NONE", "nAn", "Null"}))
CELL = st.one_of(
    NUMBER_SPELLINGS,
    MISSING_SPELLINGS,
    st.text(alphabet=st.sampled_from("ab e-."), min_size=1, max_size=4),
).flatmap(lambda v: st.sampled_from([v, f" {v}", f"{v} ", f"  {v}  "]))


def cell_oracle(cell: str | None, csv_file: bool) -> tuple[bool, float]:
    """Whether one cell is missing, and its number (NaN: none), parsed alone."""
    if cell is None:
        return True, np.nan
    stripped = cell.strip()
    if stripped.lower() in NAN_WORDS or (csv_file and stripped in NA_STRINGS):
        return True, np.nan
    value = pd.to_numeric(pd.Series([stripped], dtype=object), errors="coerce").iloc[0]
    return False, float(value)


@settings(max_examples=EXAMPLES["cells"], deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(
    cells=st.one_of(
        st.lists(CELL, min_size=1, max_size=30),
        st.lists(NUMBER_SPELLINGS, min_size=1, max_size=30),  # columns pandas reads as numbers
        st.lists(st.one_of(NUMBER_SPELLINGS, MISSING_SPELLINGS), min_size=1, max_size=30),
    ),
    ext=st.sampled_from([".csv", ".parquet"]),
)
def test_a_column_parses_as_each_cell_alone(tmp_path, cells, ext):
    path = tmp_path / f"t{ext}"
    frame = pd.DataFrame({"x": pd.Series(cells, dtype=object), "y": range(len(cells))})
    if ext == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    got = parse_column(read_table(path, "labeled"), "x")
    expected = [cell_oracle(c, ext == ".csv") for c in cells]
    missing = np.array([m for m, _ in expected])
    numbers = np.array([v for _, v in expected])
    np.testing.assert_array_equal(got.missing, missing)
    # Bit for bit: the same float, not a neighbour.
    np.testing.assert_array_equal(got.numbers.view(np.int64)[~np.isnan(numbers)],
                                  numbers.view(np.int64)[~np.isnan(numbers)])  # fmt: skip
    assert np.isnan(got.numbers[np.isnan(numbers)]).all()
    assert got.numeric_dtype == bool(np.all(missing | ~np.isnan(numbers)))
    text = got.cells()
    assert text is not None
    assert [t for t, m in zip(text, missing, strict=True) if not m] == [
        c for c, m in zip(cells, missing, strict=True) if not m
    ]
    assert all(t is None for t, m in zip(text, missing, strict=True) if m)


def dense_oracle(model, X, X_val, y_val, X_pool, w):
    """Influence from the explicitly assembled per-sample Hessian, pseudo-inverted."""
    classes = model.classes_
    K = len(classes)
    k = 1 if K == 2 else K
    Xa = np.hstack([X, np.ones((len(X), 1))]) if model.fit_intercept else X
    theta = np.hstack([model.coef_, model.intercept_[:, None]]) if model.fit_intercept else (
        model.coef_
    )  # fmt: skip
    d1 = Xa.shape[1]

    def proba(A):
        Z = A @ theta.T
        if k == 1:
            return 1 / (1 + np.exp(-Z))
        Z = Z - Z.max(axis=1, keepdims=True)
        return np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True)

    P = proba(Xa)
    H = np.zeros((k * d1, k * d1))
    for i in range(len(Xa)):
        p = P[i]
        C = np.diag(p * (1 - p)) if k == 1 else np.diag(p) - np.outer(p, p)
        H += w[i] * np.kron(C, np.outer(Xa[i], Xa[i]))
    mask = np.ones((k, d1))
    if model.fit_intercept:
        mask[:, -1] = 0
    H += np.diag(model.l2 * mask.ravel())
    Va = np.hstack([X_val, np.ones((len(X_val), 1))]) if model.fit_intercept else X_val
    Pv = proba(Va)
    idx = np.searchsorted(classes, y_val)
    Y = np.zeros_like(Pv)
    if k == 1:
        Y[:, 0] = idx == 1
    else:
        Y[np.arange(len(idx)), idx] = 1
    g = ((Pv - Y).T @ Va).ravel()
    V = (np.linalg.pinv(H) @ g).reshape(k, d1)
    Pa = np.hstack([X_pool, np.ones((len(X_pool), 1))]) if model.fit_intercept else X_pool
    S = Pa @ V.T  # (n_pool, k)
    p = proba(Pa)
    if k == 1:  # classes 0 and 1: s = [0, s1], p = [1 - sigma, sigma]
        s1 = S[:, 0]
        return np.stack([p[:, 0] * s1, (p[:, 0] - 1) * s1], axis=1)
    return (p * S).sum(axis=1, keepdims=True) - S


@settings(max_examples=EXAMPLES["influence"], deadline=None, derandomize=True)
@given(
    n=st.integers(20, 60),
    d=st.integers(1, 4),
    k=st.integers(2, 4),
    l2=st.sampled_from([0.1, 1.0, 10.0]),
    fit_intercept=st.booleans(),
    weighted=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_closed_form_influence_equals_the_dense_oracle(n, d, k, l2, fit_intercept, weighted, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n + 30, d))
    W = rng.normal(size=(k, d))
    y = (X @ W.T + rng.gumbel(size=(n + 30, k))).argmax(axis=1)
    y[:k] = np.arange(k)  # every class in the training part
    X_tr, y_tr, X_val, y_val, X_pool = X[:n], y[:n], X[n : n + 20], y[n : n + 20], X[n + 20 :]
    keep = np.isin(y_val, y_tr)
    X_val, y_val = X_val[keep], y_val[keep]
    if len(y_val) == 0:
        return
    w = rng.uniform(0.5, 2.0, size=n) if weighted else np.ones(n)
    model = LogisticModel(l2=l2, fit_intercept=fit_intercept).fit(
        X_tr, y_tr, sample_weight=w if weighted else None
    )
    factors = InfluenceFactors().fit(
        model, X_tr, X_val, y_val, sample_weight=w if weighted else None
    )
    expected = dense_oracle(model, X_tr, X_val, y_val, X_pool, w)
    got = factors.score(X_pool)
    scale = max(np.abs(expected).max(), 1e-12)
    np.testing.assert_allclose(got / scale, expected / scale, atol=1e-7)
