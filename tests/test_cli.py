"""The command line (salutary.cli): label, run, datasets, and how bad input is reported."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from typer.testing import CliRunner

from salutary import LogisticModel, SalutaryLabeler
from salutary.cli import COMMANDS, app, command
from salutary.cli._common import expand_multiple
from salutary.cli._run_work import parse_strategies, round_columns
from salutary.loop import CHECK_FRACTION, check_seed, held_out_check

FEATURES = ["x1", "x2", "color", "x3", "x4"]
CLASSES = np.array(["cat", "dog", "fish"])
BUDGET, ROUNDS = 5, 3
#: The columns salutary label adds after the unlabeled file's.
EVIDENCE = [
    "salutary_row",
    "salutary_round",
    "salutary_score",
    "salutary_margin",
    "salutary_agrees",
]

runner = CliRunner()


def make_frame(n: int, seed: int, classes=CLASSES) -> pd.DataFrame:
    """Three informative numeric features, one noise feature, one text column, 3 classes."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4)).round(4)
    color = rng.choice(["red", "green", "blue"], size=n)
    logits = 2.0 * X[:, :3] + (color[:, None] == np.array(["red", "green", "blue"]))
    logits += rng.gumbel(size=logits.shape) * 0.5
    y = np.asarray(classes)[logits.argmax(axis=1)]
    y[: len(classes)] = classes
    return pd.DataFrame(
        {"x1": X[:, 0], "x2": X[:, 1], "color": color, "x3": X[:, 2], "x4": X[:, 3], "species": y}
    )


def write(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path


class Files:
    """Labeled, unlabeled and validation files in ``tmp_path/in``; output in ``tmp_path/out``."""

    def __init__(self, tmp_path: Path, ext: str = ".csv", classes=CLASSES) -> None:
        self.dir = tmp_path / "in"
        self.out_dir = tmp_path / "out"
        self.dir.mkdir()
        self.out_dir.mkdir()
        self.lab = make_frame(60, 1, classes)
        self.pool = make_frame(200, 2, classes).drop(columns="species")
        self.val = make_frame(60, 3, classes)
        self.paths = {
            "labeled": write(self.lab, self.dir / f"labeled{ext}"),
            "unlabeled": write(self.pool, self.dir / f"unlabeled{ext}"),
            "validation": write(self.val, self.dir / f"validation{ext}"),
        }
        self.output = self.out_dir / f"result{ext}"

    def args(self, *extra: str, output: Path | None = None, **paths: Path) -> list[str]:
        p = {**self.paths, **paths}
        return [
            "label",
            "--labeled", str(p["labeled"]),
            "--unlabeled", str(p["unlabeled"]),
            "--validation", str(p["validation"]),
            "--target", "species",
            "--budget", str(BUDGET),
            "--rounds", str(ROUNDS),
            "--output", str(output or self.output),
            *extra,
        ]  # fmt: skip


def invoke(args: list[str]):
    return runner.invoke(app, args, env={"COLUMNS": "120"})


def read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)


def assert_ok(result) -> None:
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    assert "Traceback" not in result.output


def assert_bad_input(result, out_dir: Path, *fragments: str) -> str:
    """Exit 2, one ``error:`` line naming the fragments, no traceback, nothing written."""
    assert result.exit_code == 2, (result.stdout, result.stderr, result.exception)
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), result.exception
    err = result.stderr
    assert "Traceback" not in err and "Traceback" not in result.stdout
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert sorted(os.listdir(out_dir)) == [], os.listdir(out_dir)
    return lines[0]


# ---------------------------------------------------------------------------- success


