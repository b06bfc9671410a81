"""The labeling loop on a bundled dataset."""

from __future__ import annotations

import numpy as np
import pytest

from salutary import LogisticModel, SalutaryLabeler, influence_matrix, run_active_learning
from salutary.datasets import load_dataset
from salutary.experiment import paper_split, run_experiment, summarize
from salutary.strategies import Selection, Strategy, get_strategy


@pytest.fixture(scope="module")
def split():
    data = load_dataset("wine_quality")
    return paper_split(data.X, data.y, seed=0, n_initial=150)


def _run(split, strategy, *, seed=0, with_truth=True, **kw):
    kw.setdefault("budget", 10)
    kw.setdefault("rounds", 3)
    return run_active_learning(
        split.X_labeled,
        split.y_labeled,
        split.X_pool,
        split.X_val,
        split.y_val,
        split.X_test,
        split.y_test,
        strategy=strategy,
        seed=seed,
        y_pool=split.y_pool if with_truth else None,
        **kw,
    )


@pytest.mark.parametrize("strategy", ["salutary", "random", "margin"])
def test_reproducible_by_seed(split, strategy):
    a, b = _run(split, strategy, seed=3), _run(split, strategy, seed=3)
    assert a.accuracy == b.accuracy
    for x, y in zip(a.selected + a.labels, b.selected + b.labels, strict=True):
        np.testing.assert_array_equal(x, y)


def test_result_shape_and_bookkeeping(split):
    r = _run(split, "entropy", rounds=4, budget=7)
    assert len(r.accuracy) == 5 and len(r.validation_loss) == 5
    assert [len(s) for s in r.selected] == [7] * 4
    chosen = np.concatenate(r.selected)
    assert len(np.unique(chosen)) == 28  # never twice across rounds
    assert r.n_labeled == [len(split.y_labeled) + 7 * i for i in range(5)]
    # accuracy is the test accuracy of the final model
    assert r.accuracy[-1] == np.mean(r.model.predict(split.X_test) == split.y_test)
    frame = r.to_frame()
    assert list(frame["round"]) == [0, 1, 2, 3, 4]


def test_oracle_strategies_get_true_labels(split):
    for strategy in ("salutary-oracle", "random", "entropy", "margin", "least-confidence"):
        r = _run(split, strategy)
        for chosen, labels in zip(r.selected, r.labels, strict=True):
            np.testing.assert_array_equal(labels, split.y_pool[chosen])
        assert r.agreement == [1.0] * 3


def test_salutary_never_reads_pool_labels(split):
    blind = _run(split, "salutary", with_truth=False)
    # Handing it scrambled truth changes nothing but the after-the-fact agreement.
    scrambled = split.y_pool[np.random.default_rng(0).permutation(len(split.y_pool))]
    split_scrambled = type(split)(**{**vars(split), "y_pool": scrambled})
    told = _run(split_scrambled, "salutary")
    assert blind.accuracy == told.accuracy
    for a, b in zip(blind.labels, told.labels, strict=True):
        np.testing.assert_array_equal(a, b)
    assert all(np.isnan(blind.agreement))


def test_salutary_labels_are_the_influence_argmax(split):
    r = _run(split, "salutary", rounds=1)
    model = LogisticModel(l2=50.0).fit(split.X_labeled, split.y_labeled)
    I = influence_matrix(model, split.X_labeled, split.X_val, split.y_val, split.X_pool)
    best = I.max(axis=1)
    # Wine Quality has duplicate rows, so equal scores may swap places: compare the
    # scores picked and each picked row's label.
    np.testing.assert_allclose(np.sort(best[r.selected[0]]), np.sort(best)[-10:], rtol=1e-9)
    np.testing.assert_array_equal(r.labels[0], model.classes_[I[r.selected[0]].argmax(axis=1)])
    # the salutary labels differ from the truth somewhere: they are not oracle labels
    oracle = _run(split, "salutary-oracle", rounds=1)
    np.testing.assert_array_equal(oracle.selected[0], r.selected[0])


def test_errors_are_clear(split):
    with pytest.raises(ValueError, match="oracle: pass y_pool"):
        _run(split, "margin", with_truth=False)
    with pytest.raises(ValueError, match="exceeds the pool"):
        _run(split, "random", budget=len(split.y_pool), rounds=2)
    with pytest.raises(ValueError, match="unknown strategy 'best'"):
        _run(split, "best")
    one_class = type(split)(**{**vars(split), "y_labeled": np.full(len(split.y_labeled), 5)})
    with pytest.raises(ValueError, match="single class"):
        _run(one_class, "random")
    bad_val = type(split)(**{**vars(split), "y_val": np.full(len(split.y_val), 42)})
    with pytest.raises(ValueError, match="never seen"):
        _run(bad_val, "salutary")


