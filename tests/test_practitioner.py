"""The practitioner's protocol: every method spends exactly T true labels, the salutary
methods train their final model on initial + validation + machine labels, runs repeat."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification

from salutary.benchmark import practitioner as pr
from salutary.datasets import Dataset
from salutary.model import LogisticModel

FAST = {"budget": 5, "rounds": 3}


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(
        n_samples=500, n_features=6, n_informative=4, n_classes=3, random_state=0
    )
    return X, np.array(["a", "b", "c"])[y]


@pytest.fixture(scope="module")
def split(data):
    return pr.practitioner_split(*data, 40, seed=3)


def _rows(X: np.ndarray) -> set[bytes]:
    return {r.tobytes() for r in np.ascontiguousarray(X)}


def test_split_parts_sizes_and_disjoint(split):
    assert len(split.y_true) == 40
    assert len(split.y_test) == 100
    assert len(split.y_pool) == 500 - 100 - 40
    parts = [_rows(a) for a in (split.X_true, split.X_pool, split.X_test)]
    assert sum(map(len, parts)) == len(set().union(*parts)) == 500
    # Standardized by the non-test rows.
    rest = np.vstack([split.X_true, split.X_pool])
    np.testing.assert_allclose(rest.mean(axis=0), 0, atol=1e-12)


def test_split_same_test_set_for_every_total(data):
    a = pr.practitioner_split(*data, 40, seed=5, standardize=False)
    b = pr.practitioner_split(*data, 120, seed=5, standardize=False)
    np.testing.assert_array_equal(a.X_test, b.X_test)
    c = pr.practitioner_split(*data, 40, seed=6, standardize=False)
    assert not np.array_equal(a.X_test, c.X_test)


def test_split_refuses_too_many_labels(data):
    with pytest.raises(ValueError, match="half"):
        pr.practitioner_split(*data, 201, seed=0)


def test_share_keeps_every_class_and_holds_out_the_share():
    y = np.array(["a"] * 30 + ["b"] * 8 + ["c"] * 2)
    keep, out = pr._share(y, 0.5, seed=1)
    assert len(out) == 20 and len(keep) == 20
    assert set(y[keep]) == {"a", "b", "c"}
    assert np.intersect1d(keep, out).size == 0


def test_all_labeled_is_the_model_on_the_T_labels(split):
    r = pr.all_labeled(split)
    ref = LogisticModel(l2=50.0).fit(split.X_true, split.y_true).score(split.X_test, split.y_test)
    assert r.accuracy == pytest.approx(ref)
    assert (r.n_true, r.n_train) == (40, 40)


@pytest.mark.parametrize("total", [40, 37])
def test_margin_spends_exactly_T_true_labels(data, total):
    split = pr.practitioner_split(*data, total, seed=2)
    calls: list[int] = []
    r = pr.margin_sampling(split, rounds=4, oracle_calls=calls)
    assert len(calls) == 4
    assert sum(calls) == total - total // 2
    assert max(calls) - min(calls) <= 1
    assert r.n_true == r.n_train == total


def test_true_labels_counted_at_the_loop(data, monkeypatch):
    """An independent count: wrap the labeling loop and add up what its oracle answered
    and what it started from; oracle-free methods never get the pool's truth."""
    split = pr.practitioner_split(*data, 40, seed=2)
    seen: list[tuple[int, int, bool]] = []
    loop = pr.run_active_learning

    def counting(X_lab, y_lab, *args, **kwargs):
        res = loop(X_lab, y_lab, *args, **kwargs)
        asked = sum(int(a.sum()) for a in res.asked)
        seen.append((len(y_lab), asked, kwargs["y_pool"] is not None))
        return res

    monkeypatch.setattr(pr, "run_active_learning", counting)
    pr.margin_sampling(split, rounds=4)
    assert seen == [(20, 20, True)]
    seen.clear()
    pr.salutary_holdout(split, holdout=0.25, **FAST)
    assert seen == [(30, 0, False)]
    seen.clear()
    pr.salutary_crossfit(split, **FAST)
    pr.self_training(split, **FAST)
    assert seen == [(40, 0, False), (40, 0, False)]