def check_output_frame(out: pd.DataFrame, files: Files, target_dtype_kind: str) -> None:
    assert list(out.columns) == [
        *FEATURES,
        "species",
        *EVIDENCE,
    ]
    assert len(out) == BUDGET * ROUNDS
    # salutary_row points back into the unlabeled file (data rows from 1).
    pool = read(files.paths["unlabeled"])
    back = pool.iloc[out["salutary_row"].to_numpy() - 1][FEATURES].reset_index(drop=True)
    pd.testing.assert_frame_equal(back, out[FEATURES], check_dtype=False)
    assert set(out["species"]) <= set(files.lab["species"])
    assert out["species"].to_numpy().dtype.kind == target_dtype_kind
    assert out["salutary_round"].tolist() == sorted(list(range(1, ROUNDS + 1)) * BUDGET)
    assert out["salutary_score"].dtype == np.float64
    for _, part in out.groupby("salutary_round"):
        assert part["salutary_score"].is_monotonic_decreasing
    assert out["salutary_margin"].dtype == np.float64 and out["salutary_margin"].notna().all()
    assert out["salutary_agrees"].dtype == bool
    # the rows are unlabeled rows, with their original values
    merged = out.merge(files.pool, on=FEATURES, how="left", indicator=True)
    assert (merged["_merge"] == "both").all()


def test_label_csv(tmp_path):
    files = Files(tmp_path)
    result = invoke(files.args())
    assert_ok(result)
    out = read(files.output)
    check_output_frame(out, files, "O")
    assert f"Wrote {BUDGET * ROUNDS} rows" in result.stdout
    assert str(files.output) in result.stdout.replace("\n", "")
    assert os.listdir(files.out_dir) == ["result.csv"]


@pytest.mark.parametrize("ext", [".parquet", ".pq"])
def test_label_parquet_with_integer_labels(tmp_path, ext):
    files = Files(tmp_path, ext, classes=np.array([3, 5, 7]))
    assert_ok(invoke(files.args()))
    out = read(files.output)
    check_output_frame(out, files, "i")


def test_label_same_seed_same_file_other_seed_runs(tmp_path):
    files = Files(tmp_path)
    assert_ok(invoke(files.args("--seed", "4")))
    first = files.output.read_bytes()
    files.output.unlink()
    assert_ok(invoke(files.args("--seed", "4")))
    assert files.output.read_bytes() == first


def test_label_replaces_existing_output_and_csv_to_parquet(tmp_path):
    files = Files(tmp_path)
    out = files.out_dir / "result.parquet"
    out.write_text("old")
    assert_ok(invoke(files.args(output=out)))
    check_output_frame(pd.read_parquet(out), files, "O")


def test_label_unlabeled_file_with_target_column(tmp_path):
    files = Files(tmp_path)
    assert_ok(invoke(files.args()))
    expected = read(files.output)
    pool = files.pool.copy()
    pool.insert(0, "species", "")  # present, empty: ignored and filled in
    write(pool, files.paths["unlabeled"])
    files.output.unlink()
    assert_ok(invoke(files.args()))
    out = read(files.output)
    assert list(out.columns) == [
        "species",
        *FEATURES,
        *EVIDENCE,
    ]
    pd.testing.assert_frame_equal(out[expected.columns], expected)


def encode(files: Files) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The CLI's features and label codes, built independently (one-hot colour, the
    labeled rows' scaling, classes in sorted order)."""
    frames = [files.lab[FEATURES], files.pool[FEATURES], files.val[FEATURES]]
    enc = OneHotEncoder(sparse_output=False).fit(pd.concat([f[["color"]] for f in frames]))
    mats = [
        np.hstack([f[["x1", "x2"]], enc.transform(f[["color"]]), f[["x3", "x4"]]]) for f in frames
    ]
    scaler = StandardScaler().fit(mats[0])
    X_lab, X_pool, X_val = (scaler.transform(m) for m in mats)
    code = {c: i for i, c in enumerate(np.unique(files.lab["species"]))}
    y_lab = files.lab["species"].map(code).to_numpy()
    y_val = files.val["species"].map(code).to_numpy()
    return X_lab, X_pool, X_val, y_lab, y_val


