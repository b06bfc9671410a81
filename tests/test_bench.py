"""Benchmark harness: resumable store, protocols, and the report's statistics."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.datasets import load_breast_cancer

from salutary.benchmark import (
    PROTOCOLS,
    ResultStore,
    RunKey,
    grid,
    run_grid,
    run_one,
    with_n_true,
)
from salutary.benchmark.report import (
    ablation_table,
    compare,
    complete_groups,
    markdown_table,
    outcomes,
    per_run,
    write_report,
)
from salutary.model import LogisticModel

KEYS = grid(["breast_cancer"], ["paper"], ["random", "salutary", "margin"], [0, 1])
VOLATILE = ["seconds", "run_seconds"]


def test_interrupted_grid_resumes_and_loses_nothing(tmp_path):
    store = ResultStore(tmp_path / "store")
    seen = []

    def interrupt_after_two(key, error):
        assert error is None
        seen.append(key)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_grid(store, KEYS, on_done=interrupt_after_two)
    assert store.done() == set(seen)
    # A half-written temporary file from the killed run must not count.
    (store.path / ".tmp-abc.parquet").write_bytes(b"partial")
    outcome = run_grid(store, KEYS)
    assert set(outcome.skipped) == set(seen)
    assert set(outcome.ran) == set(KEYS) - set(seen)
    assert store.done() == set(KEYS)
    # Same numbers as an uninterrupted run.
    fresh = ResultStore(tmp_path / "fresh")
    run_grid(fresh, KEYS)

    def cols(df):
        return (
            df.drop(columns=VOLATILE)
            .sort_values(["strategy", "seed", "round"])
            .reset_index(drop=True)
        )

    pd.testing.assert_frame_equal(cols(store.load()), cols(fresh.load()))
    assert len(store.load()) == len(KEYS) * 11
    # A consolidated results file seeds a new store (resume on another machine).
    copy = ResultStore(tmp_path / "copy")
    assert copy.import_frame(store.load()) == len(KEYS)
    assert copy.done() == set(KEYS) and copy.import_frame(store.load()) == 0
    pd.testing.assert_frame_equal(cols(copy.load()), cols(store.load()))


def test_parallel_grid_matches_serial(tmp_path):
    a, b = ResultStore(tmp_path / "a"), ResultStore(tmp_path / "b")
    run_grid(a, KEYS[:4], n_jobs=2)
    run_grid(b, KEYS[:4], n_jobs=1)
    key = ["strategy", "seed", "round"]
    pd.testing.assert_frame_equal(
        a.load().drop(columns=VOLATILE).sort_values(key).reset_index(drop=True),
        b.load().drop(columns=VOLATILE).sort_values(key).reset_index(drop=True),
    )


def test_failed_run_is_reported_not_stored(tmp_path):
    store = ResultStore(tmp_path)
    bad = RunKey("breast_cancer", "paper", "margin", 0)
    # budget x rounds larger than the pool: the run fails, the grid goes on
    import salutary.benchmark.runner as bench

    original = bench.PROTOCOLS["paper"]
    bench.PROTOCOLS["paper"] = type(original)(**{**original.__dict__, "budget": 10_000})
    try:
        out = run_grid(store, [bad])
    finally:
        bench.PROTOCOLS["paper"] = original
    assert bad in out.failed and "exceeds the pool" in out.failed[bad]
    assert store.done() == set()


def _write_claim(store: ResultStore, key: RunKey, owner: str) -> None:
    store.claims_path.mkdir(parents=True, exist_ok=True)
    (store.claims_path / key.filename.replace(".parquet", ".claim")).write_text(owner + "\n")


def test_a_claim_is_exclusive_until_released(tmp_path):
    store, key = ResultStore(tmp_path / "store"), KEYS[0]
    assert store.claim(key)
    assert not store.claim(key)
    assert store.claimed() == {key: f"{socket.gethostname()} {os.getpid()}"}
    store.release(key)
    assert store.claimed() == {} and store.claim(key)
    store.release(key)
    store.write(key, run_one(key))
    assert not store.claim(key), "a stored run is never claimed again"


def test_stale_claims_are_cleared_live_and_foreign_ones_respected(tmp_path):
    store = ResultStore(tmp_path / "store")
    stale, live, foreign = KEYS[0], KEYS[1], KEYS[2]
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        host = socket.gethostname()
        _write_claim(store, stale, f"{host} {dead.pid}")
        _write_claim(store, live, f"{host} {running.pid}")
        _write_claim(store, foreign, "another-machine 1")
        outcome = run_grid(store, [stale, live, foreign])
        assert outcome.ran == [stale]
        assert outcome.taken == [live, foreign]
        assert store.done() == {stale}
        assert set(store.claimed()) == {live, foreign}
    finally:
        running.kill()
        running.wait()


def test_two_processes_share_one_grid_and_run_each_key_once(tmp_path):
    """Two bench processes started together on the same grid: every key runs once."""
    store, log = tmp_path / "store", tmp_path / "runs.log"
    code = f"""
