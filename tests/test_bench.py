"""Benchmark harness: resumable store, protocols, and the report's statistics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from salutary.bench import PROTOCOLS, ResultStore, RunKey, grid, run_grid, run_one
from salutary.report import ablation_table, compare, markdown_table, outcomes, per_run, write_report

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
    import salutary.bench as bench

    original = bench.PROTOCOLS["paper"]
    bench.PROTOCOLS["paper"] = type(original)(**{**original.__dict__, "budget": 10_000})
    try:
        out = run_grid(store, [bad])
    finally:
        bench.PROTOCOLS["paper"] = original
    assert bad in out.failed and "exceeds the pool" in out.failed[bad]
    assert store.done() == set()


def test_fair_protocol_trains_on_validation_labels():
    paper = run_one(RunKey("breast_cancer", "paper", "random", 0))
    fair = run_one(RunKey("breast_cancer", "fair", "random", 0))
    n_val = int(paper["n_val"].iloc[0])
    assert fair["n_labeled"].iloc[0] == paper["n_labeled"].iloc[0] + n_val


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


def test_write_report(tmp_path):
    path = write_report(_hand_made_store(), tmp_path)
    text = path.read_text()
    assert "1 wins, 1 ties, 1 losses over 3 datasets" in text
    assert "Against `random`: 1 wins, 1 ties, 1 losses" in text
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
    assert "## Protocol `paper` (1 seeds)" in (tmp_path / "results" / "REPORT.md").read_text()
    assert len(pd.read_csv(tmp_path / "results" / "runs.csv")) == 2
    bad = runner.invoke(app, ["bench", "-d", "nope", "--store", store])
    assert bad.exit_code == 2 and "unknown dataset 'nope'" in bad.output
    empty = runner.invoke(app, ["report", "--store", str(tmp_path / "none")])
    assert empty.exit_code == 2 and "no results" in empty.output
