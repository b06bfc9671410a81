"""Reading, checking and encoding tabular files (salutary.tabular)."""

from __future__ import annotations

import os
import re

import numpy as np
import pandas as pd
import pytest
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from salutary.tabular import (
    InputError,
    atomic_write,
    check_budget,
    check_output,
    file_format,
    load_tables,
    read_table,
    write_table,
)

FEATURES = ["x1", "x2", "color", "x3", "x4"]
CLASSES = np.array(["cat", "dog", "fish"])


def make_frame(n: int, seed: int, classes=CLASSES) -> pd.DataFrame:
    """Three informative numeric features, one noise feature, one text column."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4)).round(4)
    color = rng.choice(["red", "green", "blue"], size=n)
    logits = 2.0 * X[:, :3] + (color[:, None] == np.array(["red", "green", "blue"]))
    logits += rng.gumbel(size=logits.shape) * 0.5
    y = np.asarray(classes)[logits.argmax(axis=1)]
    y[: len(classes)] = classes  # every class present
    return pd.DataFrame(
        {"x1": X[:, 0], "x2": X[:, 1], "color": color, "x3": X[:, 2], "x4": X[:, 3], "species": y}
    )


def reference_arrays(lab: pd.DataFrame, pool: pd.DataFrame, val: pd.DataFrame, cats=("color",)):
    """Independent preprocessing: one-hot over the union, then scaling fit on labeled."""
    frames = [lab[FEATURES], pool[FEATURES], val[FEATURES]]
    blocks: list[list[np.ndarray]] = [[], [], []]
    for col in FEATURES:
        if col in cats:
            enc = OneHotEncoder(sparse_output=False).fit(
                pd.concat([f[[col]].astype(str) for f in frames])
            )
            for k, f in enumerate(frames):
                blocks[k].append(enc.transform(f[[col]].astype(str)))
        else:
            for k, f in enumerate(frames):
                blocks[k].append(f[[col]].to_numpy(dtype=float))
    mats = [np.hstack(b) for b in blocks]
    scaler = StandardScaler().fit(mats[0])
    return [scaler.transform(m) for m in mats]


@pytest.fixture
def frames():
    lab = make_frame(60, 1)
    pool = make_frame(200, 2).drop(columns="species")
    val = make_frame(60, 3)
    return lab, pool, val


def write(frame: pd.DataFrame, path) -> str:
    if str(path).endswith(".csv"):
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return str(path)


def write_all(tmp_path, lab, pool, val, ext=(".csv", ".csv", ".csv")):
    return (
        write(lab, tmp_path / f"lab{ext[0]}"),
        write(pool, tmp_path / f"pool{ext[1]}"),
        write(val, tmp_path / f"val{ext[2]}"),
    )


def error_of(*args, **kwargs) -> str:
    with pytest.raises(InputError) as info:
        load_tables(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


# ---------------------------------------------------------------------------- success


@pytest.mark.parametrize(
    "ext",
    [(".csv",) * 3, (".parquet",) * 3, (".csv", ".pq", ".parquet")],
    ids=["csv", "parquet", "mixed"],
)
def test_load_tables_matches_reference(tmp_path, frames, ext):
    lab, pool, val = frames
    t = load_tables(*write_all(tmp_path, lab, pool, val, ext), target="species")
    ref = reference_arrays(lab, pool, val)
    for got, want in zip((t.X_labeled, t.X_pool, t.X_val), ref, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert t.feature_names == ["x1", "x2", "color_blue", "color_green", "color_red", "x3", "x4"]
    assert t.categorical == ["color"]
    assert t.columns == FEATURES
    assert list(t.classes) == ["cat", "dog", "fish"]
    np.testing.assert_array_equal(t.classes[t.y_labeled_codes], lab["species"].to_numpy())
    np.testing.assert_array_equal(t.classes[t.y_val_codes], val["species"].to_numpy())
    pd.testing.assert_frame_equal(t.unlabeled, pool, check_dtype=False)
    np.testing.assert_allclose(t.X_labeled.mean(axis=0), 0, atol=1e-12)


def test_integer_labels_keep_their_dtype(tmp_path, frames):
    lab, pool, val = (f.copy() for f in frames)
    codes = {"cat": 3, "dog": 5, "fish": 7}
    lab["species"] = lab["species"].map(codes)
    val["species"] = val["species"].map(codes).astype(float)  # 3.0 is the label 3
    t = load_tables(*write_all(tmp_path, lab, pool, val, (".parquet",) * 3), target="species")
    assert t.classes.dtype.kind == "i"
    assert t.classes.tolist() == [3, 5, 7]
    np.testing.assert_array_equal(t.classes[t.y_val_codes], val["species"].astype(int))


def test_text_labels_that_look_like_numbers(tmp_path, frames):
    lab, pool, val = (f.copy() for f in frames)
    lab["species"] = lab["species"].map({"cat": "1", "dog": "2", "fish": "x"})
    val["species"] = val["species"].map({"cat": "1", "dog": "2", "fish": "2"})
    t = load_tables(*write_all(tmp_path, lab, pool, val), target="species")
    assert [str(c) for c in t.classes] == ["1", "2", "x"]
    assert set(t.y_val_codes.tolist()) <= {0, 1}


def test_an_empty_target_column_in_the_unlabeled_file_changes_nothing(tmp_path, frames):
    lab, pool, val = frames
    ref = load_tables(*write_all(tmp_path, lab, pool, val), target="species")
    pool2 = pool.copy()
    pool2.insert(2, "species", "")  # present but empty
    t = load_tables(*write_all(tmp_path, lab, pool2, val), target="species")
    np.testing.assert_array_equal(t.X_pool, ref.X_pool)
    np.testing.assert_array_equal(t.pool_rows, np.arange(len(pool)))
    assert len(t.known_rows) == 0


@pytest.mark.parametrize("ext", [".csv", ".parquet"])
def test_known_labels_in_the_unlabeled_file_are_labeled_rows(tmp_path, frames, ext):
    """Pool rows with a target value join the labeled rows and leave the pool: they can
    never be relabeled (issue 20: 4 of 103 came back overwritten)."""
    lab, pool, val = frames
    known = np.array([3, 50, 51, 199])
    pool2 = pool.copy()
    pool2["species"] = None
    pool2.loc[known, "species"] = ["dog", "cat", "fish", "dog"]
    paths = write_all(tmp_path, lab, pool2, val, (".csv", ext, ".csv"))
    t = load_tables(*paths, target="species")
    np.testing.assert_array_equal(t.known_rows, known)
    np.testing.assert_array_equal(t.pool_rows, np.setdiff1d(np.arange(len(pool)), known))
    assert len(t.X_pool) == len(pool) - 4 and len(t.X_labeled) == len(lab) + 4
    np.testing.assert_array_equal(t.y_labeled[-4:], ["dog", "cat", "fish", "dog"])
    # The known rows are the labeled file's rows plus them, scaled together.
    both = pd.concat([lab, pool2.loc[known]], ignore_index=True)
    expected = reference_arrays(both, pool2.drop(index=known), val)
    np.testing.assert_allclose(t.X_labeled, expected[0], atol=1e-12)
    np.testing.assert_allclose(t.X_pool, expected[1], atol=1e-12)
    pool2.loc[7, "species"] = "bird"
    write(pool2, paths[1])
    with pytest.raises(InputError, match=r"row 8.* already has the label 'bird'.*never seen"):
        load_tables(*paths, target="species")


def test_column_order_may_differ(tmp_path, frames):
    lab, pool, val = frames
    ref = load_tables(*write_all(tmp_path, lab, pool, val), target="species")
    t = load_tables(*write_all(tmp_path, lab, pool[pool.columns[::-1]], val), target="species")
    np.testing.assert_array_equal(t.X_pool, ref.X_pool)


def test_forced_categorical_and_constant_column(tmp_path, frames):
    lab, pool, val = (f.copy() for f in frames)
    for f in (lab, pool, val):
        f["x4"] = (f["x4"] > 0).astype(int)
        f["const"] = 1.5
    t = load_tables(*write_all(tmp_path, lab, pool, val), target="species", categorical=["x4"])
    assert "x4_0" in t.feature_names and "x4_1" in t.feature_names
    assert "const" in t.feature_names
    for X in (t.X_labeled, t.X_pool, t.X_val):
        assert np.isfinite(X).all()


def test_mostly_text_column_is_categorical(tmp_path, frames):
    lab, pool, val = (f.copy() for f in frames)
    lab["color"] = lab["color"].astype(object)
    lab.loc[3, "color"] = "42"  # a number among words stays a category
    t = load_tables(*write_all(tmp_path, lab, pool, val), target="species")
    assert "color_42" in t.feature_names


def test_read_table_lines_with_blank_lines_and_quoted_newlines(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('a,b\n1,"two\nlines"\n\n3,x\n4,y\n', encoding="utf-8")
    t = read_table(path, "labeled")
    assert len(t) == 3
    assert t.frame["b"].tolist() == ["two\nlines", "x", "y"]
    assert [t.row(i) for i in range(3)] == ["row 1 (line 2)", "row 2 (line 5)", "row 3 (line 6)"]


def test_csv_with_bom_and_crlf(tmp_path, frames):
    lab, pool, val = frames
    paths = write_all(tmp_path, lab, pool, val)
    ref = load_tables(*paths, target="species")
    text = (tmp_path / "lab.csv").read_text().replace("\n", "\r\n")
    (tmp_path / "lab.csv").write_bytes(b"\xef\xbb\xbf" + text.encode())
    np.testing.assert_array_equal(load_tables(*paths, target="species").X_labeled, ref.X_labeled)


# ----------------------------------------------------------------------------- errors


def test_file_errors(tmp_path, frames):
    lab, pool, val = frames
    paths = write_all(tmp_path, lab, pool, val)
    msg = error_of(str(tmp_path / "none.csv"), paths[1], paths[2], target="species")
    assert "labeled file" in msg and "none.csv" in msg and "does not exist" in msg
    (tmp_path / "d.csv").mkdir()
    assert "is a directory" in error_of(paths[0], str(tmp_path / "d.csv"), paths[2], "species")
    (tmp_path / "v.txt").write_text("a,b\n1,2\n")
    msg = error_of(paths[0], paths[1], str(tmp_path / "v.txt"), "species")
    assert "validation file" in msg and "'.txt'" in msg


def test_csv_field_count_and_encoding(tmp_path):
    (tmp_path / "a.csv").write_text("a,b\n1,2\n3,4,5\n")
    with pytest.raises(InputError, match=r"row 2 \(line 3\) has 3 fields but the header has 2"):
        read_table(tmp_path / "a.csv", "labeled")
    (tmp_path / "b.csv").write_bytes(b"a,b\n1,2\n\xff\xfe,3\n")
    with pytest.raises(InputError, match=r"not UTF-8 text \(line 3\)"):
        read_table(tmp_path / "b.csv", "labeled")
    (tmp_path / "c.csv").write_text("a,a\n1,2\n")
    with pytest.raises(InputError, match="duplicate column names: 'a'"):
        read_table(tmp_path / "c.csv", "labeled")
    (tmp_path / "d.csv").write_text("\n\n")
    with pytest.raises(InputError, match="is empty"):
        read_table(tmp_path / "d.csv", "labeled")


def test_parquet_errors(tmp_path, frames):
    lab, pool, val = (f.copy() for f in frames)
    lab.head(0).to_parquet(tmp_path / "empty.parquet")
    with pytest.raises(InputError, match=r"'.*empty\.parquet' has no data rows"):
        read_table(tmp_path / "empty.parquet", "labeled")
    lab.loc[11, "x3"] = np.nan
    paths = write_all(tmp_path, lab, pool, val, (".parquet",) * 3)
    msg = error_of(*paths, target="species")
    assert msg == f"labeled file {paths[0]!r}: column 'x3' has a missing value (NaN) at row 12"
    lab.loc[11, "x3"] = -np.inf
    write(lab, paths[0])
    assert "infinite value -inf at row 12" in error_of(*paths, target="species")


@pytest.mark.parametrize(
    ("role", "value", "expected"),
    [
        ("labeled", "", "column 'x2' has a missing value (empty) at row 8 (line 9)"),
        ("validation", "NA", "column 'x2' has a missing value 'NA' (NaN) at row 8 (line 9)"),
        ("unlabeled", "inf", "column 'x2' has an infinite value 'inf' at row 8 (line 9)"),
        ("unlabeled", "1,5", "column 'x2' is numeric but row 8 (line 9) has the non-numeric "),
    ],
)
def test_bad_numeric_values(tmp_path, frames, role, value, expected):
    lab, pool, val = (f.copy() for f in frames)
    frame = {"labeled": lab, "unlabeled": pool, "validation": val}[role]
    frame["x2"] = frame["x2"].astype(object)
    frame.loc[7, "x2"] = value
    msg = error_of(*write_all(tmp_path, lab, pool, val), target="species")
    assert msg.startswith(f"{role} file ")
    assert expected in msg


def test_first_bad_row_is_reported(tmp_path, frames):
    lab, pool, val = (f.copy() for f in frames)
    lab["x4"] = lab["x4"].astype(object)
    lab.loc[30, "x1"] = np.nan
    lab.loc[4, "x4"] = "oops"
    msg = error_of(*write_all(tmp_path, lab, pool, val), target="species")
    assert "column 'x4'" in msg and "row 5 (line 6)" in msg and "'oops'" in msg


def test_target_and_label_errors(tmp_path, frames):
    lab, pool, val = (f.copy() for f in frames)
    paths = write_all(tmp_path, lab, pool, val)
    msg = error_of(*paths, target="label")
    assert "labeled file" in msg and "no target column 'label'" in msg and "'species'" in msg
    val.loc[9, "species"] = "bird"
    write(val, paths[2])
    msg = error_of(*paths, target="species")
    assert "validation file" in msg and "row 10 (line 11)" in msg and "'bird'" in msg
    val.loc[9, "species"] = None
    write(val, paths[2])
    assert "target column 'species' has no value at row 10 (line 11)" in error_of(*paths, "species")
    lab["species"] = "cat"
    val["species"] = "cat"
    write(lab, paths[0])
    write(val, paths[2])
    assert "single class" in error_of(*paths, target="species")


def test_columns_differ(tmp_path, frames):
    lab, pool, val = frames
    paths = write_all(tmp_path, lab, pool.assign(extra=1), val.drop(columns="x4"))
    msg = error_of(*paths, target="species")
    assert "unlabeled file" in msg and "has extra 'extra'" in msg
    assert "validation file" in msg and "lacks 'x4'" in msg


def test_categorical_errors(tmp_path, frames):
    lab, pool, val = (f.copy() for f in frames)
    pool.loc[3, "color"] = None
    paths = write_all(tmp_path, lab, pool, val)
    msg = error_of(*paths, target="species")
    assert msg.endswith("categorical column 'color' has a missing value at row 4 (line 5)")
    assert "is not a feature column" in error_of(*paths, target="species", categorical=["zz"])
    assert "is the target" in error_of(*paths, target="species", categorical=["species"])


# ---------------------------------------------------------------------- small helpers


def test_check_budget():
    check_budget(10, 10, 100)
    with pytest.raises(InputError, match=r"10 x 11 = 110 exceeds the 100 rows of the pool"):
        check_budget(10, 11, 100)
    with pytest.raises(InputError):
        check_budget(0, 1, 100)


def test_file_format_and_check_output(tmp_path):
    assert file_format("a.CSV") == "csv"
    assert file_format("a.pq") == file_format("b.parquet") == "parquet"
    with pytest.raises(InputError, match="no extension"):
        file_format("a")
    with pytest.raises(InputError, match="does not exist"):
        check_output(tmp_path / "no" / "out.csv")
    assert check_output(tmp_path / "out.parquet") == "parquet"


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old")

    def fail(tmp):
        tmp.write_text("partial")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        atomic_write(target, fail)
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.csv"]
    write_table(pd.DataFrame({"a": [1, 2]}), target)
    assert target.read_text().splitlines() == ["a", "1", "2"]
    write_table(pd.DataFrame({"a": [1, 2]}), tmp_path / "out.pq")
    assert pd.read_parquet(tmp_path / "out.pq")["a"].tolist() == [1, 2]
    assert sorted(os.listdir(tmp_path)) == ["out.csv", "out.pq"]


# ------------------------------------------------------ column roles and guards (issue 20)


def test_id_and_ignored_columns_are_not_features(tmp_path, frames):
    lab, pool, val = frames
    ref = load_tables(*write_all(tmp_path, lab, pool, val), target="species")
    ids = [f"user-{i:05d}" for i in range(len(pool))]
    pool2 = pool.assign(user=ids, note="free text")
    lab2, val2 = lab.assign(note="x"), val.assign(note="y")  # only the pool has the id
    t = load_tables(
        *write_all(tmp_path, lab2, pool2, val2), target="species", id_column="user",
        ignore=["note"],
    )  # fmt: skip
    np.testing.assert_array_equal(t.X_pool, ref.X_pool)
    assert t.columns == ref.columns and "user" in t.unlabeled.columns


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda p: p.assign(user="same"), "has the value 'same' at row 1 (line 2) and row 2"),
        (
            lambda p: p.assign(user=[None] + [f"u{i}" for i in range(1, len(p))]),
            "no value at row 1",
        ),
        (lambda p: p, "--id 'user' is not a column of unlabeled file"),
    ],
)
def test_bad_id_column(tmp_path, frames, change, fragment):
    lab, pool, val = frames
    pool2 = change(pool.assign(user=[f"u{i}" for i in range(len(pool))]))
    if "not a column" in fragment:
        pool2 = pool2.drop(columns="user")
    paths = write_all(tmp_path, lab, pool2, val)
    with pytest.raises(InputError, match=re.escape(fragment)):
        load_tables(*paths, target="species", id_column="user")


def test_ignore_needs_an_existing_column(tmp_path, frames):
    paths = write_all(tmp_path, *frames)
    with pytest.raises(InputError, match="--ignore 'nope' is not a column"):
        load_tables(*paths, target="species", ignore=["nope"])


@pytest.mark.parametrize("ext", [".csv", ".parquet"])
def test_an_id_like_text_column_is_refused_before_encoding(tmp_path, frames, ext):
    """A unique string per row used to be one-hot encoded: 100,000 ids, 75 GiB."""
    lab, pool, val = frames
    n = 1200
    big = pd.concat([pool] * 6, ignore_index=True).iloc[:n]
    frames2 = [f.assign(email=[f"{k}{i}@x.org" for i in range(len(f))]) for k, f in
               (("l", lab), ("p", big), ("v", val))]  # fmt: skip
    paths = write_all(tmp_path, *frames2, (ext, ext, ext))
    with pytest.raises(InputError, match=r"column 'email' is text with 1,320 distinct values.*"
                       r"--id 'email'.*--ignore 'email'"):  # fmt: skip
        load_tables(*paths, target="species")


def test_dates_are_refused_unless_forced_categorical(tmp_path, frames):
    lab, pool, val = frames
    stamp = lambda f: f.assign(day=pd.date_range("2024-01-01", periods=len(f), freq="h"))  # noqa: E731
    for ext in (".csv", ".parquet"):
        paths = write_all(tmp_path, stamp(lab), stamp(pool), stamp(val), (ext, ext, ext))
        with pytest.raises(
            InputError, match=r"column 'day' holds dates or times \(e\.g\. '2024-01-01"
        ):
            load_tables(*paths, target="species")
    t = load_tables(*paths, target="species", categorical=["day"])  # asked for: one-hot
    assert any(n.startswith("day_") for n in t.feature_names)


def test_nested_parquet_columns_are_refused(tmp_path, frames):
    lab, pool, val = frames
    nest = lambda f: f.assign(lst=[[i, i + 1] for i in range(len(f))])  # noqa: E731
    paths = write_all(tmp_path, nest(lab), nest(pool), nest(val), (".parquet",) * 3)
    with pytest.raises(InputError, match="column 'lst' holds nested values"):
        load_tables(*paths, target="species")


def with_gaps(f: pd.DataFrame, rows, col="x2") -> pd.DataFrame:
    f = f.copy()
    f.loc[rows, col] = np.nan
    return f


def test_missing_values_error_drop_or_impute(tmp_path, frames):
    lab, pool, val = frames
    lab2, pool2 = with_gaps(lab, [5]), with_gaps(pool, [0, 9])
    pool2.loc[3, "color"] = None
    paths = write_all(tmp_path, lab2, pool2, val)
    with pytest.raises(InputError, match=r"column 'x2' has a missing value .* row 6"):
        load_tables(*paths, target="species")
    dropped = load_tables(*paths, target="species", missing="drop")
    assert dropped.dropped == {"labeled": 1, "unlabeled": 3, "validation": 0}
    np.testing.assert_array_equal(dropped.pool_rows, np.setdiff1d(np.arange(len(pool)), [0, 3, 9]))
    expected = reference_arrays(lab.drop(index=[5]), pool.drop(index=[0, 3, 9]), val)
    np.testing.assert_allclose(dropped.X_pool, expected[1], atol=1e-12)
    imputed = load_tables(*paths, target="species", missing="impute")
    assert imputed.imputed == 4 and len(imputed.X_pool) == len(pool)
    median = float(np.median(lab2["x2"].dropna()))
    filled = [f.fillna({"x2": median, "color": "(missing)"}) for f in (lab2, pool2, val)]
    expected = reference_arrays(*filled)
    np.testing.assert_allclose(imputed.X_pool, expected[1], atol=1e-12)


def test_duplicate_parquet_column_names_are_named(tmp_path):
    """Arrow's message was 'Multiple matches for FieldRef.Name(x) in x: double x: ...'."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table([pa.array([1.0, 2.0]), pa.array([3.0, 4.0]), pa.array(["a", "b"])],
                     names=["x", "x", "y"])  # fmt: skip
    pq.write_table(table, tmp_path / "dup.parquet")
    with pytest.raises(InputError, match=r"^labeled file '.*dup\.parquet' has duplicate column "
                       r"names: 'x'$"):  # fmt: skip
        read_table(tmp_path / "dup.parquet", "labeled")


def test_load_tables_reports_progress_over_files_and_columns(tmp_path, frames):
    lab, pool, val = frames
    calls = []
    load_tables(
        *write_all(tmp_path, lab, pool, val), target="species",
        progress=lambda what, done, total: calls.append((what, done, total)),
    )  # fmt: skip
    reading = [c for c in calls if c[0].startswith("reading the")]
    assert [c[1:] for c in reading] == [(0, 3), (1, 3), (2, 3)]
    assert "labeled file (" in reading[0][0] and " MB)" in reading[0][0]
    n_features = lab.shape[1] - 1
    parsing = [c for c in calls if c[0] == "parsing columns"]
    assert [c[1] for c in parsing] == list(range(n_features))
    assert {c[2] for c in parsing} == {n_features}
    assert calls[-1] == ("encoding features", 1, 1)