def test_labeler_follows_semi_supervised_convention(split):
    X = np.vstack([split.X_labeled, split.X_pool])
    y = np.concatenate([split.y_labeled, np.full(len(split.y_pool), -1)])
    rounds_seen = []
    lab = SalutaryLabeler(
        budget=10,
        rounds=3,
        strategy="salutary",
        random_state=0,
        callback=lambda r, _: rounds_seen.append(r),
        check_fraction=None,  # compared below with a run on the whole validation set
    ).fit(X, y, split.X_val, split.y_val)
    assert rounds_seen == [0, 1, 2, 3]
    n0 = len(split.y_labeled)
    assert np.all(lab.labeled_iter_[:n0] == 0)
    assert np.sum(lab.labeled_iter_ > 0) == 30
    assert np.all(lab.transduction_[lab.labeled_iter_ == -1] == -1)
    # Same rows and labels as the loop's salutary strategy on the same data.
    ref = _run(split, "salutary", with_truth=False)
    got = np.flatnonzero(lab.labeled_iter_ > 0) - n0
    np.testing.assert_array_equal(np.sort(got), np.sort(np.concatenate(ref.selected)))
    order = np.argsort(np.concatenate(ref.selected))
    np.testing.assert_array_equal(
        lab.transduction_[n0 + np.sort(got)], np.concatenate(ref.labels)[order]
    )
    assert lab.predict(split.X_test).shape == split.y_test.shape
    with pytest.raises(ValueError, match="needs an oracle"):
        SalutaryLabeler(strategy="margin").fit(X, y, split.X_val, split.y_val)


def test_experiment_pairs_strategies_on_the_same_split():
    data = load_dataset("breast_cancer")
    res = run_experiment(
        data.X, data.y, strategies=["random", "salutary"], seeds=[0, 1], rounds=2, n_initial=40
    )
    assert len(res) == 2 * 2 * 3
    start = res[res["round"] == 0].pivot(index="seed", columns="strategy", values="accuracy")
    np.testing.assert_array_equal(start["random"], start["salutary"])
    s = summarize(res)
    assert set(s.columns) >= {"strategy", "round", "mean", "std"}
    assert (s["count"] == 2).all()


def test_paper_split_proportions_and_determinism():
    data = load_dataset("wine_quality")
    a = paper_split(data.X, data.y, seed=4)
    b = paper_split(data.X, data.y, seed=4)
    np.testing.assert_array_equal(a.X_pool, b.X_pool)
    n = len(data.y)
    assert len(a.y_test) == pytest.approx(0.2 * n, abs=2)
    assert len(a.y_labeled) == 300
    assert set(np.unique(a.y_val)) <= set(np.unique(a.y_labeled))
    total = len(a.y_labeled) + len(a.y_pool) + len(a.y_val) + len(a.y_test)
    assert n - total <= 2  # only validation rows of a class absent from the pool dropped


def test_drop_rows_in_place_equals_delete():
    from salutary.pool import drop_rows

    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3))
    for rows in ([], [0], [49], [3, 4, 5], [0, 10, 49], list(rng.choice(50, 20, replace=False))):
        work = X.copy()
        drop_rows(work, 50, np.array(rows, dtype=np.intp))
        np.testing.assert_array_equal(work[: 50 - len(rows)], np.delete(X, rows, axis=0))


class _AskEven(Strategy):
    """Random picks, all labeled with the first class; the oracle is asked about the
    picks at even pool positions (a hand-made mixed strategy)."""

    name = "ask-even"

    def __init__(self) -> None:
        self.trusted_seen: list[np.ndarray] = []

    def _select(self, model, X_train, y_train, pool, budget, *, trusted=None, rng, **_):
        self.trusted_seen.append(np.asarray(trusted).copy())
        idx = rng.choice(pool.n_rows, size=budget, replace=False)
        return Selection(
            indices=idx,
            scores=np.zeros(budget),
            labels=np.full(budget, model.classes_[0]),
            ask=idx % 2 == 0,
        )


def _loop(split, strategy, oracle, rounds=3, budget=10):
    """The loop with a caller's oracle; returns what on_round saw per round."""
    from salutary.loop import run_rounds
    from salutary.pool import ArrayPool

    seen = []
    run_rounds(
        LogisticModel(l2=50.0), strategy, split.X_labeled, split.y_labeled,
        ArrayPool(split.X_pool), split.X_val, split.y_val, budget=budget, rounds=rounds,
        rng=np.random.default_rng(0), oracle=oracle,
        on_round=lambda done: seen.append((done.rows, done.labels, done.asked)),
    )  # fmt: skip
    return seen[1:]