@pytest.mark.parametrize(
    "strategy", [None, "salutary", "salutary-newton", "salutary-newton:steps=1:labels=1"]
)
def test_label_matches_salutary_labeler(tmp_path, strategy):
    """The output equals SalutaryLabeler run on independently preprocessed arrays
    (default strategy: salutary-newton, as SalutaryLabeler's)."""
    files = Files(tmp_path)
    l2, seed = 10.0, 3
    extra = [] if strategy is None else ["--strategy", strategy]
    assert_ok(invoke(files.args("--l2", str(l2), "--seed", str(seed), *extra)))
    out = read(files.output)

    X_lab, X_pool, X_val, y_lab, y_val = encode(files)
    classes = np.unique(files.lab["species"])
    labeler = SalutaryLabeler(
        estimator=LogisticModel(l2=l2, warm_start=True),
        budget=BUDGET,
        rounds=ROUNDS,
        random_state=seed,
        **({} if strategy is None else {"strategy": strategy}),
    ).fit(
        np.vstack([X_lab, X_pool]), np.concatenate([y_lab, np.full(len(X_pool), -1)]), X_val, y_val
    )
    n = len(y_lab)
    rounds = labeler.labeled_iter_[n:]
    chosen = np.flatnonzero(rounds > 0)
    expected = files.pool.iloc[chosen].assign(
        species=classes[labeler.transduction_[n:][chosen]],
        salutary_row=chosen + 1,
        salutary_round=rounds[chosen],
        salutary_score=labeler.salutary_score_[n:][chosen],
        salutary_margin=labeler.salutary_margin_[n:][chosen],
        salutary_agrees=labeler.salutary_agrees_[n:][chosen],
    )
    expected = expected.sort_values(
        ["salutary_round", "salutary_score"], ascending=[True, False]
    ).reset_index(drop=True)
    pd.testing.assert_frame_equal(out, expected, check_dtype=False, rtol=1e-9)
    if strategy == "salutary":  # round 1's evidence, against a dense influence computation
        from test_influence import _dense_influence

        first = out[out["salutary_round"] == 1]
        X_first = X_pool[first["salutary_row"].to_numpy() - 1]
        model = LogisticModel(l2=l2).fit(X_lab, y_lab)
        # The selection sees the validation rows the held-out check leaves it.
        X_steer, y_steer, _, _ = held_out_check(X_val, y_val, CHECK_FRACTION, check_seed(seed))
        assert len(y_steer) == len(y_val) - round(CHECK_FRACTION * len(y_val))
        top2 = np.sort(_dense_influence(model, X_lab, X_steer, y_steer, X_first), axis=1)[:, -2:]
        np.testing.assert_allclose(first["salutary_margin"], top2[:, 1] - top2[:, 0], rtol=1e-6)
        predicted = classes[model.predict(X_first)]
        np.testing.assert_array_equal(first["salutary_agrees"], predicted == first["species"])


def test_label_id_column_is_carried_and_kept_out_of_the_features(tmp_path):
    """A numeric --id column would change the model if it were a feature: the result with
    it equals the result without the column, plus the column; a missing one is named."""
    files = Files(tmp_path)
    assert_ok(invoke(files.args()))
    without = read(files.output)
    files.output.unlink()
    pool = files.pool.assign(key=np.arange(len(files.pool)) * 7.5 + 1000)
    path = write(pool, files.dir / "with_key.csv")
    assert_ok(invoke(files.args("--id", "key", unlabeled=path)))
    out = read(files.output)
    assert list(out.columns) == [*FEATURES, "key", "species", *EVIDENCE]
    np.testing.assert_array_equal(out["key"], pool["key"].iloc[out["salutary_row"] - 1])
    pd.testing.assert_frame_equal(out.drop(columns="key"), without)
    files.output.unlink()
    result = invoke(files.args("--id", "nosuch", unlabeled=path))
    assert_bad_input(result, files.out_dir, "--id 'nosuch' is not a column of")