import pathlib, sys, time
import salutary.benchmark.runner as b
me, other = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
original = b.run_one
def logged(key, data=None):
    with open({str(log)!r}, "a") as f:
        f.write(repr(key) + "\\n")
    time.sleep(0.2)  # long enough for the other process to reach the same key
    return original(key, data)
b.run_one = logged
me.touch()
while not other.exists():  # start together
    time.sleep(0.01)
b.run_grid(b.ResultStore({str(store)!r}), b.grid(["breast_cancer"], ["paper"],
           ["random", "margin", "salutary"], [0, 1]))
"""
    ready = [str(tmp_path / "a.ready"), str(tmp_path / "b.ready")]
    procs = [subprocess.Popen([sys.executable, "-c", code, ready[i], ready[1 - i]]) for i in (0, 1)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    keys = grid(["breast_cancer"], ["paper"], ["random", "margin", "salutary"], [0, 1])
    runs = log.read_text().splitlines()
    assert sorted(runs) == sorted(repr(k) for k in keys), "a key ran twice or not at all"
    assert ResultStore(store).done() == set(keys)
    assert ResultStore(store).claimed() == {}


def test_fair_protocol_trains_on_validation_labels():
    paper = run_one(RunKey("breast_cancer", "paper", "random", 0))
    fair = run_one(RunKey("breast_cancer", "fair", "random", 0))
    n_val = int(paper["n_val"].iloc[0])
    assert fair["n_labeled"].iloc[0] == paper["n_labeled"].iloc[0] + n_val


@pytest.mark.parametrize("dataset", ["breast_cancer", "digits"])
def test_shared_first_fit_leaves_every_run_bit_for_bit_the_same(dataset, monkeypatch):
    # Strategies of one seed share their initial fit within a process; the runs must
    # equal runs that fit it themselves (two classes and ten).
    from salutary.benchmark import runner as bench

    keys = [RunKey(dataset, "fair", s, 1) for s in ("random", "salutary", "margin")]
    bench._SharedFirstFit._store.clear()
    hits = bench._SharedFirstFit.hits
    shared = [run_one(k) for k in keys]
    assert bench._SharedFirstFit.hits - hits == len(keys) - 1
    monkeypatch.setattr(bench._SharedFirstFit, "fit", LogisticModel.fit)  # no sharing
    alone = [run_one(k) for k in keys]
    for a, b in zip(shared, alone, strict=True):
        cols = [c for c in a.columns if c not in ("seconds", "run_seconds")]
        pd.testing.assert_frame_equal(a[cols], b[cols])
        assert a["accuracy"].nunique() > 1  # the runs did move


def test_shared_first_fit_is_keyed_by_data_and_parameters():
    from salutary.benchmark.runner import _SharedFirstFit

    X, y = load_breast_cancer(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    _SharedFirstFit._store.clear()
    a = _SharedFirstFit(l2=5.0).fit(X, y)
    b = _SharedFirstFit(l2=50.0).fit(X, y)  # other parameters: fitted anew
    c = _SharedFirstFit(l2=5.0).fit(X[:-1], y[:-1])  # other data: fitted anew
    d = _SharedFirstFit(l2=5.0).fit(X, y)  # a hit
    ref = LogisticModel(l2=50.0).fit(X, y)
    np.testing.assert_array_equal(b.coef_, ref.coef_)
    assert not np.array_equal(a.coef_, b.coef_) and not np.array_equal(a.coef_, c.coef_)
    np.testing.assert_array_equal(a.coef_, d.coef_)
    d.coef_[0, 0] += 1.0  # a copy: the stored state is not shared with the estimator
    np.testing.assert_array_equal(_SharedFirstFit(l2=5.0).fit(X, y).coef_, a.coef_)


def test_budget_fraction_of_dataset():
    assert PROTOCOLS["budget1pct"].budget_for(6497) == 65
    assert PROTOCOLS["paper"].budget_for(6497) == 10


def test_unknown_names_are_rejected():
    with pytest.raises(ValueError, match="unknown protocol"):
        grid(["wine_quality"], ["nope"], ["random"], [0])
    with pytest.raises(ValueError, match="unknown strategy"):
        grid(["wine_quality"], ["paper"], ["nope"], [0])

    with pytest.raises(ValueError, match="has no parameter 'bogus'"):
        grid(["wine_quality"], ["paper"], ["salutary-newton:bogus=1"], [0])


def test_strategy_spec_runs_and_is_stored_under_its_spec(tmp_path):
    spec = "salutary-newton:steps=1:labels=1"
    key = RunKey("breast_cancer", "paper", spec, 0)
    assert ":" not in key.filename  # portable file names
    assert RunKey.from_filename(key.filename) == key
    store = ResultStore(tmp_path / "store")
    run_grid(store, [key])
    assert store.done() == {key}
    frame = store.load()
    assert set(frame["strategy"]) == {spec} and not frame["oracle"].any()


def _run_frame(key: RunKey, rng: np.random.Generator, rounds: int = 3) -> pd.DataFrame:
    """A stored run as the current code writes it (every column), with random numbers."""
    return pd.DataFrame(
        {
            "dataset": key.dataset,
            "protocol": key.protocol,
            "strategy": key.strategy,
            "seed": key.seed,
            "round": np.arange(rounds),
            "n_labeled": 300 + 10 * np.arange(rounds),
            "accuracy": rng.random(rounds),
            "validation_loss": rng.random(rounds),
            "label_agreement": rng.random(rounds),
            "seconds": rng.random(rounds),
            "budget": 10,
            "n_val": 100,
            "n_pool": 1000,
            "oracle": key.strategy in ("random", "margin"),
            "run_seconds": rng.random(),
            "n_true": 10 * np.arange(rounds),
        }
    )


def test_load_equals_concatenating_the_files_one_by_one(tmp_path):
    """Files of several schemas interleaved in name order: old runs without n_true,
    oracle or label_agreement, another column order, a float column that is an integer
    elsewhere, n_true missing in some rows, an extra column, an empty run, a nullable
    boolean. The oracle is the old loader: pd.concat of pd.read_parquet of each file."""
    rng = np.random.default_rng(0)
    store = ResultStore(tmp_path / "store")
    variants = [
        lambda f: f,
        lambda f: f.drop(columns=["n_true"]),
        lambda f: f.drop(columns=["n_true", "oracle", "label_agreement"]),
        lambda f: f[f.columns[::-1]],
        lambda f: f.assign(n_labeled=f["n_labeled"].astype(float)),
        lambda f: f.assign(n_true=[0.0, np.nan, 20.0]),
        lambda f: f.assign(note="rerun"),
        lambda f: f.iloc[:0],
        lambda f: f.assign(oracle=pd.array([True, None, False], dtype="boolean")),
    ]
    keys = grid(["a", "b"], ["paper", "fair"], ["random", "salutary", "margin"], [0, 1, 2])
    files = []
    for i, key in enumerate(keys):
        files.append(store.write(key, variants[i % len(variants)](_run_frame(key, rng))))
    (store.path / ".claims").mkdir()
    (store.path / "notes.parquet").write_bytes(b"not a run")  # not a run's name: ignored
    files.sort()
    expected = with_n_true(pd.concat([pd.read_parquet(f) for f in files], ignore_index=True))
    got = store.load()
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert len(got) == 3 * 32 and got.columns[-1] == "note"  # 4 empty runs
    # One schema only (the common case) takes the single-table path.
    one = ResultStore(tmp_path / "one")
    same = sorted(one.write(k, _run_frame(k, rng)) for k in keys[:5])
    pd.testing.assert_frame_equal(
        one.load(), pd.concat([pd.read_parquet(f) for f in same], ignore_index=True)
    )
    assert ResultStore(tmp_path / "none").load().empty


# ------------------------------------------------------------------ report statistics
def _hand_made_store() -> pd.DataFrame:
    """Known accuracies: 5 seeds, 2 rounds; final accuracy = base + offset + noise."""
    rows = []
    noise = np.array([0.001, -0.002, 0.0015, 0.0, -0.0005])
    offsets = {
        "A": {"salutary": 0.02, "random": 0.0, "margin": 0.005},  # clear win
        "B": {"salutary": -0.03, "random": 0.0, "margin": 0.01},  # clear loss
        "C": {"salutary": 0.0, "random": 0.0, "margin": 0.0},  # identical: tie
    }
    for dataset, offs in offsets.items():
        for strategy, off in offs.items():
            for seed in range(5):
                start = 0.5 + 0.01 * seed
                end = start + 0.05 + off + (noise[seed] if strategy == "salutary" else 0.0)
                for rnd, acc in enumerate([start, (start + end) / 2, end]):
                    rows.append(
                        dict(
                            protocol="paper",
                            dataset=dataset,
                            strategy=strategy,
                            seed=seed,
                            round=rnd,
                            accuracy=acc,
                            label_agreement=np.nan if rnd == 0 else 1.0,
                            seconds=0.1,
                            budget=10,
                        )
                    )
    return pd.DataFrame(rows)


def test_per_run_metrics():
    runs = per_run(_hand_made_store())
    r = runs[(runs.dataset == "A") & (runs.strategy == "random") & (runs.seed == 2)].iloc[0]
    assert r.initial == pytest.approx(0.52)
    assert r.final == pytest.approx(0.57)
    # trapezoid over 3 equally spaced points of a straight line = its midpoint
    assert r.aulc == pytest.approx(0.545)
    assert r.gain == pytest.approx(0.05)


def test_per_run_does_not_depend_on_row_order():
    """Stores read in another file order give the same rows in the same order."""
    frame = _hand_made_store()
    runs = per_run(frame)
    shuffled = per_run(frame.sample(frac=1.0, random_state=3).reset_index(drop=True))
    pd.testing.assert_frame_equal(shuffled, runs)
    keys = ["protocol", "dataset", "strategy", "seed"]
    assert list(runs[keys].itertuples(index=False)) == sorted(runs[keys].itertuples(index=False))


def test_complete_groups_leaves_out_strategies_with_fewer_seeds():
    frame = _hand_made_store()
    short = (frame.dataset == "A") & (frame.strategy == "margin") & (frame.seed >= 3)
    kept, left_out = complete_groups(frame[~short], min_seeds=5)
    assert left_out.to_dict("records") == [
        dict(protocol="paper", dataset="A", strategy="margin", seeds=3)
    ]
    assert not ((kept.dataset == "A") & (kept.strategy == "margin")).any()
    rest = frame[~((frame.dataset == "A") & (frame.strategy == "margin"))]
    pd.testing.assert_frame_equal(kept, rest.reset_index(drop=True))
    same, none = complete_groups(frame, min_seeds=5)
    assert none.empty and same is frame


def test_paired_test_matches_textbook_formula():
    runs = per_run(_hand_made_store())
    a = runs[runs.dataset == "A"]
    diff, p, n = compare(a, "salutary", "margin", "final")
    d = 0.015 + np.array([0.001, -0.002, 0.0015, 0.0, -0.0005])
    t = d.mean() / (d.std(ddof=1) / np.sqrt(len(d)))
    assert n == 5
    assert diff == pytest.approx(d.mean())
    assert p == pytest.approx(2 * stats.t.sf(abs(t), df=len(d) - 1))


def test_outcomes_win_loss_tie():
    out = outcomes(per_run(_hand_made_store())).set_index("dataset")
    assert out.loc["A", "outcome"] == "win" and out.loc["A", "best_baseline"] == "margin"
    assert out.loc["B", "outcome"] == "loss" and out.loc["B", "best_baseline"] == "margin"
    assert out.loc["C", "outcome"] == "tie"


def test_markdown_table_bold_best_and_marks_significant():
    table = markdown_table(per_run(_hand_made_store()), "final")
    row_a = next(line for line in table.splitlines() if line.startswith("| A "))
    cells = [c.strip() for c in row_a.strip("|").split("|")][1:]
    sal, rnd = cells[0], cells[1]
    expected_mean = np.mean(0.5 + 0.01 * np.arange(5) + 0.07 + [0.001, -0.002, 0.0015, 0, -0.0005])
    assert sal.startswith(f"**{expected_mean:.3f} ±")
    assert rnd.endswith("*")  # random is 0.02 below in every seed


def test_ablation_table_compares_specs_with_the_reference():
    store = _hand_made_store()
    # Dataset A: the reference is "margin" renamed; the spec is salutary renamed
    # (+0.015 over it, noisy) and "salutary-newton:x=1" on B a clear loss.
    ren = {"margin": "salutary-newton", "random": "salutary-newton:steps=1"}
    table = ablation_table(per_run(store.replace({"strategy": ren})), metric="final")
    lines = table.splitlines()
    assert lines[0] == "| dataset | `salutary` | `salutary-newton:steps=1` | `salutary-newton` |"
    row_a = [c.strip() for c in lines[2].strip("|").split("|")]
    d = 0.015 + np.array([0.001, -0.002, 0.0015, 0.0, -0.0005])
    assert row_a[1].endswith(f"({d.mean():+.3f}*)")  # salutary vs reference, significant
    assert row_a[2].endswith("(-0.005*)")  # random was 0.005 below margin in every seed
    # Counts: salutary wins A, loses B (-0.04), ties C; the spec loses A, B (-0.01), ties C.
    assert lines[-1] == "| wins/ties/losses vs `salutary-newton` | 1/1/1 | 0/1/2 | |"
    assert ablation_table(per_run(store), metric="final") == ""  # no specs, no table


def test_specs_of_baselines_are_baselines_and_stay_out_of_the_ablation_table():
    # "margin" renamed to a spec of val-teacher (oracle-free, not a salutary strategy), and
    # "random" to a salutary-newton spec: the first is a baseline, the second an ablation.
    ren = {"margin": "val-teacher:pick=margin", "random": "salutary-newton:steps=1"}
    runs = per_run(_hand_made_store().replace({"strategy": ren}))
    out = outcomes(runs).set_index("dataset")
    assert out.loc["B", "best_baseline"] == "val-teacher:pick=margin"
    assert out.loc["B", "outcome"] == "loss"
    header = markdown_table(runs, "final").splitlines()[0]
    assert header == "| dataset | salutary | val-teacher:pick=margin |"
    with_reference = pd.concat([runs, runs[runs.strategy == "salutary"].assign(
        strategy="salutary-newton")])  # fmt: skip
    table = ablation_table(with_reference, metric="final").splitlines()
    assert table[0] == "| dataset | `salutary` | `salutary-newton:steps=1` | `salutary-newton` |"


def test_outcome_counts_are_worded_by_number():
    from salutary.benchmark.report import _tally

    assert _tally(pd.Series({"win": 2, "loss": 1})) == "2 wins, 0 ties, 1 loss"
    assert _tally(pd.Series({"tie": 1, "loss": 3})) == "0 wins, 1 tie, 3 losses"


def test_write_report(tmp_path):
    path = write_report(_hand_made_store(), tmp_path)
    text = path.read_text()
    assert "1 win, 1 tie, 1 loss over 3 datasets" in text
    assert "Against `random`: 1 win, 1 tie, 1 loss" in text
    assert (tmp_path / "curve_paper_A.png").stat().st_size > 1000


def test_cli_bench_resumes_and_report_writes(tmp_path):
    from typer.testing import CliRunner

    from salutary.cli import app

    runner = CliRunner()
    store, out = str(tmp_path / "store"), str(tmp_path / "results")
    args = ["bench", "-d", "breast_cancer", "-p", "paper", "-s", "random", "salutary",
            "-n", "1", "--store", store]  # fmt: skip
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "2 runs done, 0 already stored, 0 failed" in first.output
    again = runner.invoke(app, args)
    assert "0 runs done, 2 already stored" in again.output
    rep = runner.invoke(app, ["report", "--store", store, "--output", out])
    assert rep.exit_code == 0, rep.output
    assert "## Protocol `paper` (1 seed)" in (tmp_path / "results" / "REPORT.md").read_text()
    assert len(pd.read_csv(tmp_path / "results" / "runs.csv")) == 2
    bad = runner.invoke(app, ["bench", "-d", "nope", "--store", store])
    assert bad.exit_code == 2 and "unknown dataset 'nope'" in bad.output
    empty = runner.invoke(app, ["report", "--store", str(tmp_path / "none")])
    assert empty.exit_code == 2 and "no results" in empty.output
    # A run another machine holds is left to it, and the user is told.
    held = RunKey("breast_cancer", "paper", "margin", 0)
    _write_claim(ResultStore(store), held, "another-machine 7")
    shared = runner.invoke(app, [*args[:6], "margin", *args[6:]])
    assert shared.exit_code == 0, shared.output
    assert "0 runs done, 2 already stored, 1 run by another process, 0 failed" in shared.output
    assert "1 run still claimed by other processes (another-machine 7)" in shared.output
    assert held not in ResultStore(store).done()
    # A second seed of random only: --min-seeds 2 reports random and says what it left out.
    more = runner.invoke(app, [*args[:6], "random", "-n", "2", "--store", store])
    assert "1 run done, 1 already stored" in more.output, more.output
    part = runner.invoke(app, ["report", "--store", store, "--output", out, "--min-seeds", "2"])
    assert part.exit_code == 0, part.output
    assert "left out: breast_cancer / paper / salutary (1 of 2 seeds)" in part.output
    runs = pd.read_csv(tmp_path / "results" / "runs.csv")
    assert runs[["strategy", "seed"]].values.tolist() == [["random", 0], ["random", 1]]
    none = runner.invoke(app, ["report", "--store", store, "--output", out, "--min-seeds", "3"])
    assert none.exit_code == 2 and "has 3 seeds" in none.output


# ------------------------------------------------------------- accuracy per true label
HYBRID_NOISE = np.array([0.001, -0.002, 0.003])


def _hybrid_store() -> pd.DataFrame:
    """3 seeds, 2 rounds of 10. The hybrid spends 3 true labels a round (n_true stored);
    the oracle baselines are "old" runs without n_true (derived: 10 a round, from
    n_labeled). Accuracies at rounds 0, 1, 2, shifted by 0.01 * seed."""
    curves = {
        "salutary-hybrid": [0.50, 0.55, 0.57],  # + noise at the end
        "random": [0.50, 0.55, 0.60],
        "margin": [0.50, 0.60, 0.62],
        "isal": [0.50, 0.65, 0.66],
        "salutary": [0.50, 0.70, 0.80],  # oracle-free: never a baseline here
    }
    rows = []
    for strategy, curve in curves.items():
        for seed in range(3):
            for rnd, acc in enumerate(curve):
                acc = acc + 0.01 * seed
                if strategy == "salutary-hybrid" and rnd == 2:
                    acc += HYBRID_NOISE[seed]
                row = dict(protocol="paper", dataset="A", strategy=strategy, seed=seed,
                           round=rnd, n_labeled=300 + 10 * rnd, accuracy=acc,
                           label_agreement=np.nan if rnd == 0 else 1.0, seconds=0.1,
                           budget=10)  # fmt: skip
                if strategy == "salutary-hybrid":
                    row["n_true"] = 3 * rnd
                rows.append(row)
    return pd.DataFrame(rows)


def test_n_true_is_derived_for_runs_stored_without_it():
    from salutary.benchmark import with_n_true

    old = _hybrid_store()
    got = with_n_true(old).set_index(["strategy", "seed", "round"])["n_true"]
    assert got.loc[("random", 1, 2)] == 20  # n_labeled 320 - 300
    assert got.loc[("salutary", 1, 2)] == 0
    assert got.loc[("salutary-hybrid", 1, 2)] == 6  # stored, not derived
    # Without n_labeled: round x budget. The hybrid cannot be derived.
    bare = old.drop(columns=["n_labeled", "n_true"])
    got = with_n_true(bare).set_index(["strategy", "seed", "round"])["n_true"]
    assert got.loc[("margin", 0, 1)] == 10
    assert np.isnan(got.loc[("salutary-hybrid", 0, 1)])
    assert "n_true" not in bare  # the input is left alone
    # Strategy specs count as their class, whatever the stored oracle column says.
    specs = bare.replace(
        {"strategy": {"salutary-hybrid": "salutary-hybrid:true_fraction=0.5",
                      "salutary": "salutary:tol=1e-8", "margin": "margin:"}}
    ).assign(oracle=True)  # fmt: skip
    got = with_n_true(specs).set_index(["strategy", "seed", "round"])["n_true"]
    assert np.isnan(got.loc[("salutary-hybrid:true_fraction=0.5", 0, 1)])
    assert got.loc[("salutary:tol=1e-8", 0, 1)] == 0
    # Names of no strategy (retired ones) follow the stored oracle column.
    gone = bare.replace({"strategy": {"margin": "retired", "salutary": "retired-free"}})
    gone["oracle"] = gone["strategy"] == "retired"
    got = with_n_true(gone).set_index(["strategy", "seed", "round"])["n_true"]
    assert got.loc[("retired", 0, 1)] == 10 and got.loc[("retired-free", 0, 1)] == 0


def test_store_imported_from_an_old_results_file_gets_n_true(tmp_path):
    store = ResultStore(tmp_path)
    old = _hybrid_store()
    old = old[old["strategy"] != "salutary-hybrid"].drop(columns="n_true")
    assert store.import_frame(old) == 12
    store.write(RunKey("A", "paper", "salutary-hybrid", 0), _hybrid_store().query(
        "strategy == 'salutary-hybrid' and seed == 0"))  # fmt: skip
    loaded = store.load().set_index(["strategy", "seed", "round"])["n_true"]
    assert loaded.loc[("random", 2, 1)] == 10 and loaded.loc[("isal", 0, 2)] == 20
    assert loaded.loc[("salutary", 0, 2)] == 0 and loaded.loc[("salutary-hybrid", 0, 2)] == 6
    assert per_run(store.load()).set_index(["strategy", "seed"]).loc[("margin", 1), "n_true"] == 20


def test_per_true_label_interpolates_in_true_labels():
    from salutary.benchmark import per_true_label

    tab = per_true_label(_hybrid_store()).set_index("baseline")
    assert set(tab.index) == {"random", "margin", "isal"}  # oracle baselines only
    seed = 0.01 * np.arange(3)
    hybrid = 0.57 + seed + HYBRID_NOISE
    # The hybrid ends with 6 true labels; baselines reach 10 after round 1, so at 6
    # they stand 6/10 of the way from round 0 to round 1.
    at6 = {"random": 0.50 + 0.6 * 0.05, "margin": 0.50 + 0.6 * 0.10, "isal": 0.50 + 0.6 * 0.15}
    final = {"random": 0.60, "margin": 0.62, "isal": 0.66}
    for base in at6:
        r = tab.loc[base]
        assert r.n_true == 6 and r.final_n_true == 20 and r.seeds == 3
        assert r.method_mean == pytest.approx(hybrid.mean())
        assert r.equal_mean == pytest.approx(at6[base] + seed.mean())
        assert r.equal_std == pytest.approx(np.std(at6[base] + seed, ddof=1))
        d = hybrid - (at6[base] + seed)
        assert r.equal_diff == pytest.approx(d.mean())
        assert r.equal_p == pytest.approx(stats.ttest_rel(hybrid, at6[base] + seed).pvalue)
        assert r.final_diff == pytest.approx(np.mean(hybrid - (final[base] + seed)))
    assert tab["best"].to_dict() == {"random": False, "margin": False, "isal": True}


def test_per_true_label_does_not_extrapolate():
    from salutary.benchmark import per_true_label

    short = _hybrid_store()
    short = short[(short["strategy"] == "salutary-hybrid") | (short["round"] == 0)]
    tab = per_true_label(short)  # baselines stopped at round 0: 0 true labels < 6
    assert tab["equal_mean"].isna().all() and (tab["seeds"] == 0).all()
    assert not tab["best"].any()


def test_report_has_a_per_true_label_section_only_with_hybrid_runs(tmp_path):
    text = write_report(_hybrid_store(), tmp_path, plots=False).read_text()
    section = text.split("### Accuracy per true label spent")[1].split("###")[0]
    assert "How to read" in section
    rows = [line for line in section.splitlines() if line.startswith("| A ") or
            line.startswith("|  |")]  # fmt: skip
    assert len(rows) == 3  # random, margin, the best: isal
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    hybrid = 0.57 + 0.01 * np.arange(3) + HYBRID_NOISE
    assert cells[:4] == ["A", "6", f"{hybrid.mean():.3f} ± {hybrid.std(ddof=1):.3f}", "random"]
    assert cells[4].startswith(f"{0.53 + 0.01:.3f} ±")  # 0.53 + mean of the seed shift
    assert cells[5] == f"{np.mean(hybrid - (0.53 + 0.01 * np.arange(3))):+.3f}"  # +0.041
    assert cells[7].endswith("(20)")
    assert [c.strip() for c in rows[2].strip("|").split("|")][3] == "isal (best)"
    assert (
        "Accuracy per true label spent"
        not in write_report(_hand_made_store(), tmp_path / "other", plots=False).read_text()
    )
