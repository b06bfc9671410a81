"""Every file a user brings, every signal (issue 20): no silent garbage, no traceback,
nothing half-written. Each case failed before the change that made it pass."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_cli import FEATURES, Files, assert_bad_input, assert_ok, invoke, make_frame, read, write

import salutary.cli._label_work as label_module
from salutary.cli import Terminated
from salutary.datasets import load_frame


def test_an_unexpected_error_is_one_line_with_a_log_of_the_traceback(tmp_path, monkeypatch):
    files = Files(tmp_path)

    def boom(*args, **kwargs):
        raise RuntimeError("something\nbroke")

    monkeypatch.setattr(label_module, "label_pool", boom)
    result = invoke(files.args())
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if "error" in line]  # not progress
    assert len(lines) == 1 and lines[0].startswith("error: RuntimeError: something broke (a bug;")
    log = Path(lines[0].rsplit("traceback in ", 1)[1].rstrip(")"))
    assert "Traceback" in log.read_text() and "boom" in log.read_text()
    log.unlink()
    assert "Traceback" not in result.output and os.listdir(files.out_dir) == []


@pytest.mark.parametrize(("exc", "code", "word"), [(KeyboardInterrupt, 130, "interrupted"),
                                                   (Terminated, 143, "terminated")])  # fmt: skip
def test_an_interrupt_while_writing_leaves_nothing(tmp_path, monkeypatch, exc, code, word):
    """The output is written to a temporary file; an interrupt in the middle removes it
    (SIGTERM used to leave a hidden 9 MB .tmp.csv)."""
    files = Files(tmp_path)
    real = pd.DataFrame.to_csv

    def half_then_stop(self, path, **kwargs):
        real(self.iloc[: len(self) // 2], path, **kwargs)
        assert os.listdir(files.out_dir)  # the temporary file is there, half written
        raise exc

    monkeypatch.setattr(pd.DataFrame, "to_csv", half_then_stop)
    result = invoke(files.args())
    assert result.exit_code == code
    assert result.stderr.strip().splitlines()[-1] == f"error: {word}"
    assert os.listdir(files.out_dir) == []


def _script() -> str:
    script = Path(sys.executable).with_name("salutary")
    if not script.exists():
        pytest.skip("the salutary console script is not installed next to python")
    return str(script)


def _big_files(tmp_path: Path, n_pool: int = 40_000) -> Files:
    files = Files(tmp_path)
    big = make_frame(n_pool, 9).drop(columns="species")
    files.paths["unlabeled"] = write(big, files.dir / "big.csv")
    return files


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signals_end_the_console_script_quietly(tmp_path, sig, code):
    """Early (while Python imports) and in the middle of the work: status 130 or 143,
    one line at most, no traceback, no file left behind."""
    files = _big_files(tmp_path)
    # One row a round for hours: the signal always arrives in the middle of the work.
    args = [_script(), *files.args("--budget", "1", "--rounds", "30000", "--no-check")]
    for delay in (0.3, 8.0):
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        assert proc.poll() is None, "the run ended before the signal"
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == code, (delay, err)
        assert "Traceback" not in err + out, err
        errors = [line for line in err.splitlines() if line.startswith("error:")]
        assert errors in ([], [f"error: {'interrupted' if code == 130 else 'terminated'}"]), err
        assert os.listdir(files.out_dir) == []


def test_tiny_l2_no_longer_ends_in_a_linalg_traceback(tmp_path):
    """--l2 1e-16 on separable data made the Newton step's Cholesky factorization fail
    after round 1 (a 147-line LinAlgError); the step now falls back to a pseudo-inverse."""
    frame = load_frame("electrical_grid").sample(frac=1, random_state=0)
    d = tmp_path / "in"
    d.mkdir()
    frame[:200].to_csv(d / "lab.csv", index=False)
    frame[200:1200].to_csv(d / "val.csv", index=False)
    frame[1200:3200].drop(columns="stabf").to_csv(d / "pool.csv", index=False)
    out = tmp_path / "out.csv"
    paths = ["-l", str(d / "lab.csv"), "-u", str(d / "pool.csv"), "-V", str(d / "val.csv")]
    # --no-check: every round runs (the held-out check could stop the run before the
    # factorization that failed).
    result = invoke(["label", *paths, "-t", "stabf", "--l2", "1e-16", "--no-check", "-o", str(out)])
    assert_ok(result)
    assert len(pd.read_csv(out)) == 100


def test_an_unwritable_output_directory_is_found_before_the_work(tmp_path, monkeypatch):
    """It used to be noticed only after every round had run."""
    files = Files(tmp_path)

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    def never(*args, **kwargs):
        raise AssertionError("the labeling started")

    monkeypatch.setattr("salutary.tabular._write.tempfile.NamedTemporaryFile", denied)
    monkeypatch.setattr(label_module, "label_pool", never)
    result = invoke(files.args())
    assert_bad_input(result, files.out_dir, "cannot write in directory", "permission denied")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes anywhere")
def test_a_read_only_output_directory_is_found_before_the_work(tmp_path):
    files = Files(tmp_path)
    files.out_dir.chmod(0o555)
    try:
        result = invoke(files.args())
    finally:
        files.out_dir.chmod(0o755)
    assert_bad_input(result, files.out_dir, "cannot write in directory")


def test_id_column_is_carried_and_rows_point_back(tmp_path):
    files = Files(tmp_path)
    pool = files.pool.assign(user=[f"user-{i:04d}" for i in range(len(files.pool))])
    path = write(pool, files.dir / "with_id.csv")
    assert_ok(invoke(files.args("--id", "user", unlabeled=path)))
    out = read(files.output)
    assert list(out.columns) == [*FEATURES, "user", "species", "salutary_row",
                                 "salutary_round", "salutary_score", "salutary_margin",
                                 "salutary_agrees"]  # fmt: skip
    np.testing.assert_array_equal(out["user"], pool["user"].iloc[out["salutary_row"] - 1])
    # Without --id the extra column is a feature the other files lack: refused.
    files.output.unlink()
    assert_bad_input(invoke(files.args(unlabeled=path)), files.out_dir, "has extra 'user'")


def test_an_id_like_column_is_one_line_not_an_out_of_memory_crash(tmp_path):
    files = Files(tmp_path)
    frames = {role: f.assign(email=[f"{role}{i}@x.org" for i in range(len(f))])
              for role, f in (("l", files.lab), ("v", files.val))}  # fmt: skip
    big = pd.concat([files.pool] * 6, ignore_index=True)
    frames["p"] = big.assign(email=[f"p{i}@x.org" for i in range(len(big))])
    paths = {k: write(frames[v], files.dir / f"{k}_email.csv")
             for k, v in (("labeled", "l"), ("unlabeled", "p"), ("validation", "v"))}  # fmt: skip
    result = invoke(files.args(**paths))
    assert_bad_input(result, files.out_dir, "column 'email' is text with", "--id 'email'",
                     "--ignore 'email'")  # fmt: skip
    assert_ok(invoke(files.args("--ignore", "email", **paths)))


def test_dates_and_nested_columns_are_refused(tmp_path):
    files = Files(tmp_path, ext=".parquet")
    stamp = {k: write(f.assign(when=pd.date_range("2024-01-01", periods=len(f), freq="D")),
                      files.dir / f"{k}_when.parquet")
             for k, f in (("labeled", files.lab), ("unlabeled", files.pool),
                          ("validation", files.val))}  # fmt: skip
    assert_bad_input(invoke(files.args(**stamp)), files.out_dir, "column 'when' holds dates")
    nest = {k: write(f.assign(tags=[[1, 2]] * len(f)), files.dir / f"{k}_tags.parquet")
            for k, f in (("labeled", files.lab), ("unlabeled", files.pool),
                         ("validation", files.val))}  # fmt: skip
    assert_bad_input(invoke(files.args(**nest)), files.out_dir, "column 'tags' holds nested")


def test_known_labels_in_the_pool_are_never_overwritten(tmp_path):
    """4 of 103 known labels used to come back overwritten with a different label."""
    files = Files(tmp_path)
    pool = files.pool.copy()
    pool["species"] = None
    known = np.arange(0, 200, 2)
    pool.loc[known, "species"] = make_frame(200, 2)["species"].iloc[known].to_numpy()
    path = write(pool, files.dir / "half_known.csv")
    result = invoke(files.args(unlabeled=path))
    assert_ok(result)
    assert "100 rows of the unlabeled file" in result.stderr
    out = read(files.output)
    assert not np.isin(out["salutary_row"] - 1, known).any()  # only the unlabeled rows


def test_missing_values_can_be_dropped_or_imputed(tmp_path):
    files = Files(tmp_path)
    pool = files.pool.copy()
    pool.loc[[4, 5], "x1"] = np.nan
    path = write(pool, files.dir / "gaps.csv")
    assert_bad_input(invoke(files.args(unlabeled=path)), files.out_dir, "column 'x1' has a missing")
    result = invoke(files.args("--missing", "drop", unlabeled=path))
    assert_ok(result)
    assert "rows left out for missing values: 2 of the unlabeled file" in result.stderr
    assert not np.isin(read(files.output)["salutary_row"], [5, 6]).any()
    result = invoke(files.args("--missing", "impute", unlabeled=path))
    assert_ok(result)
    assert "2 missing feature values imputed" in result.stderr


def test_report_never_replaces_the_report_of_another_store(tmp_path):
    from salutary.cli import app  # noqa: F401  (the same app the invoke helper runs)

    store, other = tmp_path / "store", tmp_path / "other"
    args = ["bench", "-d", "breast_cancer", "-p", "paper", "-s", "random", "-n", "1"]
    assert_ok(invoke([*args, "--store", str(store)]))
    assert_ok(invoke([*args, "--store", str(other)]))
    first = invoke(["report", "--store", str(store)])  # default: next to the store
    assert_ok(first)
    assert (tmp_path / "store-report" / "REPORT.md").exists()
    out = tmp_path / "store-report"
    before = (out / "runs.csv").read_bytes()
    refused = invoke(["report", "--store", str(other), "--output", str(out)])
    assert refused.exit_code == 2 and "holds the report of store" in refused.stderr
    assert (out / "runs.csv").read_bytes() == before
    assert_ok(invoke(["report", "--store", str(store), "--output", str(out)]))  # same store
    assert_ok(invoke(["report", "--store", str(other), "--output", str(out), "--force"]))
    (out / ".salutary-report.json").unlink()  # a report of unknown origin is kept too
    unknown = invoke(["report", "--store", str(store), "--output", str(out)])
    assert unknown.exit_code == 2 and "an unknown store" in unknown.stderr