def test_label_dask_engine_refuses_an_oracle_strategy_before_starting_a_cluster(tmp_path):
    files = Files(tmp_path)
    result = invoke(files.args("--engine", "dask", "--strategy", "margin"))
    assert_bad_input(result, files.out_dir, "--strategy 'margin' needs true labels")


def test_label_strategy_choices_come_from_the_registry():
    from salutary.strategies import oracle_free_strategies

    free = oracle_free_strategies()
    assert free[0] == "salutary-newton" and "salutary-crossfit" in free
    help_text = " ".join(invoke(["label", "--help"]).stdout.split())
    assert all(name in help_text for name in free)


@pytest.mark.parametrize(
    ("spec", "fragments"),
    [
        ("margin", ["--strategy 'margin' needs true labels", "salutary-newton"]),
        ("salutary-newton:bogus=1", ["--strategy:", "no parameter 'bogus'"]),
        ("salutary-newton:objective=accuracy", ["--strategy:", "'objective' parameter"]),
        ("nope", ["--strategy:", "unknown strategy 'nope'"]),
    ],
)
def test_label_strategy_spec_errors(tmp_path, spec, fragments):
    files = Files(tmp_path)
    assert_bad_input(invoke(files.args("--strategy", spec)), files.out_dir, *fragments)


def test_label_shows_loading_progress_on_a_terminal_only(tmp_path):
    files = Files(tmp_path)
    on_terminal = runner.invoke(app, files.args(), env={"COLUMNS": "120", "FORCE_COLOR": "1"})
    assert_ok(on_terminal)
    # The bar redraws 10 times a second: a quick load shows its first and last stages.
    assert " reading " in on_terminal.stderr
    files.output.unlink()
    piped = invoke(files.args())
    assert_ok(piped)
    assert "reading" not in piped.stderr and "parsing columns" not in piped.stderr


def test_label_categorical_option_takes_several_columns(tmp_path):
    files = Files(tmp_path)
    assert_ok(invoke(files.args("--categorical", "color", "x4")))
    assert len(read(files.output)) == BUDGET * ROUNDS
    files.output.unlink()
    bad = invoke(files.args("--categorical", "color", "nope"))
    assert_bad_input(bad, files.out_dir, "--categorical 'nope'", "labeled.csv")


def testexpand_multiple():
    names = {"--strategies", "-s"}
    assert expand_multiple(["--strategies", "a", "b", "--seeds", "2"], names) == [
        "--strategies", "a", "--strategies", "b", "--seeds", "2"
    ]  # fmt: skip
    assert expand_multiple(["-s=a", "b"], names) == ["-s=a", "-s", "b"]
    assert expand_multiple(["--seeds", "2", "x"], names) == ["--seeds", "2", "x"]
    assert expand_multiple(["-s", "a", "--", "b"], names) == ["-s", "a", "--", "b"]


# ----------------------------------------------------------------------------- errors


def _corrupt_parquet(files: Files, tmp: Path) -> dict:
    path = tmp / "unlabeled.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    return {"unlabeled": path}


def _edit_csv(role: str, row: int, column: str, value: object) -> Callable:
    """Set a cell (0-based data row) of one file; the message must say row+1 (line row+2)."""

    def edit(files: Files, tmp: Path) -> dict:
        frame = {"labeled": files.lab, "unlabeled": files.pool, "validation": files.val}[role]
        frame = frame.copy()
        frame[column] = frame[column].astype(object)
        frame.loc[row, column] = value
        return {role: write(frame, tmp / f"{role}_bad.csv")}

    return edit


def _write_file(role: str, name: str, content: bytes) -> Callable:
    def edit(files: Files, tmp: Path) -> dict:
        path = tmp / name
        path.write_bytes(content)
        return {role: path}

    return edit