@pytest.mark.parametrize(
    "method",
    [
        pr.self_training,
        pr.salutary_crossfit,
        lambda s, **kw: pr.salutary_holdout(s, strategy="salutary-newton", **kw),
        lambda s, **kw: pr.salutary_holdout(s, strategy="salutary", holdout=0.5, **kw),
    ],
)
def test_oracle_free_methods_never_read_the_pool_truth(split, method):
    r = method(split, **FAST)
    assert r.n_true == 40
    assert r.n_train == 40 + 15
    garbage = dataclasses.replace(split, y_pool=np.full(len(split.y_pool), "a"))
    assert method(garbage, **FAST).accuracy == r.accuracy


def test_label_spreading_never_reads_the_pool_truth(split):
    r = pr.label_spreading(split, spreading_pool=200)
    assert (r.n_true, r.n_train) == (40, 240)
    garbage = dataclasses.replace(split, y_pool=np.full(len(split.y_pool), "a"))
    assert pr.label_spreading(garbage, spreading_pool=200).accuracy == r.accuracy


def test_salutary_final_model_is_initial_validation_and_machine_labels(split):
    seen = {}
    r = pr.salutary_holdout(
        split, holdout=0.25, final_model=lambda X, y: seen.update(X=X, y=y), **FAST
    )
    X, y = seen["X"], seen["y"]
    assert len(y) == r.n_train == 40 + 15
    # The first 40 rows are the T true labels (initial + validation), with their labels.
    true = {row.tobytes(): lab for row, lab in zip(split.X_true, split.y_true, strict=True)}
    assert {row.tobytes(): lab for row, lab in zip(X[:40], y[:40], strict=True)} == true
    # The rest are distinct pool rows.
    pool = _rows(split.X_pool)
    added = _rows(X[40:])
    assert len(added) == 15 and added <= pool
    # An independent refit on those rows gives the reported accuracy.
    ref = LogisticModel(l2=50.0).fit(X, y).score(split.X_test, split.y_test)
    assert r.accuracy == pytest.approx(ref)
    # ... and the machine labels are the loop's, not the truth (agreement below 1 or not).
    truth = {row.tobytes(): lab for row, lab in zip(split.X_pool, split.y_pool, strict=True)}
    agree = np.mean([truth[row.tobytes()] == lab for row, lab in zip(X[40:], y[40:], strict=True)])
    assert agree == pytest.approx(r.agreement)


def test_same_seed_same_result(data):
    s1 = pr.practitioner_split(*data, 40, seed=4)
    s2 = pr.practitioner_split(*data, 40, seed=4)
    for f in (pr.salutary_holdout, pr.margin_sampling, pr.label_spreading, pr.self_training):
        kw = {"rounds": 3} if f is pr.margin_sampling else {} if f is pr.label_spreading else FAST
        assert f(s1, **kw) == f(s2, **kw)
    other = pr.practitioner_split(*data, 40, seed=5)
    assert pr.salutary_holdout(other, **FAST) != pr.salutary_holdout(s1, **FAST)


def test_run_practitioner_skips_large_totals_and_writes_atomically(tmp_path, monkeypatch, data):
    X, y = data
    monkeypatch.setattr(pr, "_dataset", lambda name: Dataset(name, X, y, [], "y", ""))
    out = tmp_path / "runs.csv"
    methods = ["all-labeled", "margin"]
    runs = pr.run_practitioner(["toy"], [40, 300], [0, 1], methods=methods, output=out)
    assert set(runs["total"]) == {40}  # 300 > half of the 400 non-test rows
    assert len(runs) == 2 * 2
    assert (runs["n_true"] == 40).all()
    on_disk = pd.read_csv(out)
    assert len(on_disk) == 4
    assert [p.name for p in tmp_path.iterdir()] == ["runs.csv"]
    with pytest.raises(ValueError, match="unknown methods"):
        pr.run_practitioner(["toy"], [40], [0], methods=["nope"])


