"""The held-out check and its stopping rule: part of the validation set never steers the
selection, each round is checked on it, and the first round that does not lower its loss
is dropped and ends the rounds.

The oracle is an independent refit: every kept round's model is refit from scratch on the
rows kept so far and its held-out loss computed by hand (sum of -log p of the true class).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from salutary import LogisticModel, SalutaryLabeler
from salutary.loop import (
    CHECK_FRACTION,
    check_seed,
    held_out_check,
    label_pool,
    run_active_learning,
    termination,
)
from salutary.pool import ArrayPool
from salutary.strategies import Selection, Strategy, loop_options, parse_strategy

K, D = 3, 4
W = np.random.default_rng(42).normal(size=(K, D)) * 3


def truth(X: np.ndarray) -> np.ndarray:
    """The labels are a function of the features, so a scripted strategy can label right."""
    return (X @ W.T).argmax(axis=1)


def blobs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    X = np.random.default_rng(seed).normal(size=(n, D))
    return X, truth(X)


class Scripted(Strategy):
    """Oracle-free: picks the first ``budget`` pool rows, labels them right for
    ``good`` rounds, then wrong (the next class), and records the validation sets it
    was handed."""

    requires_oracle = False
    name = "scripted"

    def __init__(self, good: int = 2) -> None:
        self.good = good

    def _select(self, model, X_train, y_train, pool, budget, X_val=None, y_val=None, **_):
        self.seen_ = [*getattr(self, "seen_", []), X_val]
        idx = np.arange(min(budget, pool.n_rows))
        labels = truth(pool.take(idx))
        if len(self.seen_) > self.good:
            labels = (labels + 1) % K
        return Selection(idx, -np.arange(len(idx), dtype=float), labels)


def hand_loss(model, X, y) -> float:
    P = model.predict_proba(X)
    return float(-np.log(P[np.arange(len(y)), np.searchsorted(model.classes_, y)]).sum())


def test_the_split_is_stratified_disjoint_complete_and_seeded():
    X, y = blobs(300, 0)
    Xs, ys, Xc, yc = held_out_check(X, y, 0.3, seed=5)
    assert len(yc) == 90 and len(ys) == 210
    rows = {tuple(r) for r in X}
    assert {tuple(r) for r in Xs} | {tuple(r) for r in Xc} == rows
    assert not {tuple(r) for r in Xs} & {tuple(r) for r in Xc}
    for c in range(K):  # stratified: each class's share within one row of 30%
        assert abs(np.sum(yc == c) - 0.3 * np.sum(y == c)) <= 1
    again = held_out_check(X, y, 0.3, seed=5)
    other = held_out_check(X, y, 0.3, seed=6)
    np.testing.assert_array_equal(again[2], Xc)
    assert not np.array_equal(other[2], Xc)
    with pytest.raises(ValueError, match="too small to hold out"):
        held_out_check(X[:1], y[:1], 0.5, seed=0)
    with pytest.raises(ValueError, match=r"in \(0, 1\)"):
        held_out_check(X, y, 1.0, seed=0)


def test_rounds_stop_at_the_first_round_that_does_not_lower_the_held_out_loss():
    X_lab, y_lab = blobs(40, 1)
    X_pool, _ = blobs(200, 2)
    X_val, y_val = blobs(120, 3)
    Xs, ys, Xc, yc = held_out_check(X_val, y_val, 0.5, seed=0)
    strat = Scripted(good=2)
    done, model = label_pool(
        LogisticModel(l2=1.0), X_lab, y_lab, ArrayPool(X_pool), Xs, ys, strategy=strat,
        budget=20, rounds=6, random_state=0, X_check=Xc, y_check=yc,
    )  # fmt: skip
    kept = [r for r in done if r.kept]
    assert not done[-1].kept and all(r.kept for r in done[:-1])
    assert termination(done, 6, ArrayPool(X_pool)) == "held_out_loss"
    # The strategy was only ever handed the steering part.
    assert all(np.array_equal(v, Xs) for v in strat.seen_)
    # Independent refits: kept rounds lower the hand-computed held-out loss; the dropped
    # round, refit with its rows, does not; the returned model is the last kept one.
    losses = [hand_loss(LogisticModel(l2=1.0).fit(X_lab, y_lab), Xc, yc)]
    X_fit, y_fit = X_lab, y_lab
    for r in done:
        X_try = np.vstack([X_fit, X_pool[r.rows]])
        y_try = np.concatenate([y_fit, r.labels])
        loss = hand_loss(LogisticModel(l2=1.0).fit(X_try, y_try), Xc, yc)
        assert r.held_out_loss == pytest.approx(loss, rel=1e-5)
        assert r.held_out_loss_before == pytest.approx(losses[-1], rel=1e-5)
        if r.kept:
            assert loss < losses[-1]
            X_fit, y_fit = X_try, y_try
            losses.append(loss)
        else:
            assert loss >= losses[-1]
    assert len(kept) >= 1
    refit = LogisticModel(l2=1.0).fit(X_fit, y_fit)
    np.testing.assert_allclose(model.predict_proba(Xc), refit.predict_proba(Xc), atol=1e-5)
    acc = np.mean(refit.predict(Xc) == yc)
    assert done[-1].held_out_accuracy_before == pytest.approx(acc)


def test_without_a_check_every_round_runs_on_the_whole_validation_set():
    X_lab, y_lab = blobs(40, 1)
    X_pool, _ = blobs(200, 2)
    X_val, y_val = blobs(120, 3)
    strat = Scripted(good=2)
    done, _ = label_pool(
        LogisticModel(l2=1.0), X_lab, y_lab, ArrayPool(X_pool), X_val, y_val,
        strategy=strat, budget=20, rounds=6, random_state=0,
    )  # fmt: skip
    assert len(done) == 6 and all(r.kept for r in done)
    assert all(np.isnan(r.held_out_loss) for r in done)
    assert all(v is X_val for v in strat.seen_)


def test_labeler_drops_the_round_and_reports_why():
    X_lab, y_lab = blobs(150, 1)
    X_pool, _ = blobs(200, 2)
    X = np.vstack([X_lab, X_pool])
    y = np.concatenate([y_lab, np.full(len(X_pool), -1)])
    lab = SalutaryLabeler(
        LogisticModel(l2=1.0), strategy=Scripted(good=2), budget=20, rounds=6, random_state=0
    ).fit(X, y)
    assert lab.check_fraction == CHECK_FRACTION
    assert lab.termination_condition_ == "held_out_loss"
    assert lab.n_iter_ == np.max(lab.labeled_iter_) >= 1
    # Only the kept rounds' rows are labeled; the dropped round's are not.
    assert np.sum(lab.labeled_iter_ > 0) == 20 * lab.n_iter_
    assert len(lab.held_out_loss_) == lab.n_iter_ + 2  # initial, kept rounds, dropped
    assert np.all(np.diff(lab.held_out_loss_[:-1]) < 0)
    assert lab.held_out_loss_[-1] >= lab.held_out_loss_[-2]
    assert len(lab.validation_loss_) == lab.n_iter_ + 1
    # The check's rows are validation rows: the selection saw the other part only.
    val_rows = np.flatnonzero(lab.validation_mask_)
    assert all(len(v) < len(val_rows) for v in lab.strategy.seen_)
    off = SalutaryLabeler(
        LogisticModel(l2=1.0), strategy=Scripted(good=2), budget=20, rounds=6,
        random_state=0, check_fraction=None,
    ).fit(X, y)  # fmt: skip
    assert (off.n_iter_, off.termination_condition_, off.held_out_loss_) == (6, "max_iter", [])
    assert all(len(v) == len(val_rows) for v in off.strategy.seen_)


def test_a_spec_sets_the_check_in_the_benchmark_and_runs_keep_all_rounds():
    assert loop_options("salutary-newton:check=0.3:steps=1") == {"check": 0.3}
    _, params = parse_strategy("salutary-newton:check=0.3:steps=1")
    assert params == {"steps": 1}
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        parse_strategy("salutary-newton:check=2")
    X_lab, y_lab = blobs(60, 1)
    X_pool, y_pool = blobs(300, 2)
    X_val, y_val = blobs(150, 3)
    X_test, y_test = blobs(300, 4)
    args = (X_lab, y_lab, X_pool, X_val, y_val, X_test, y_test)
    kw = dict(budget=10, rounds=8, seed=3, y_pool=y_pool, model=LogisticModel(l2=1.0))
    by_spec = run_active_learning(*args, strategy="salutary-newton:check=0.5", **kw)
    by_arg = run_active_learning(*args, strategy="salutary-newton", check_fraction=0.5, **kw)
    assert by_spec.accuracy == by_arg.accuracy
    for res in (by_spec, by_arg):
        assert len(res.accuracy) == len(res.n_labeled) == len(res.held_out_loss) == 9
        assert len(res.selected) == len(res.seconds) == 8
    frame = by_spec.to_frame()
    assert list(frame["round"]) == list(range(9))
    if by_spec.stopped is not None:  # from the dropped round on: the model kept
        s = by_spec.stopped
        assert all(len(p) == 0 for p in by_spec.selected[s - 1 :])
        assert len(set(by_spec.accuracy[s - 1 :])) == 1
        assert len(set(by_spec.n_labeled[s - 1 :])) == 1
    held = np.asarray(by_spec.held_out_loss)
    assert np.all(np.diff(held) <= 0)


# ------------------------------------------------------------------- salutary label
def test_label_prints_the_held_out_summary_and_writes_the_kept_rounds_only(tmp_path):
    """One summary line; the accuracy before is the initial model's on the held-out
    rows, computed independently; the file holds the kept rounds' rows only."""
    import json
    import re

    from test_cli import BUDGET, ROUNDS, Files, assert_ok, encode, invoke, read

    files = Files(tmp_path)
    result = invoke(files.args("--seed", "4"))
    assert_ok(result)
    [line] = [x for x in result.stdout.splitlines() if x.startswith("held-out accuracy")]
    m = re.fullmatch(
        r"held-out accuracy (\d\.\d{3}) -> (\d\.\d{3}) \((\d+) held-out validation rows\); "
        rf"kept (\d+) of {ROUNDS} rounds \((all rounds ran|stopped: held-out loss "
        r"(rose|did not fall))\)",
        line,
    )
    assert m, line
    X_lab, _, X_val, y_lab, y_val = encode(files)
    _, _, X_check, y_check = held_out_check(X_val, y_val, CHECK_FRACTION, check_seed(4))
    assert int(m.group(3)) == len(y_check) == round(CHECK_FRACTION * len(y_val))
    initial = LogisticModel(l2=50.0).fit(X_lab, y_lab)
    assert float(m.group(1)) == pytest.approx(
        np.mean(initial.predict(X_check) == y_check), abs=5e-4
    )
    kept = int(m.group(4))
    out = read(files.output)
    assert len(out) == BUDGET * kept
    assert set(out["salutary_round"]) == set(range(1, kept + 1))
    files.output.unlink()
    doc = json.loads(invoke(files.args("--seed", "4", "--json")).stdout)
    assert doc["rounds_kept"] == kept and doc["held_out"]["rows"] == len(y_check)
    assert doc["held_out"]["accuracy_before"] == pytest.approx(float(m.group(1)), abs=5e-4)
    assert doc["termination"] == ("max_iter" if kept == ROUNDS else "held_out_loss")


