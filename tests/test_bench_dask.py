"""``salutary bench`` on a Dask cluster: the same stored results as the local engine,
resumable, one-line errors.

One real ``LocalCluster`` of two worker processes on 127.0.0.1 serves the module; the
reference is the local engine (``run_grid`` without a client) on the same grid.
"""

from __future__ import annotations

import os
import socket
import sys

import pandas as pd
import pytest
from typer.testing import CliRunner

pytest.importorskip("distributed")

from salutary.benchmark import ResultStore, grid, run_grid
from salutary.cli import app

KEYS = grid(["breast_cancer"], ["paper"], ["random", "salutary", "margin"], [0, 1])
VOLATILE = ["seconds", "run_seconds"]  # wall times: the only columns that may differ
ARGS = ["bench", "-d", "breast_cancer", "-p", "paper", "-s", "random", "salutary", "margin",
        "-n", "2"]  # fmt: skip


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> pd.DataFrame:
    """The grid run by the ordinary ``salutary bench`` (the local engine, one process)."""
    store = ResultStore(tmp_path_factory.mktemp("reference"))
    result = invoke([*ARGS, "--store", str(store.path)])
    assert result.exit_code == 0 and "6 runs done" in result.output, result.output
    assert store.done() == set(KEYS)
    return _stable(store.load())


def _stable(frame: pd.DataFrame) -> pd.DataFrame:
    return (
        frame.drop(columns=VOLATILE)
        .sort_values(["strategy", "seed", "round"])
        .reset_index(drop=True)
    )


def invoke(args: list[str]):
    return CliRunner().invoke(app, args)


def test_cli_on_a_scheduler_stores_the_local_engines_results_and_resumes(
    client, reference, tmp_path
):
    store = ResultStore(tmp_path / "store")
    args = [*ARGS, "--store", str(store.path), "--scheduler", client.scheduler.address]
    first = invoke(args)
    assert first.exit_code == 0, (first.output, first.exception)
    assert "6 runs done, 0 already stored, 0 failed" in first.output
    assert store.done() == set(KEYS) and store.claimed() == {}
    pd.testing.assert_frame_equal(_stable(store.load()), reference, check_exact=True)
    # Again: nothing runs, no file is rewritten.
    stamps = {p.name: p.stat().st_mtime_ns for p in store.path.glob("*.parquet")}
    again = invoke(args)
    assert again.exit_code == 0 and "0 runs done, 6 already stored" in again.output
    assert {p.name: p.stat().st_mtime_ns for p in store.path.glob("*.parquet")} == stamps
    # Two runs lost: only those run, and the store is whole again.
    lost = sorted(KEYS)[:2]
    for key in lost:
        (store.path / key.filename).unlink()
    resumed = invoke(args)
    assert "2 runs done, 4 already stored" in resumed.output, resumed.output
    assert all(
        (store.path / name).stat().st_mtime_ns == stamp
        for name, stamp in stamps.items()
        if name not in {k.filename for k in lost}
    )
    pd.testing.assert_frame_equal(_stable(store.load()), reference, check_exact=True)


def test_an_interrupted_cluster_grid_gives_back_its_claims_and_resumes(client, reference, tmp_path):
    store = ResultStore(tmp_path / "store")
    seen = []

    def interrupt_after_two(key, error):
        assert error is None
        seen.append(key)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_grid(store, KEYS, client=client, on_done=interrupt_after_two)
    assert store.done() == set(seen) and store.claimed() == {}
    outcome = run_grid(store, KEYS, client=client)
    assert set(outcome.skipped) == set(seen)
    assert set(outcome.ran) == set(KEYS) - set(seen) and not outcome.failed
    pd.testing.assert_frame_equal(_stable(store.load()), reference, check_exact=True)


def test_runs_on_threads_of_one_worker_and_a_failed_run_is_reported(
    reference, tmp_path, monkeypatch
):
    """Two runs at a time in one process share the one-BLAS-thread limit and the cache
    of first fits; a run that fails is reported and not stored, the others are."""
    from distributed import Client, LocalCluster

    import salutary.benchmark.runner as runner

    bad = grid(["breast_cancer"], ["budget1pct"], ["random"], [0])[0]
    original = runner.PROTOCOLS["budget1pct"]
    monkeypatch.setitem(
        runner.PROTOCOLS, "budget1pct", type(original)(**{**original.__dict__, "budget": 10**6})
    )
    store = ResultStore(tmp_path / "store")
    with (
        LocalCluster(
            processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None
        ) as cluster,  # fmt: skip
        Client(cluster, set_as_default=False) as threads,
    ):
        outcome = run_grid(store, [*KEYS, bad], client=threads)
    assert set(outcome.failed) == {bad} and "exceeds the pool" in outcome.failed[bad]
    assert store.done() == set(KEYS) and store.claimed() == {}
    pd.testing.assert_frame_equal(_stable(store.load()), reference, check_exact=True)


def test_engine_dask_starts_a_local_cluster_of_jobs_workers(reference, tmp_path):
    store = ResultStore(tmp_path / "store")
    args = [*ARGS[:7], "-n", "1", "--store", str(store.path), "--engine", "dask", "-j", "1"]
    result = invoke([*args, "--json", "-q"])
    assert result.exit_code == 0, (result.output, result.exception)
    assert '"engine": "dask"' in result.stdout and '"ran": 1' in result.stdout
    expected = reference[(reference["strategy"] == "random") & (reference["seed"] == 0)]
    pd.testing.assert_frame_equal(
        _stable(store.load()), expected.reset_index(drop=True), check_exact=True
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--scheduler", "tcp://127.0.0.1:PORT"], "cannot connect to dask scheduler"),
        (["--engine", "dask", "--scheduler", "no-port-here"], "cannot connect to dask"),
        (["--engine", "local", "--scheduler", "tcp://127.0.0.1:1"], "drop --engine local"),
        (["--scheduler", "tcp://127.0.0.1:1", "-j", "2"], "cannot be used with --scheduler"),
        (["--engine", "dask", "--engine", "nope"], "Invalid value for '--engine'"),
    ],
)
def test_bad_engine_options_are_one_line_and_write_nothing(tmp_path, extra, fragment):
    store = tmp_path / "store"
    extra = [e.replace("PORT", str(_free_port())) for e in extra]
    result = invoke([*ARGS, "--store", str(store), *extra])
    assert result.exit_code == 2, (result.output, result.exception)
    assert fragment in result.stderr and "Traceback" not in result.output
    if fragment.startswith("Invalid"):  # a usage error: typer's own box
        return
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert not store.exists()


def test_without_dask_the_engine_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed fails
    store = tmp_path / "store"
    result = invoke([*ARGS, "--store", str(store), "--engine", "dask"])
    assert result.exit_code == 2
    assert result.stderr == "error: --engine dask needs dask: pip install 'salutary[dask]'\n"
    assert not store.exists() and not os.listdir(tmp_path)
