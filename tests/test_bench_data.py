"""``salutary bench --data FILE --target COL``: a user's own file benchmarked like a
registered dataset.

The reference is the ordinary path: :func:`run_grid` on the registered dataset the file
was written from (its arrays come from the registry, not from the file reader).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from salutary.benchmark import ResultStore, grid, run_grid
from salutary.cli import app
from salutary.datasets import load_dataset, load_frame
from salutary.tabular import InputError, load_table

PROTOCOLS = ["paper", "fair"]
STRATEGIES = ["random", "salutary", "margin"]
SEEDS = 2
N_RUNS = len(PROTOCOLS) * len(STRATEGIES) * SEEDS
VOLATILE = ["seconds", "run_seconds"]  # wall times: the only columns that may differ
GRID = ["-p", *PROTOCOLS, "-s", *STRATEGIES, "-n", str(SEEDS), "--quiet"]


def invoke(args: list[str]):
    return CliRunner().invoke(app, ["bench", *args])


def _stable(frame: pd.DataFrame) -> pd.DataFrame:
    """The stored rounds without the dataset's name and the wall times, in one order."""
    return (
        frame.drop(columns=["dataset", *VOLATILE])
        .sort_values(["protocol", "strategy", "seed", "round"])
        .reset_index(drop=True)
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The bundled Pima set (numbers, text labels) as a CSV and a Parquet file."""
    folder = tmp_path_factory.mktemp("files")
    frame = load_frame("pima")
    frame.to_csv(folder / "diabetes.csv", index=False)
    frame.to_parquet(folder / "diabetes.parquet")
    return folder


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> pd.DataFrame:
    """The same grid on the registered dataset ``pima``."""
    store = ResultStore(tmp_path_factory.mktemp("reference") / "store")
    outcome = run_grid(store, grid(["pima"], PROTOCOLS, STRATEGIES, range(SEEDS)))
    assert not outcome.failed and len(outcome.ran) == N_RUNS
    return _stable(store.load())


@pytest.fixture(scope="module")
def csv_store(files, reference, tmp_path_factory) -> ResultStore:
    store = ResultStore(tmp_path_factory.mktemp("csv") / "store")
    args = ["--data", str(files / "diabetes.csv"), "--target", "class", "--store", str(store.path)]
    result = invoke([*args, *GRID])
    assert result.exit_code == 0, result.output
    assert f"{N_RUNS} runs done, 0 already stored" in result.output
    return store


def test_file_reader_gives_the_registrys_arrays(files):
    registered = load_dataset("pima")
    for name in ("diabetes.csv", "diabetes.parquet"):
        table = load_table(files / name, "class")
        np.testing.assert_array_equal(table.X, registered.X)
        assert table.X.dtype == np.float64
        assert table.y.tolist() == registered.y.tolist()
        assert table.feature_names == registered.feature_names


def test_csv_stores_the_registered_datasets_results_under_the_files_stem(csv_store, reference):
    loaded = csv_store.load()
    assert set(loaded["dataset"]) == {"diabetes"}
    assert {k.dataset for k in csv_store.done()} == {"diabetes"}
    assert len(csv_store.done()) == N_RUNS
    pd.testing.assert_frame_equal(_stable(loaded), reference, check_exact=True)


def test_parquet_stores_what_csv_stores(files, csv_store, tmp_path):
    store = tmp_path / "store"
    data = str(files / "diabetes.parquet")
    result = invoke(["--data", data, "-t", "class", "--name", "diabetes", "--store", str(store),
                     *GRID])  # fmt: skip
    assert result.exit_code == 0, result.output
    pd.testing.assert_frame_equal(
        ResultStore(store).load().drop(columns=VOLATILE),
        csv_store.load().drop(columns=VOLATILE),
        check_exact=True,
    )


def test_two_processes_store_what_one_stores_and_a_rerun_resumes(files, csv_store, tmp_path):
    store = tmp_path / "store"
    args = ["--data", str(files / "diabetes.csv"), "-t", "class", "--store", str(store), *GRID]
    result = invoke([*args, "--jobs", "2"])
    assert result.exit_code == 0, result.output
    pd.testing.assert_frame_equal(
        ResultStore(store).load().drop(columns=VOLATILE),
        csv_store.load().drop(columns=VOLATILE),
        check_exact=True,
    )
    # The same command again runs nothing; one more seed runs only that seed.
    again = invoke(args)
    assert f"0 runs done, {N_RUNS} already stored, 0 failed" in again.output
    more = invoke([*args, "-n", str(SEEDS + 1)])
    assert more.exit_code == 0, more.output
    n_new = len(PROTOCOLS) * len(STRATEGIES)
    assert f"{n_new} runs done, {N_RUNS} already stored, 0 failed" in more.output


def test_a_local_dask_cluster_stores_what_one_process_stores(files, csv_store, tmp_path):
    pytest.importorskip("distributed")
    store = tmp_path / "store"
    result = invoke(["--data", str(files / "diabetes.csv"), "-t", "class", "--store", str(store),
                     "--engine", "dask", "--jobs", "2", *GRID])  # fmt: skip
    assert result.exit_code == 0, result.output
    pd.testing.assert_frame_equal(
        ResultStore(store).load().drop(columns=VOLATILE),
        csv_store.load().drop(columns=VOLATILE),
        check_exact=True,
    )


def test_report_reads_the_files_dataset_from_the_store(csv_store, tmp_path):
    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["report", "--store", str(csv_store.path), "-o", str(out)])
    assert result.exit_code == 0, result.output
    text = (out / "REPORT.md").read_text()
    assert "diabetes" in text
    runs = pd.read_csv(out / "runs.csv")
    assert set(runs["dataset"]) == {"diabetes"} and len(runs) == N_RUNS


def test_text_columns_and_missing_values_follow_the_label_rules(tmp_path):
    frame = pd.DataFrame(
        {
            "size": [1.0, 2.0, None, 4.0, 5.0, 6.0],
            "color": ["red", "blue", "red", "green", "blue", "red"],
            "row_id": ["a", "b", "c", "d", "e", "f"],
            "y": ["no", "yes", "no", "yes", "no", "yes"],
        }
    )
    frame.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(InputError, match=r"column 'size' has a missing value .* row 3 \(line 4\)"):
        load_table(tmp_path / "t.csv", "y", id_column="row_id")
    table = load_table(tmp_path / "t.csv", "y", id_column="row_id", missing="drop")
    assert table.feature_names == ["size", "color_blue", "color_green", "color_red"]
    assert table.rows.tolist() == [0, 1, 3, 4, 5] and table.dropped == 1
    np.testing.assert_array_equal(table.X[:, 0], [1, 2, 4, 5, 6])
    np.testing.assert_array_equal(table.X[:, 1:].sum(axis=1), np.ones(5))
    assert table.y.tolist() == ["no", "yes", "yes", "no", "yes"]
    imputed = load_table(tmp_path / "t.csv", "y", ignore=["row_id"], missing="impute")
    assert imputed.imputed == 1 and imputed.X[2, 0] == 4.0  # the median of 1, 2, 4, 5, 6


def _bad_inputs(folder) -> dict[str, tuple[list[str], str]]:
    """Arguments, and what the one error line must say."""
    good = load_frame("pima")
    good.to_csv(folder / "ok.csv", index=False)
    bad = good.astype({"mass": object})
    bad.loc[6, "mass"] = "heavy"
    bad.to_csv(folder / "bad_value.csv", index=False)
    dated = good.assign(when="2024-01-01")
    dated.to_csv(folder / "dated.csv", index=False)
    good.to_csv(folder / "my__data.csv", index=False)
    ok = str(folder / "ok.csv")
    return {
        "missing file": (
            ["--data", str(folder / "nope.csv"), "-t", "class"],
            f"data file {str(folder / 'nope.csv')!r} does not exist",
        ),
        "missing target": (
            ["--data", ok, "-t", "label"],
            f"data file {ok!r} has no target column 'label'",
        ),
        "non-numeric value": (
            ["--data", str(folder / "bad_value.csv"), "-t", "class"],
            "column 'mass' is numeric but row 7 (line 8) has the non-numeric value 'heavy'",
        ),
        "dates": (
            ["--data", str(folder / "dated.csv"), "-t", "class"],
            "column 'when' holds dates or times",
        ),
        "name with __": (
            ["--data", ok, "-t", "class", "--name", "a__b"],
            "--name 'a__b': a dataset name is letters, digits",
        ),
        "stem with __": (
            ["--data", str(folder / "my__data.csv"), "-t", "class"],
            "dataset name 'my__data' (the stem of --data file",
        ),
        "name with a separator": (
            ["--data", ok, "-t", "class", "--name", "a/b"],
            "--name 'a/b': a dataset name is",
        ),
        "registered name": (
            ["--data", ok, "-t", "class", "--name", "pima"],
            "--name 'pima' is the name of a registered dataset",
        ),
        "with --datasets": (
            ["--data", ok, "-t", "class", "--datasets", "pima"],
            "--data and --datasets cannot be used together",
        ),
        "no target": (["--data", ok], "--data needs --target COLUMN"),
        "target without data": (["-d", "pima", "-t", "class"], "--target needs --data FILE"),
        "ignoring the target": (
            ["--data", ok, "-t", "class", "--ignore", "class", "--name", "x"],
            "--ignore 'class' is the target column",
        ),
    }


def test_bad_input_is_one_line_and_creates_no_store(tmp_path):
    for case, (args, expected) in _bad_inputs(tmp_path).items():
        store = tmp_path / f"store-{case.replace(' ', '-')}"
        result = invoke([*args, "--store", str(store), "-p", "paper", "-s", "random", "-n", "1"])
        lines = result.output.strip().splitlines()
        assert result.exit_code == 2, (case, result.output)
        assert len(lines) == 1 and lines[0].startswith("error: "), (case, result.output)
        assert expected in lines[0], (case, lines[0])
        assert "Traceback" not in result.output
        assert not store.exists(), case


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        (3, "cannot be split by protocol 'paper' (3 rows, 2 classes)"),
        (40, "has too few rows for protocol 'paper': its 40 rows leave an unlabeled pool of"),
    ],
)
def test_a_file_too_small_for_the_protocol_is_one_line(rows, expected, tmp_path):
    frame = load_frame("pima").groupby("class").head(rows // 2 + 1)[:rows]
    frame.to_csv(tmp_path / "small.csv", index=False)
    store = tmp_path / "store"
    result = invoke(["--data", str(tmp_path / "small.csv"), "-t", "class", "--store", str(store),
                     "-p", "paper", "-s", "random", "-n", "1"])  # fmt: skip
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: data file") and expected in result.output
    assert len(result.output.strip().splitlines()) == 1 and not store.exists()