def test_oracle_is_asked_only_about_the_picks_the_strategy_sends(split):
    calls = []

    def oracle(idx):
        calls.append(np.array(idx))
        return split.y_pool[idx]

    strategy = _AskEven()
    rounds = _loop(split, strategy, oracle)
    assert len(calls) == 3
    first = split.y_labeled.min()  # LogisticModel's classes_ are sorted
    remaining = np.arange(len(split.y_pool))
    for r, ((chosen, labels, asked), call) in enumerate(zip(rounds, calls, strict=True)):
        # Positions in the pool the strategy saw this round, recovered from `chosen`.
        pos = np.searchsorted(remaining, chosen)
        np.testing.assert_array_equal(asked, pos % 2 == 0)
        np.testing.assert_array_equal(call, chosen[asked])
        np.testing.assert_array_equal(labels[asked], split.y_pool[chosen[asked]])
        assert np.all(labels[~asked] == first)
        remaining = np.setdiff1d(remaining, chosen)
        # The next round's `trusted`: the initial set, then exactly the asked rows.
        if r + 1 < len(strategy.trusted_seen):
            expected = np.concatenate(
                [np.ones(len(split.y_labeled), bool), *[a for _, _, a in rounds[: r + 1]]]
            )
            np.testing.assert_array_equal(strategy.trusted_seen[r + 1], expected)


def test_plain_strategies_ask_all_or_nothing(split):
    calls = []

    def oracle(idx):
        calls.append(np.array(idx))
        return split.y_pool[idx]

    for chosen, _, asked in _loop(split, get_strategy("margin"), oracle, rounds=2):
        assert asked.all()
        np.testing.assert_array_equal(calls.pop(0), chosen)
    for _, _, asked in _loop(split, get_strategy("salutary"), None, rounds=2):
        assert not asked.any()


def test_bad_oracle_requests_are_refused(split):
    class FreeButAsks(_AskEven):
        requires_oracle = False
        name = "free-but-asks"

    with pytest.raises(RuntimeError, match="asks the oracle but has requires_oracle = False"):
        _loop(split, FreeButAsks(), None, rounds=1)

    class WrongShape(_AskEven):
        name = "wrong-shape"

        def _select(self, *args, **kwargs):
            sel = super()._select(*args, **kwargs)
            return Selection(sel.indices, sel.scores, sel.labels, ask=sel.ask[:-1])

    with pytest.raises(RuntimeError, match="expected booleans of shape"):
        _loop(split, WrongShape(), lambda idx: split.y_pool[idx], rounds=1)


def test_n_true_counts_oracle_labels_spent(split):
    assert _run(split, "random").n_true == [0, 10, 20, 30]
    assert _run(split, "salutary").n_true == [0, 0, 0, 0]
    mixed = _run(split, _AskEven())
    expected = np.cumsum([0, *[a.sum() for a in mixed.asked]])
    assert mixed.n_true == expected.tolist()
    assert 0 < mixed.n_true[-1] < 30  # some picks asked, not all (seed 0)
    frame = mixed.to_frame()
    assert frame["n_true"].tolist() == mixed.n_true
    assert frame["n_labeled"].tolist() == [len(split.y_labeled) + 10 * r for r in range(4)]


class _Recorder:
    """An oracle that answers from the truth and remembers every question."""

    def __init__(self, truth):
        self.truth, self.calls = truth, []

    def __call__(self, idx):
        self.calls.append(np.array(idx))
        return self.truth[idx]


def test_hybrid_round_is_newton_plus_true_labels_for_the_asked(split):
    from salutary.strategies import SalutaryHybrid

    oracle = _Recorder(split.y_pool)
    hybrid = _loop(split, SalutaryHybrid(true_fraction=0.3), oracle)
    newton = _loop(split, get_strategy("salutary-newton"), None, rounds=1)
    (chosen, labels, asked), (n_chosen, n_labels, _) = hybrid[0], newton[0]
    np.testing.assert_array_equal(chosen, n_chosen)  # same first-round picks
    np.testing.assert_array_equal(labels[~asked], n_labels[~asked])
    np.testing.assert_array_equal(labels[asked], split.y_pool[chosen[asked]])
    # One question per round, about exactly round(0.3 * 10) = 3 picks: the asked ones.
    assert len(oracle.calls) == 3
    for (chosen, _, asked), call in zip(hybrid, oracle.calls, strict=True):
        assert asked.sum() == 3
        np.testing.assert_array_equal(call, chosen[asked])


def test_hybrid_fraction_zero_is_newton_and_never_asks(split):
    from salutary.strategies import SalutaryHybrid

    def oracle(idx):
        raise AssertionError(f"oracle asked about {idx}")

    hybrid = _loop(split, SalutaryHybrid(true_fraction=0.0), oracle, rounds=2)
    newton = _loop(split, get_strategy("salutary-newton"), None, rounds=2)
    for (c, lab, asked), (nc, nlab, _) in zip(hybrid, newton, strict=True):
        np.testing.assert_array_equal(c, nc)
        np.testing.assert_array_equal(lab, nlab)
        assert not asked.any()