def test_label_no_check_runs_every_round_and_bad_check_options_are_refused(tmp_path):
    from test_cli import BUDGET, ROUNDS, Files, assert_bad_input, assert_ok, invoke, read

    files = Files(tmp_path)
    result = invoke(files.args("--no-check"))
    assert_ok(result)
    assert len(read(files.output)) == BUDGET * ROUNDS
    assert "held-out accuracy" not in result.stdout
    files.output.unlink()
    assert_bad_input(invoke(files.args("--check", "1")), files.out_dir, "--check 1")
    assert_bad_input(
        invoke(files.args("--strategy", "salutary-newton:check=0.3")),
        files.out_dir, "check= is not a strategy parameter", "--no-check",
    )  # fmt: skip
    help_text = invoke(["label", "--help"]).stdout
    assert f"[default: {CHECK_FRACTION}]" in help_text


# ------------------------------------------------------------------------ the report
def test_report_table_tests_against_the_initial_model_and_random_with_holm():
    from scipy.stats import ttest_rel

    from salutary.benchmark.report import checked_strategies, held_out_check_table

    rng = np.random.default_rng(0)
    seeds = np.arange(10)
    rows = []
    for dataset, drop in (("a", 0.0), ("b", -0.05), ("c", 0.02)):
        initial = 0.7 + 0.01 * rng.random(10)
        plain = initial + 0.04 + 0.01 * rng.random(10)
        mine = initial + drop + 0.002 * rng.random(10) * (drop != 0)
        rand = initial + 0.01 + 0.01 * rng.random(10)
        for strategy, final in (("salutary-newton", plain), ("random", rand),
                                ("salutary-newton:check=0.3", mine)):  # fmt: skip
            for s in seeds:
                rows.append(dict(dataset=dataset, strategy=strategy, seed=s,
                                 initial=initial[s], final=final[s],
                                 gain=final[s] - initial[s]))  # fmt: skip
    runs = pd.DataFrame(rows)
    assert checked_strategies(set(runs["strategy"])) == ["salutary-newton:check=0.3"]
    tab = held_out_check_table(runs, "salutary-newton:check=0.3").set_index("dataset")
    # a: nothing added on any seed, no test possible: a tie.
    assert tab.loc["a", "vs_initial"] == 0 and tab.loc["a", "outcome_initial"] == "tie"
    # b and c: scipy's paired t-test, Holm over the two testable datasets by hand.
    p = {d: ttest_rel(*(runs[(runs.dataset == d) & (runs.strategy == "salutary-newton:check=0.3")]
                        [c] for c in ("final", "initial"))).pvalue for d in "bc"}  # fmt: skip
    lo, hi = sorted(p, key=p.get)
    assert tab.loc[lo, "p_initial_holm"] == pytest.approx(min(1, 2 * p[lo]))
    assert tab.loc[hi, "p_initial_holm"] == pytest.approx(max(min(1, 2 * p[lo]), p[hi]))
    assert tab.loc["b", "outcome_initial"] == "loss" and tab.loc["c", "outcome_initial"] == "win"
    assert tab.loc["b", "outcome_random"] == "loss"
    # kept: the checked gain over the unchecked one.
    sub = runs[runs.dataset == "c"].groupby("strategy")["gain"].mean()
    assert tab.loc["c", "kept"] == pytest.approx(
        sub["salutary-newton:check=0.3"] / sub["salutary-newton"]
    )
