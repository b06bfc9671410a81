"""Scoring on Dask (salutary.distributed) equals the in-memory path bit for bit.

One real ``LocalCluster`` of two worker processes on 127.0.0.1 serves the module.
"""

from __future__ import annotations

import itertools
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

pytest.importorskip("dask")
pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")

from salutary import InfluenceFactors, LogisticModel, SalutaryLabeler  # noqa: E402
from salutary import distributed as sd  # noqa: E402
from salutary.cli import app  # noqa: E402
from salutary.distributed._arrays import plan  # noqa: E402
from salutary.pool import ArrayPool, top_k  # noqa: E402
from salutary.strategies import STRATEGIES, get_strategy  # noqa: E402

D = 24


def fit_factors(n_classes: int, seed: int = 0) -> InfluenceFactors:
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(n_classes, D))
    X_lab, X_val = rng.normal(size=(300, D)), rng.normal(size=(150, D))
    y_lab = (X_lab @ W.T + rng.gumbel(size=(300, n_classes))).argmax(1)
    y_val = (X_val @ W.T + rng.gumbel(size=(150, n_classes))).argmax(1)
    model = LogisticModel(l2=5.0).fit(X_lab, y_lab)
    return InfluenceFactors().fit(model, X_lab, X_val, y_val)


@pytest.fixture(scope="module", params=[2, 4], ids=["binary", "multiclass"])
def factors(request) -> InfluenceFactors:
    return fit_factors(request.param)