def test_hybrid_fraction_one_is_an_oracle_strategy_with_newtons_picks(split):
    from salutary.strategies import NewtonGreedySalutary, SalutaryHybrid

    class NewtonOracle(NewtonGreedySalutary):
        requires_oracle = True
        name = "newton-oracle"

        def _select(self, *args, **kwargs):
            sel = super()._select(*args, **kwargs)
            return Selection(indices=sel.indices, scores=sel.scores)

    a, b = _Recorder(split.y_pool), _Recorder(split.y_pool)
    hybrid = _loop(split, SalutaryHybrid(true_fraction=1.0), a, rounds=2)
    oracle = _loop(split, NewtonOracle(), b, rounds=2)
    for (c, lab, asked), (oc, olab, _) in zip(hybrid, oracle, strict=True):
        np.testing.assert_array_equal(c, oc)
        np.testing.assert_array_equal(lab, olab)
        np.testing.assert_array_equal(lab, split.y_pool[c])
        assert asked.all()
    for x, y in zip(a.calls, b.calls, strict=True):
        np.testing.assert_array_equal(x, y)


def test_hybrid_n_true_in_a_run(split):
    r = _run(split, "salutary-hybrid")  # true_fraction 0.3, budget 10, 3 rounds
    assert r.n_true == [0, 3, 6, 9]
    assert r.to_frame()["n_true"].tolist() == [0, 3, 6, 9]
    for chosen, labels, asked in zip(r.selected, r.labels, r.asked, strict=True):
        np.testing.assert_array_equal(labels[asked], split.y_pool[chosen[asked]])
    with pytest.raises(ValueError, match="oracle: pass y_pool"):
        _run(split, "salutary-hybrid", with_truth=False)


class _PickNothingInRoundTwo(Strategy):
    """Random picks with the first class, except round 2 picks nothing (abstains)."""

    requires_oracle = False
    name = "nothing-in-round-two"

    def __init__(self) -> None:
        self.calls = 0

    def _select(self, model, X_train, y_train, pool, budget, *, rng, **_):
        self.calls += 1
        n = 0 if self.calls == 2 else budget
        idx = rng.choice(pool.n_rows, n, replace=False)
        return Selection(idx, np.zeros(n), np.full(n, model.classes_[0]))


def test_a_round_that_picks_nothing_keeps_the_training_set():
    from conftest import make_classification_data

    X, y = make_classification_data(400, 4, 3, seed=2)
    result = run_active_learning(
        X[:30], y[:30], X[30:300], X[300:350], y[300:350], X[350:], y[350:],
        strategy=_PickNothingInRoundTwo(), y_pool=y[30:300], budget=5, rounds=3, seed=0,
    )  # fmt: skip
    frame = result.to_frame()
    assert frame["n_labeled"].tolist() == [30, 35, 35, 40]
    # No pick, same training set: the refit gives the same test accuracy.
    assert frame["accuracy"].iloc[2] == frame["accuracy"].iloc[1]


def test_labeler_warns_about_a_small_validation_set():
    from conftest import make_classification_data

    from salutary.loop import SMALL_VALIDATION

    X, y = make_classification_data(500, 4, 3, seed=3)
    y_fit = np.where(np.arange(300) < 60, y[:300], -1)
    labeler = SalutaryLabeler(budget=5, rounds=1, strategy="salutary")
    small = SMALL_VALIDATION - 1
    with pytest.warns(UserWarning, match=f"the validation set has {small} rows"):
        labeler.fit(X[:300], y_fit, X[300 : 300 + small], y[300 : 300 + small])
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        enough = slice(300, 300 + SMALL_VALIDATION)
        labeler.fit(X[:300], y_fit, X[enough], y[enough])


@pytest.mark.parametrize("min_bytes", [0, 10**12])  # the mapped copy, the plain copy
def test_private_copy_equals_delete_and_can_be_compacted(min_bytes):
    from salutary.pool import drop_rows, private_copy_without

    X = np.asfortranarray(np.random.default_rng(1).normal(size=(300, 7)))
    rows = np.array([0, 5, 6, 299, 150])
    copy = private_copy_without(X, rows, min_bytes=min_bytes)
    np.testing.assert_array_equal(copy, np.delete(X, rows, axis=0))
    assert copy.flags.c_contiguous and copy.flags.writeable
    drop_rows(copy, len(copy), np.array([1, 2]))  # the loop compacts it in place
    np.testing.assert_array_equal(copy[:-2], np.delete(np.delete(X, rows, axis=0), [1, 2], 0))