def _frame_edit(role: str, name: str, change: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable:
    def edit(files: Files, tmp: Path) -> dict:
        frame = {"labeled": files.lab, "unlabeled": files.pool, "validation": files.val}[role]
        return {role: write(change(frame.copy()), tmp / name)}

    return edit


def _set(column, value, rows=slice(None)):
    def change(frame):
        frame[column] = frame[column].astype(object)
        frame.loc[rows, column] = value
        return frame

    return change


BAD_INPUTS = {
    "missing file": (
        lambda f, t: {"labeled": t / "nowhere.csv"},
        (),
        ["labeled file", "nowhere.csv", "does not exist"],
    ),
    "directory": (
        lambda f, t: {"validation": t},
        (),
        ["validation file", "is a directory"],
    ),
    "unsupported extension": (
        _write_file("unlabeled", "pool.txt", b"a,b\n1,2\n"),
        (),
        ["unlabeled file", "pool.txt", "'.txt'"],
    ),
    "corrupt parquet": (
        _corrupt_parquet,
        (),
        ["unlabeled file", "unlabeled.parquet", "Parquet"],
    ),
    "empty file": (
        _write_file("labeled", "empty.csv", b""),
        (),
        ["labeled file", "empty.csv", "empty (0 bytes)"],
    ),
    "header only": (
        _write_file("validation", "header.csv", b"x1,x2,color,x3,x4,species\n"),
        (),
        ["validation file", "header.csv", "no data rows"],
    ),
    "zero-row parquet": (
        _frame_edit("unlabeled", "zero.parquet", lambda f: f.head(0)),
        (),
        ["unlabeled file", "zero.parquet", "no data rows"],
    ),
    "wrong field count": (
        _write_file("labeled", "ragged.csv", b"x1,x2,color,x3,x4,species\n1,2,red,3,4,cat,9\n"),
        (),
        ["labeled file", "ragged.csv", "row 1 (line 2)", "7 fields"],
    ),
    "not utf-8": (
        _write_file("labeled", "latin.csv", b"x1,x2,color,x3,x4,species\n1,2,r\xe9d,3,4,cat\n"),
        (),
        ["labeled file", "latin.csv", "UTF-8", "line 2"],
    ),
    "missing target column": (
        _frame_edit("labeled", "notarget.csv", lambda f: f.rename(columns={"species": "kind"})),
        (),
        ["labeled file", "notarget.csv", "no target column 'species'", "'kind'", "'x1'"],
    ),
    "missing target column in validation": (
        _frame_edit("validation", "notarget.csv", lambda f: f.drop(columns="species")),
        (),
        ["validation file", "notarget.csv", "no target column 'species'"],
    ),
    "empty feature cell": (
        _edit_csv("labeled", 6, "x3", ""),
        (),
        ["labeled file", "labeled_bad.csv", "column 'x3'", "missing value", "row 7 (line 8)"],
    ),
    "nan feature": (
        _edit_csv("unlabeled", 150, "x1", "nan"),
        (),
        ["unlabeled file", "unlabeled_bad.csv", "column 'x1'", "NaN", "row 151 (line 152)"],
    ),
    "nan feature in parquet": (
        _frame_edit("validation", "v.parquet", _set("x4", np.nan, 20)),
        (),
        ["validation file", "v.parquet", "column 'x4'", "NaN", "row 21"],
    ),
    "inf feature": (
        _edit_csv("validation", 0, "x2", "-inf"),
        (),
        ["validation file", "validation_bad.csv", "column 'x2'", "'-inf'", "row 1 (line 2)"],
    ),
    "non-numeric value": (
        _edit_csv("unlabeled", 16, "x2", "abc"),
        (),
        ["unlabeled file", "unlabeled_bad.csv", "column 'x2'", "'abc'", "row 17 (line 18)"],
    ),
    "missing categorical value": (
        _edit_csv("labeled", 9, "color", ""),
        (),
        ["labeled file", "labeled_bad.csv", "column 'color'", "row 10 (line 11)"],
    ),
    "missing target value in labeled": (
        _edit_csv("labeled", 40, "species", ""),
        (),
        ["labeled file", "labeled_bad.csv", "'species'", "row 41 (line 42)"],
    ),
    "missing target value in validation": (
        _edit_csv("validation", 3, "species", "NA"),
        (),
        ["validation file", "validation_bad.csv", "'species'", "row 4 (line 5)"],
    ),
    "unseen validation label": (
        _edit_csv("validation", 12, "species", "bird"),
        (),
        ["validation file", "validation_bad.csv", "row 13 (line 14)", "'bird'", "labeled.csv"],
    ),
    "one class": (
        _frame_edit("labeled", "oneclass.csv", _set("species", "cat")),
        (),
        ["labeled file", "oneclass.csv", "single class", "'species'"],
    ),
    "budget x rounds too large": (
        lambda f, t: {},
        ("--budget", "50", "--rounds", "5"),
        ["unlabeled file", "unlabeled.csv", "50 x 5 = 250", "200 rows"],
    ),
    "columns differ": (
        _frame_edit("validation", "cols.csv", lambda f: f.drop(columns="x4").assign(extra=1.0)),
        (),
        ["validation file", "cols.csv", "lacks 'x4'", "extra 'extra'", "labeled.csv"],
    ),
    "extra column in unlabeled": (
        _frame_edit("unlabeled", "cols.csv", lambda f: f.assign(x5=0.0)),
        (),
        ["unlabeled file", "cols.csv", "extra 'x5'"],
    ),
    "bad output extension": (
        lambda f, t: {},
        ("--output", "OUT/result.xlsx"),
        ["output file", "result.xlsx", "'.xlsx'"],
    ),
    "output directory missing": (
        lambda f, t: {},
        ("--output", "OUT/sub/result.csv"),
        ["output file", "result.csv", "does not exist"],
    ),
    "reserved output column": (
        lambda f, t: {
            role: write(frame.assign(salutary_score=1.0), t / f"{role}_reserved.csv")
            for role, frame in (("labeled", f.lab), ("unlabeled", f.pool), ("validation", f.val))
        },
        (),
        ["unlabeled file", "unlabeled_reserved.csv", "already has a column 'salutary_score'"],
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_label_bad_input(tmp_path, case):
    make, extra, fragments = BAD_INPUTS[case]
    files = Files(tmp_path)
    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    paths = make(files, bad_dir)
    extra = tuple(a.replace("OUT", str(files.out_dir)) for a in extra)
    output = None
    if "--output" in extra:
        output = Path(extra[extra.index("--output") + 1])
        extra = extra[: extra.index("--output")] + extra[extra.index("--output") + 2 :]
    result = invoke(files.args(*extra, output=output, **paths))
    assert_bad_input(result, files.out_dir, *fragments)


def test_label_bad_input_keeps_existing_output(tmp_path):
    files = Files(tmp_path)
    files.output.write_text("previous result\n")
    result = invoke(files.args("--budget", "100", "--rounds", "3"))
    assert result.exit_code == 2
    assert files.output.read_text() == "previous result\n"
    assert os.listdir(files.out_dir) == ["result.csv"]


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can read any file"
)
def test_label_unreadable_file(tmp_path):
    files = Files(tmp_path)
    files.paths["labeled"].chmod(0)
    try:
        result = invoke(files.args())
    finally:
        files.paths["labeled"].chmod(0o644)
    assert_bad_input(result, files.out_dir, "labeled file", "labeled.csv", "permission denied")


def test_label_refuses_to_overwrite_an_input(tmp_path):
    files = Files(tmp_path)
    before = files.paths["unlabeled"].read_bytes()
    result = invoke(files.args(output=files.paths["unlabeled"]))
    assert_bad_input(result, files.out_dir, "output file", "is the unlabeled file")
    assert files.paths["unlabeled"].read_bytes() == before
    assert sorted(os.listdir(files.dir)) == ["labeled.csv", "unlabeled.csv", "validation.csv"]


def test_label_permission_denied(tmp_path, monkeypatch):
    """As the unreadable-file test (skipped as root), with the error simulated."""
    files = Files(tmp_path)
    real_open = Path.open

    def deny(self, *args, **kwargs):
        if self.name == "labeled.csv":
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", deny)
    result = invoke(files.args())
    assert_bad_input(result, files.out_dir, "labeled file", "labeled.csv", "permission denied")


@pytest.mark.parametrize("option", ["--budget", "--rounds"])
def test_label_budget_and_rounds_at_least_one(tmp_path, option):
    files = Files(tmp_path)
    result = invoke([*files.args(), option, "0"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert os.listdir(files.out_dir) == []


def test_label_l2_must_be_positive(tmp_path):
    files = Files(tmp_path)
    result = invoke(files.args("--l2", "0"))
    assert result.exit_code == 2
    assert os.listdir(files.out_dir) == []


# ------------------------------------------------------------- installed console script


def _script() -> str:
    script = Path(sys.executable).with_name("salutary")
    if not script.exists():
        pytest.skip("the salutary console script is not installed next to python")
    return str(script)


def test_console_script(tmp_path):
    files = Files(tmp_path)
    env = {**os.environ, "COLUMNS": "120"}
    ok = subprocess.run(
        [_script(), *files.args()], capture_output=True, text=True, env=env, check=False
    )
    assert ok.returncode == 0, ok.stderr
    # The held-out check's summary line says how many rounds were kept.
    [summary] = [x for x in ok.stdout.splitlines() if x.startswith("held-out accuracy")]
    kept = int(re.search(rf"kept (\d+) of {ROUNDS} rounds", summary).group(1))
    assert len(read(files.output)) == BUDGET * kept
    # 60 validation rows: one warning line, without a source location.
    [line] = [x for x in ok.stderr.splitlines() if "validation set" in x]
    assert line.startswith("warning: the validation set has 60 rows; with fewer than 150")
    files.output.unlink()
    bad = files.pool.copy()
    bad["x3"] = bad["x3"].astype(object)
    bad.loc[4, "x3"] = "n/a?"
    write(bad, files.paths["unlabeled"])
    err = subprocess.run(
        [_script(), *files.args()], capture_output=True, text=True, env=env, check=False
    )
    assert err.returncode == 2
    assert "Traceback" not in err.stderr + err.stdout
    assert err.stderr.splitlines() == [
        f"error: unlabeled file {str(files.paths['unlabeled'])!r}: column 'x3' is numeric but "
        "row 5 (line 6) has the non-numeric value 'n/a?'"
    ]
    assert os.listdir(files.out_dir) == []


# ------------------------------------------------------------------------------- help


@pytest.mark.parametrize("command", [[], ["label"], ["run"], ["datasets"]])
def test_help(command):
    result = invoke([*command, "--help"])
    assert_ok(result)
    assert "Examples" in result.stdout
    if command == ["label"]:
        text = " ".join(result.stdout.split())
        assert "header is not counted" in text
        for option in ("--labeled", "--unlabeled", "--validation", "--target", "--categorical"):
            assert option in text


def _examples(epilog: str) -> list[str]:
    """The example command lines of an epilog (indented, starting with ``salutary``)."""
    return [line.strip() for line in epilog.splitlines() if line.startswith("    salutary")]


@pytest.mark.parametrize("name", COMMANDS)
def test_help_shows_each_example_on_its_own_line(name):
    # typer dedents an epilog whose later lines are all indented, which merged the
    # examples into one line of prose; each must stay a line of its own
    examples = _examples(command(name).epilog)
    assert examples
    result = invoke([name, "--help"])
    assert_ok(result)
    shown = {line.strip() for line in result.stdout.splitlines()}
    for example in examples:
        assert example in shown, example


def test_version():
    result = invoke(["--version"])
    assert_ok(result)
    assert result.stdout.startswith("salutary ")


# -------------------------------------------------------------------- run, datasets


def test_datasets_command():
    result = invoke(["datasets"])
    assert_ok(result)
    for name in ("wine_quality", "electrical_grid", "breast_cancer", "digits", "wine"):
        assert name in result.stdout


def test_run_tiny(tmp_path):
    out = tmp_path / "res"
    result = invoke(
        [
            "run", "--dataset", "breast_cancer", "--seeds", "2", "--rounds", "2",
            "--budget", "5", "--strategies", "random", "salutary", "--initial", "50",
            "--output", str(out),
        ]
    )  # fmt: skip
    assert_ok(result)
    assert sorted(os.listdir(out)) == [
        "config.json", "learning_curve.png", "results.csv", "summary.csv"
    ]  # fmt: skip
    results = pd.read_csv(out / "results.csv")
    assert len(results) == 2 * 2 * 3  # strategies x seeds x (rounds + 1)
    assert set(results["dataset"]) == {"breast_cancer"}
    assert set(results["strategy"]) == {"random", "salutary"}
    assert sorted(results["round"].unique()) == [0, 1, 2]
    assert results.loc[results["round"] == 2, "n_labeled"].eq(60).all()
    summary = pd.read_csv(out / "summary.csv")
    assert len(summary) == 2 * 3
    config = json.loads((out / "config.json").read_text())
    assert config["dataset"] == "breast_cancer"
    assert config["strategies"] == ["random", "salutary"]
    assert config["seeds"] == [0, 1]
    assert (config["budget"], config["rounds"], config["n_initial"]) == (5, 2, 50)
    assert config["dataset_shape"] == {"n_samples": 569, "n_features": 30, "n_classes": 2}
    assert config["salutary_version"]
    png = (out / "learning_curve.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 1000
    stdout = result.stdout
    assert "random" in stdout and "salutary" in stdout and "oracle" in stdout
    assert str(out) in stdout.replace("\n", "")
    assert "±" in stdout  # two seeds: a spread


def test_run_one_seed_shows_no_spread(tmp_path):
    result = invoke(
        [
            "run", "--dataset", "breast_cancer", "--seeds", "1", "--rounds", "1",
            "--budget", "5", "--strategies", "random", "--initial", "50",
            "--output", str(tmp_path / "res"),
        ]
    )  # fmt: skip
    assert_ok(result)
    assert "±" not in result.stdout  # "± 0.000" of one seed would read as certainty
    assert "1 seed" in result.stdout


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--dataset", "nope"], ["unknown dataset 'nope'", "wine_quality"]),
        (["--strategies", "random", "magic"], ["unknown strategy 'magic'", "margin"]),
        (["-s", "salutary-newton:bogus=2"], ["no parameter 'bogus'", "abstain"]),
        (["--budget", "100", "--rounds", "100"], ["100 x 100 = 10000", "breast_cancer"]),
        (["--jobs", "0"], ["--jobs"]),
    ],
)
def test_run_bad_input(tmp_path, args, fragments):
    out = tmp_path / "res"
    base = ["run", "--dataset", "breast_cancer", "--seeds", "1", "--output", str(out)]
    result = invoke([*base, *args])
    tmp_path.joinpath("empty").mkdir()
    assert_bad_input(result, tmp_path / "empty", *fragments)
    assert not out.exists() or os.listdir(out) == []


def testround_columns():
    assert round_columns(10, 20) == list(range(11))
    assert round_columns(30, 20) == [0, 3, 6, 9, 12, 15, 18, 21, 24, 27, 30]
    assert round_columns(10, 4) == [0, 4, 8, 10]
    assert round_columns(1, 1) == [0, 1]


def testparse_strategies():
    from salutary.experiment import DEFAULT_STRATEGIES

    assert parse_strategies(None) == tuple(DEFAULT_STRATEGIES)
    assert parse_strategies(["random,salutary", "random", " margin "]) == (
        "random",
        "salutary",
        "margin",
    )