def make_pool(n: int, seed: int = 1, dtype=np.float64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, D)).astype(dtype)
    X[n // 2 : n // 2 + 40] = X[3]  # duplicate rows: tied scores
    return X


def in_memory(factors, X, budget, seed, exclude=None):
    """The reference: best_labels on the remaining rows, then strategies.top_k."""
    rest = np.setdiff1d(np.arange(len(X)), [] if exclude is None else exclude)
    labels, scores = factors.best_labels(X[rest])
    idx = top_k(scores, budget, np.random.default_rng(seed))
    return rest[idx], factors.classes_[labels[idx]], scores[idx]


def assert_same(got, expected) -> None:
    for g, e in zip(got, expected, strict=True):
        assert g.dtype == e.dtype
        np.testing.assert_array_equal(g, e)


# Uneven partitions: a 1-row one (a matrix-vector product in BLAS), an empty one,
# and boundaries that cut through the 4096-row scoring chunks.
UNEVEN = (4095, 1, 7000, 0, 3, 8190, 711)


def test_import_salutary_does_not_import_dask():
    code = (
        "import sys, salutary, salutary.cli._label_work, salutary.distributed; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_plan_scores_the_in_memory_chunks():
    exclude = np.array([0, 5, 4100, 4101, 9000])
    tasks = plan([4096, 10, 5000, 1], exclude, 4096)
    n_rem = 4096 + 10 + 5000 + 1 - len(exclude)
    assert [(t.q0, t.q1) for t in tasks] == [(0, 4096), (4096, 8192), (8192, n_rem)]
    assert all(t.q0 % 4096 == 0 for t in tasks)
    for t in tasks:  # rows handed to a task, minus its dropped ones, are its chunk
        rows = sum(hi - lo for _, lo, hi in t.pieces) - len(t.drop)
        assert rows == t.q1 - t.q0


@pytest.mark.parametrize("use_client", [True, False], ids=["cluster", "threads"])
def test_dask_array_uneven_chunks(client, factors, use_client):
    X = make_pool(sum(UNEVEN))
    pool = da.from_array(X, chunks=(UNEVEN, -1))
    cl = client if use_client else None
    expected = in_memory(factors, X, 37, seed=5)
    assert_same(sd.select_salutary(factors, pool, 37, 5, client=cl), expected)

    labels, scores = factors.best_labels(X)
    lazy = sd.score_pool(factors, pool, client=cl)
    got = client.compute(list(lazy), sync=True) if use_client else da.compute(*lazy)
    assert_same(got, (labels, scores))  # every score, bit for bit


def test_unknown_partition_sizes_and_split_columns(client, factors):
    X = make_pool(10000)
    keep = np.random.default_rng(3).random(len(X)) < 0.7
    pool = da.from_array(X, chunks=(3000, 7))[da.from_array(keep, chunks=3000)]
    assert np.isnan(pool.chunks[0][0]) and len(pool.chunks[1]) > 1
    expected = in_memory(factors, X[keep], 20, seed=4)
    assert_same(sd.select_salutary(factors, pool, 20, 4, client=client), expected)
    assert_same(sd.select_salutary(factors, X[keep], 20, 4, client=client), expected)


def test_influence_matrix(client, factors):
    X = make_pool(9000)
    pool = da.from_array(X, chunks=((1, 4500, 4499), -1))
    got = client.compute(sd.score_pool(factors, pool, output="influence", client=client))
    np.testing.assert_array_equal(got.result(), factors.score(X))


def test_float32_pool_and_exclude(client, factors):
    X = make_pool(12000, dtype=np.float32)
    pool = da.from_array(X, chunks=((3000, 3000, 6000), -1))
    exclude = np.random.default_rng(2).choice(len(X), 500, replace=False)
    expected = in_memory(factors, X, 25, seed=1, exclude=exclude)
    got = sd.select_salutary(factors, pool, 25, 1, client=client, exclude=exclude)
    assert_same(got, expected)
    assert got[2].dtype == np.float32
    assert not np.isin(got[0], exclude).any()


def test_generator_seed_is_advanced_like_top_k(client, factors):
    X = make_pool(5000)
    pool = da.from_array(X, chunks=(1700, -1))
    rng_a, rng_b = np.random.default_rng(9), np.random.default_rng(9)
    for _ in range(2):
        _, scores = factors.best_labels(X)
        idx = top_k(scores, 10, rng_a)
        rows, _, _ = sd.select_salutary(factors, pool, 10, rng_b, client=client)
        np.testing.assert_array_equal(rows, idx)
    assert rng_a.integers(1 << 30) == rng_b.integers(1 << 30)


def test_parquet_directory(client, factors, tmp_path):
    X = make_pool(10000)
    columns = [f"f{j}" for j in range(D)]
    frame = pd.DataFrame(X, columns=columns)
    frame.insert(0, "id", np.arange(len(X)))  # not a feature
    folder = tmp_path / "pool"
    folder.mkdir()
    bounds = [0, 2500, 2501, 7000, 10000]
    for i, (a, b) in enumerate(itertools.pairwise(bounds)):
        frame.iloc[a:b].to_parquet(folder / f"part-{i:02d}.parquet", index=False)
    read_back = pd.read_parquet(folder)[columns].to_numpy()
    np.testing.assert_array_equal(read_back, X)
    expected = in_memory(factors, X, 30, seed=3)
    for source in (str(folder), str(folder / "*.parquet")):
        got = sd.select_salutary(factors, source, 30, 3, client=client, feature_columns=columns)
        assert_same(got, expected)
    ddf = dd.read_parquet(str(folder))
    assert_same(
        sd.select_salutary(factors, ddf, 30, 3, client=client, feature_columns=columns), expected
    )
    with pytest.raises(TypeError, match="non-numeric"):
        sd.select_salutary(factors, ddf.assign(id=ddf["id"].astype(str)), 3, 0)


def test_ties_equal_top_k(client):
    """Few distinct rows, many copies: ties everywhere, broken as top_k breaks them."""
    factors = fit_factors(3, seed=4)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(5, D))[rng.integers(0, 5, size=9000)]
    pool = da.from_array(X, chunks=((1000, 3000, 5000), -1))
    _, scores = factors.best_labels(X)
    assert len(np.unique(scores)) <= 5
    for seed in range(3):
        rows, _, got_scores = sd.select_salutary(factors, pool, 50, seed, client=client)
        np.testing.assert_array_equal(rows, top_k(scores, 50, np.random.default_rng(seed)))
        np.testing.assert_array_equal(got_scores, scores[rows])


def test_distributed_top_k_with_ties_and_nan():
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 6, size=3000).astype(np.float64)
    scores[::97] = np.nan
    labels = rng.integers(0, 3, size=3000)
    chunks = (7, 993, 1, 1999)
    for k in (1, 10, 3000, 5000):
        rows, lab, sc = sd.distributed_top_k(
            da.from_array(labels, chunks=(chunks,)),
            da.from_array(scores, chunks=(chunks,)),
            k,
            11,
            split_every=2,
        )
        expected = top_k(scores, k, np.random.default_rng(11))
        np.testing.assert_array_equal(rows, expected)
        np.testing.assert_array_equal(lab, labels[expected])
        np.testing.assert_array_equal(sc, scores[expected])


def test_tiebreak_limit(monkeypatch, factors):
    monkeypatch.setattr(sd._scoring, "MAX_TIEBREAK_ROWS", 100)
    pool = da.from_array(make_pool(101), chunks=(50, -1))
    with pytest.raises(ValueError, match="MAX_TIEBREAK_ROWS"):
        sd.select_salutary(factors, pool, 5, 0)