def test_summarize_wilcoxon_and_holm():
    rows = []
    for d, gain in (("x", 0.02), ("y", 0.0)):
        for s in range(10):
            base = 0.7 + 0.01 * s
            rows.append({"dataset": d, "total": 100, "seed": s, "method": "all-labeled",
                         "accuracy": base})  # fmt: skip
            noise = 0.001 * (s % 3 - 1) if gain == 0 else 0.0
            rows.append({"dataset": d, "total": 100, "seed": s, "method": "m",
                         "accuracy": base + gain + noise})  # fmt: skip
    t = pr.summarize_practitioner(pd.DataFrame(rows)).set_index(["dataset", "method"])
    assert t.loc[("x", "m"), "wins"] == 10
    assert t.loc[("x", "m"), "diff"] == pytest.approx(0.02)
    assert t.loc[("x", "m"), "p"] == pytest.approx(2 / 2**10)
    # Holm over the two datasets: the smallest p doubled.
    assert t.loc[("x", "m"), "p_holm"] == pytest.approx(2 * 2 / 2**10)
    assert t.loc[("y", "m"), "p"] > 0.05
    assert np.isnan(t.loc[("x", "all-labeled"), "p"])


def test_choose_l2_picks_from_the_grid_and_cv_variants_use_it(split, monkeypatch):
    assert pr.choose_l2(split) in pr.CV_L2
    # A grid of one value is that value; all-labeled-cv then equals all-labeled with it.
    assert pr.choose_l2(split, grid=[7.0]) == 7.0
    monkeypatch.setattr(pr, "choose_l2", lambda s, **kw: 3.0)
    assert pr.all_labeled_cv(split) == pr.all_labeled(split, l2=3.0)
    a = pr.salutary_holdout(split, l2="cv", **FAST)
    assert a == pr.salutary_holdout(split, l2=3.0, **FAST)
    assert pr.margin_sampling(split, l2="cv", rounds=3) == pr.margin_sampling(
        split, l2=3.0, rounds=3
    )


def test_a_failing_method_is_recorded_not_fatal(monkeypatch, data):
    X, y = data
    monkeypatch.setattr(pr, "_dataset", lambda name: Dataset(name, X, y, [], "y", ""))

    def boom(split):
        raise RuntimeError("no")

    monkeypatch.setitem(pr.METHODS, "boom", boom)
    rows = pr._one("toy", 40, 0, ["boom", "all-labeled"])
    assert np.isnan(rows[0]["accuracy"]) and rows[0]["error"] == "RuntimeError: no"
    assert rows[1]["accuracy"] > 0.5 and rows[1]["error"] == ""


def test_resume_runs_only_the_missing_methods(tmp_path, monkeypatch, data):
    X, y = data
    monkeypatch.setattr(pr, "_dataset", lambda name: Dataset(name, X, y, [], "y", ""))
    out = tmp_path / "runs.csv"
    first = pr.run_practitioner(["toy"], [40], [0], methods=["all-labeled"], output=out)
    calls: list[list[str]] = []
    one = pr._one
    monkeypatch.setattr(pr, "_one", lambda d, t, s, m: calls.append(list(m)) or one(d, t, s, m))
    both = pr.run_practitioner(
        ["toy"], [40], [0], methods=["all-labeled", "margin"], output=out, resume=True
    )
    assert calls == [["margin"]]
    assert sorted(both["method"]) == ["all-labeled", "margin"]
    kept = both[both["method"] == "all-labeled"]["accuracy"].iloc[0]
    assert kept == first["accuracy"].iloc[0]


def test_write_atomic_gives_ordinary_permissions(tmp_path):
    out = tmp_path / "t.csv"
    pr.write_atomic(pd.DataFrame({"a": [1]}), out)
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask
    assert pd.read_csv(out)["a"].tolist() == [1]