@pytest.mark.parametrize("strategy", ["salutary", "salutary-newton"])
def test_label_rounds_equal_salutary_labeler(client, strategy):
    factors_data = np.random.default_rng(7)
    W = factors_data.normal(size=(3, D))

    def sample(n):
        X = factors_data.normal(size=(n, D))
        return X, (X @ W.T + factors_data.gumbel(size=(n, 3))).argmax(1)

    (X_lab, y_lab), (X_val, y_val), (X_pool, _) = sample(120), sample(100), sample(9000)
    model = LogisticModel(l2=20.0, warm_start=True)
    labeler = SalutaryLabeler(
        model,
        budget=6,
        rounds=3,
        strategy=strategy,
        random_state=2,
        train_on_validation=False,
        check_fraction=None,
    ).fit(
        np.vstack([X_lab, X_pool]), np.concatenate([y_lab, np.full(len(X_pool), -1)]), X_val, y_val
    )
    pool = sd.scatter_pool(X_pool, client, rows_per_partition=4096)
    done, final = sd.label_rounds(
        model, X_lab, y_lab, pool, X_val, y_val, budget=6, rounds=3, random_state=2,
        client=client, strategy=strategy,
    )  # fmt: skip
    n = len(y_lab)
    for r in done:
        rows = np.flatnonzero(labeler.labeled_iter_[n:] == r.round)
        np.testing.assert_array_equal(np.sort(r.rows), rows)
        np.testing.assert_array_equal(r.labels, labeler.transduction_[n:][r.rows])
        np.testing.assert_array_equal(r.scores, labeler.salutary_score_[n:][r.rows])
    np.testing.assert_array_equal(final.coef_, labeler.estimator_.coef_)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_selects_the_same_on_a_dask_pool(client, name):
    """One selection per registered strategy, on an ArrayPool and on a DaskPool with
    uneven partitions and rows already removed: the same picks, labels, scores and asks."""
    rng = np.random.default_rng(11)
    W = rng.normal(size=(3, D))

    def sample(n):
        X = rng.normal(size=(n, D))
        return X, (X @ W.T + rng.gumbel(size=(n, 3))).argmax(1)

    (X_lab, y_lab), (X_val, y_val), (X_pool, _) = sample(200), sample(160), sample(9000)
    model = LogisticModel(l2=20.0).fit(X_lab, y_lab)
    removed = np.arange(0, 9000, 7)
    strategy = get_strategy(name if name != "salutary-newton" else f"{name}:uncertain=0.3")
    memory = ArrayPool(X_pool)
    memory.remove(removed)
    on_dask = sd.DaskPool(da.from_array(X_pool, chunks=((2000, 1, 4999, 2000), -1)), client)
    on_dask.remove(removed)
    kw = dict(X_val=X_val, y_val=y_val, trusted=np.ones(len(y_lab), bool))
    if name in ("badge", "coreset"):  # these need the whole pool in memory
        with pytest.raises(ValueError, match="every pool row in memory"):
            strategy.select(model, X_lab, y_lab, on_dask, 30, rng=np.random.default_rng(5), **kw)
        return
    a = strategy.select(model, X_lab, y_lab, memory, 30, rng=np.random.default_rng(5), **kw)
    b = strategy.select(model, X_lab, y_lab, on_dask, 30, rng=np.random.default_rng(5), **kw)
    np.testing.assert_array_equal(b.indices, a.indices)
    np.testing.assert_array_equal(b.scores, a.scores)
    for x, y in ((a.labels, b.labels), (a.ask, b.ask)):
        assert (x is None) == (y is None)
        if x is not None:
            np.testing.assert_array_equal(y, x)
    np.testing.assert_array_equal(on_dask.take(a.indices[:5]), memory.take(a.indices[:5]))


# --------------------------------------------------------------------------------- CLI

runner = CliRunner()


def write_files(folder: Path, n_pool: int = 9000) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    W = rng.normal(size=(3, 5))

    def frame(n):
        X = rng.normal(size=(n, 5)).round(3)
        X[n // 3 : n // 3 + 30] = X[0]  # ties
        y = np.array(["a", "b", "c"])[(X[:, :3] @ W[:, :3].T + rng.gumbel(size=(n, 3))).argmax(1)]
        f = pd.DataFrame(X, columns=[f"x{i}" for i in range(5)])
        f["kind"] = rng.choice(["u", "v", "w"], size=n)
        f["y"] = y
        return f

    paths = {"labeled": folder / "lab.csv", "validation": folder / "val.csv"}
    frame(150).to_csv(paths["labeled"], index=False)
    frame(200).to_csv(paths["validation"], index=False)
    paths["unlabeled"] = folder / "pool.csv"
    frame(n_pool).drop(columns="y").to_csv(paths["unlabeled"], index=False)
    return paths


def label_args(paths: dict[str, Path], output: Path, *extra: str) -> list[str]:
    return [
        "label",
        "--labeled", str(paths["labeled"]),
        "--unlabeled", str(paths["unlabeled"]),
        "--validation", str(paths["validation"]),
        "--target", "y",
        "--budget", "8",
        "--rounds", "4",
        "--seed", "3",
        "--output", str(output),
        *extra,
    ]  # fmt: skip


def invoke(args):
    result = runner.invoke(app, args, env={"COLUMNS": "120"})
    return result


# The default strategy (salutary-newton), the paper's, and every other oracle-free one;
# max_growth=0.02 makes salutary-newton choose in sub-batches (a Dask pool without the
# sub-batch's picks) and uncertain=0.5 ranks part of its shortlist by the model's margin.
ORACLE_FREE = [
    None,
    "salutary",
    "salutary-newton:max_growth=0.02:uncertain=0.5",
    "salutary-crossfit",
    "self-training",
    "val-teacher:pick=margin",
]


@pytest.mark.parametrize("strategy", ORACLE_FREE, ids=lambda s: s or "default")
def test_cli_dask_engine_writes_the_same_file(client, tmp_path, strategy):
    paths = write_files(tmp_path)
    memory, on_dask = tmp_path / "memory.csv", tmp_path / "dask.csv"
    # The default with the held-out check; the others without it, so all rounds run.
    chosen = [] if strategy is None else ["--strategy", strategy, "--no-check"]
    result = invoke(label_args(paths, memory, *chosen))
    assert result.exit_code == 0, (result.stdout, result.stderr)
    address = client.scheduler.address
    result = invoke(label_args(paths, on_dask, "--engine", "dask", "--scheduler", address, *chosen))
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    assert on_dask.read_bytes() == memory.read_bytes()
    kept = re.search(r"kept (\d+) of 4 rounds", result.stdout)
    assert (kept is None) == (strategy is not None), result.stdout
    assert len(pd.read_csv(memory)) == 8 * (4 if kept is None else int(kept.group(1)))


def test_every_oracle_free_strategy_is_tested_on_both_engines():
    from salutary.strategies import oracle_free_strategies

    tested = {(s or "salutary-newton").split(":")[0] for s in ORACLE_FREE}
    assert tested == set(oracle_free_strategies())


def test_cli_dask_engine_local_cluster(tmp_path):
    paths = write_files(tmp_path, n_pool=600)
    memory, on_dask = tmp_path / "memory.parquet", tmp_path / "dask.parquet"
    assert invoke(label_args(paths, memory)).exit_code == 0
    result = invoke(label_args(paths, on_dask, "--engine", "dask", "--workers", "1"))
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    pd.testing.assert_frame_equal(pd.read_parquet(on_dask), pd.read_parquet(memory))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--engine", "dask", "--scheduler", "tcp://127.0.0.1:PORT"], "cannot connect to dask"),
        (["--engine", "dask", "--scheduler", "no-port-here"], "cannot connect to dask"),
        (["--scheduler", "tcp://127.0.0.1:1"], "--scheduler needs --engine dask"),
        (["--workers", "2"], "--workers needs --engine dask"),
        (
            ["--engine", "dask", "--scheduler", "tcp://127.0.0.1:1", "--workers", "2"],
            "cannot be used with --scheduler",
        ),
    ],
)
def test_cli_engine_errors(tmp_path, extra, fragment):
    paths = write_files(tmp_path, n_pool=100)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    extra = [e.replace("PORT", str(free_port())) for e in extra]
    result = invoke(label_args(paths, out_dir / "result.csv", *extra))
    assert result.exit_code == 2, (result.stdout, result.stderr, result.exception)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert fragment in lines[0]
    assert "Traceback" not in result.output
    assert os.listdir(out_dir) == []


def test_get_client_rejects_a_server_that_is_not_a_scheduler():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
        with pytest.raises(ConnectionError, match="cannot connect to dask scheduler"):
            sd.get_client(address, timeout=0.5)


def test_get_client_connects(client):
    other = sd.get_client(client.scheduler.address)
    try:
        assert set(other.nthreads()) == set(client.nthreads())
    finally:
        other.close()
