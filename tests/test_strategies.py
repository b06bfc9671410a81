"""Every strategy inherits one template of behavioural tests; specific ones follow."""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest
from scipy.stats import entropy

from salutary import InfluenceFactors, LogisticModel, influence_matrix
from salutary.strategies import (
    ISAL,
    STRATEGIES,
    BadgeSampling,
    CoreSetSampling,
    CrossFitSalutary,
    EntropySampling,
    LeastConfidenceSampling,
    MarginSampling,
    NewtonGreedySalutary,
    PredictedInfluence,
    RandomSampling,
    SalutaryHybrid,
    SalutaryLabeling,
    SalutaryOracle,
    SelfTraining,
    Strategy,
    ValidationTeacher,
    top_k,
)


@pytest.fixture(scope="module")
def round_data():
    from conftest import make_classification_data

    X, y = make_classification_data(700, 5, 3, seed=11)
    X_train, y_train = X[:80], y[:80]
    model = LogisticModel(l2=5.0).fit(X_train, y_train)
    return {
        "model": model,
        "X_train": X_train,
        "y_train": y_train,
        "X_pool": X[80:580],
        "X_val": X[580:],
        "y_val": y[580:],
    }


def _select(strategy, d, budget, seed):
    return strategy.select(
        d["model"],
        d["X_train"],
        d["y_train"],
        d["X_pool"],
        budget,
        X_val=d["X_val"],
        y_val=d["y_val"],
        rng=np.random.default_rng(seed),
    )


class StrategyTemplate:
    """Behaviour every strategy must have. Subclasses set ``strategy_class``."""

    strategy_class: type[Strategy]

    def make(self) -> Strategy:
        return self.strategy_class()

    @pytest.mark.parametrize("budget", [1, 7, 25])
    def test_budget_is_honoured(self, round_data, budget):
        sel = _select(self.make(), round_data, budget, seed=0)
        assert len(sel.indices) == budget
        assert len(sel.scores) == budget

    def test_never_picks_twice_and_stays_in_pool(self, round_data):
        sel = _select(self.make(), round_data, 50, seed=1)
        assert len(np.unique(sel.indices)) == 50
        assert np.all((sel.indices >= 0) & (sel.indices < len(round_data["X_pool"])))

    def test_budget_larger_than_pool_takes_the_whole_pool(self, round_data):
        small = dict(round_data, X_pool=round_data["X_pool"][:4])
        sel = _select(self.make(), small, 10, seed=0)
        assert sorted(sel.indices.tolist()) == [0, 1, 2, 3]

    def test_reproducible_by_seed(self, round_data):
        a = _select(self.make(), round_data, 20, seed=5)
        b = _select(self.make(), round_data, 20, seed=5)
        np.testing.assert_array_equal(a.indices, b.indices)

    def test_labels_unless_the_oracle_labels_every_pick(self, round_data):
        strategy = self.make()
        sel = _select(strategy, round_data, 10, seed=0)
        if sel.ask is not None:  # a mix: it labels every pick and asks about some
            assert strategy.requires_oracle
            assert sel.ask.dtype == bool and sel.ask.shape == (10,)
        if strategy.requires_oracle and sel.ask is None:
            assert sel.labels is None
        else:
            assert len(sel.labels) == 10
            assert set(np.unique(sel.labels)) <= set(round_data["model"].classes_)

    def test_is_never_handed_pool_labels(self):
        params = inspect.signature(self.strategy_class.select).parameters
        assert not any("y_pool" in p or p == "oracle" for p in params)

    def test_registered_under_its_name(self):
        assert STRATEGIES[self.strategy_class.name] is self.strategy_class


class TestRandom(StrategyTemplate):
    strategy_class = RandomSampling

    def test_different_seeds_differ(self, round_data):
        a = _select(self.make(), round_data, 20, seed=1)
        b = _select(self.make(), round_data, 20, seed=2)
        assert set(a.indices) != set(b.indices)


def _proba(d):
    return d["model"].predict_proba(d["X_pool"])


class TestEntropy(StrategyTemplate):
    strategy_class = EntropySampling

    def test_picks_highest_entropy(self, round_data):
        h = entropy(_proba(round_data), axis=1)
        sel = _select(self.make(), round_data, 10, seed=0)
        np.testing.assert_array_equal(sel.indices, np.argsort(-h)[:10])


class TestMargin(StrategyTemplate):
    strategy_class = MarginSampling

    def test_picks_smallest_margin(self, round_data):
        p = np.sort(_proba(round_data), axis=1)
        sel = _select(self.make(), round_data, 10, seed=0)
        np.testing.assert_array_equal(sel.indices, np.argsort(p[:, -1] - p[:, -2])[:10])


class TestLeastConfidence(StrategyTemplate):
    strategy_class = LeastConfidenceSampling

    def test_picks_lowest_confidence(self, round_data):
        conf = _proba(round_data).max(axis=1)
        sel = _select(self.make(), round_data, 10, seed=0)
        np.testing.assert_array_equal(sel.indices, np.argsort(conf)[:10])


class TestSalutary(StrategyTemplate):
    strategy_class = SalutaryLabeling

    def test_picks_largest_best_case_influence_with_its_label(self, round_data):
        d = round_data
        I = influence_matrix(d["model"], d["X_train"], d["X_val"], d["y_val"], d["X_pool"])
        sel = _select(self.make(), d, 10, seed=0)
        np.testing.assert_array_equal(sel.indices, np.argsort(-I.max(axis=1))[:10])
        np.testing.assert_array_equal(
            sel.labels, d["model"].classes_[I[sel.indices].argmax(axis=1)]
        )
        np.testing.assert_allclose(sel.scores, I[sel.indices].max(axis=1))

    def test_needs_validation_set(self, round_data):
        with pytest.raises(ValueError, match="validation"):
            self.make().select(
                round_data["model"],
                round_data["X_train"],
                round_data["y_train"],
                round_data["X_pool"],
                5,
                rng=np.random.default_rng(0),
            )


class TestSalutaryOracle(StrategyTemplate):
    strategy_class = SalutaryOracle

    def test_same_picks_as_salutary(self, round_data):
        a = _select(SalutaryLabeling(), round_data, 15, seed=3)
        b = _select(self.make(), round_data, 15, seed=3)
        np.testing.assert_array_equal(a.indices, b.indices)


class TestSelfTraining(StrategyTemplate):
    strategy_class = SelfTraining

    def test_most_confident_with_predicted_labels(self, round_data):
        proba = _proba(round_data)
        sel = _select(self.make(), round_data, 10, seed=0)
        np.testing.assert_array_equal(sel.indices, np.argsort(-proba.max(axis=1))[:10])
        np.testing.assert_array_equal(
            sel.labels, round_data["model"].classes_[proba[sel.indices].argmax(axis=1)]
        )


class TestValidationTeacher(StrategyTemplate):
    strategy_class = ValidationTeacher

    def test_teacher_is_fit_on_training_plus_validation_labels(self, round_data):
        d = round_data
        # Oracle: a teacher fit from scratch on L ∪ V, not warm started.
        teacher = LogisticModel(l2=5.0).fit(
            np.vstack([d["X_train"], d["X_val"]]), np.concatenate([d["y_train"], d["y_val"]])
        )
        proba = teacher.predict_proba(d["X_pool"])
        sel = _select(self.make(), d, 10, seed=0)
        np.testing.assert_array_equal(sel.indices, np.argsort(-proba.max(axis=1))[:10])
        np.testing.assert_array_equal(sel.labels, proba[sel.indices].argmax(axis=1))
        np.testing.assert_allclose(sel.scores, proba.max(axis=1)[sel.indices], rtol=1e-8)
        # The teacher knows more than the model: it must pick differently here.
        own = _proba(d).max(axis=1)
        assert set(sel.indices) != set(np.argsort(-own)[:10])

    def test_is_self_training_when_validation_rows_are_training_rows(self, round_data):
        # fair protocol: V is already in the training set, nothing is added twice.
        d = round_data
        X_lv = np.vstack([d["X_train"], d["X_val"]])
        y_lv = np.concatenate([d["y_train"], d["y_val"]])
        model = LogisticModel(l2=5.0).fit(X_lv, y_lv)
        fair = dict(d, model=model, X_train=X_lv, y_train=y_lv)
        a, b = _select(self.make(), fair, 10, seed=2), _select(SelfTraining(), fair, 10, seed=2)
        np.testing.assert_array_equal(a.indices, b.indices)
        np.testing.assert_array_equal(a.labels, b.labels)

    def test_margin_picks_what_margin_sampling_picks_with_the_teachers_labels(self, round_data):
        d = round_data
        teacher = LogisticModel(l2=5.0).fit(
            np.vstack([d["X_train"], d["X_val"]]), np.concatenate([d["y_train"], d["y_val"]])
        )
        sel = _select(ValidationTeacher(pick="margin"), d, 10, seed=4)
        margin = _select(MarginSampling(), d, 10, seed=4)
        np.testing.assert_array_equal(sel.indices, margin.indices)
        np.testing.assert_array_equal(
            sel.labels, teacher.predict_proba(d["X_pool"][sel.indices]).argmax(axis=1)
        )
        # The teacher disagrees with the model on some of these uncertain samples.
        assert np.any(sel.labels != d["model"].predict(d["X_pool"][sel.indices]))

    def test_bad_input(self, round_data):
        d = round_data
        with pytest.raises(ValueError, match="needs a labeled validation set"):
            self.make().select(d["model"], d["X_train"], d["y_train"], d["X_pool"], 5,
                               rng=np.random.default_rng(0))  # fmt: skip
        with pytest.raises(ValueError, match="'pick' parameter of ValidationTeacher"):
            _select(ValidationTeacher(pick="entropy"), d, 5, seed=0)


def _gradient_embedding(d):
    """Materialized BADGE embeddings (p - e_yhat) kron [x, 1]."""
    p = _proba(d)
    r = p - np.eye(p.shape[1])[p.argmax(axis=1)]
    xa = np.hstack([d["X_pool"], np.ones((len(p), 1))])
    return (r[:, :, None] * xa[:, None, :]).reshape(len(p), -1)


class TestBadge(StrategyTemplate):
    strategy_class = BadgeSampling

    def test_first_center_is_the_largest_gradient(self, round_data):
        g = _gradient_embedding(round_data)
        sel = _select(self.make(), round_data, 5, seed=0)
        assert sel.indices[0] == np.argmax(np.linalg.norm(g, axis=1))
        np.testing.assert_allclose(sel.scores, np.linalg.norm(g[sel.indices], axis=1))

    def test_never_picks_a_copy_of_a_center(self, round_data):
        # Pool = 40 distinct rows, each present 3 times: copies sit at distance 0.
        d = dict(round_data, X_pool=np.repeat(round_data["X_pool"][:40], 3, axis=0))
        for seed in range(5):
            sel = _select(self.make(), d, 30, seed=seed)
            assert len(np.unique(sel.indices // 3)) == 30

    def test_sampling_follows_squared_distances(self, round_data):
        # Second pick: P(j) proportional to ||g_j - g_first||^2, checked by frequency.
        d = dict(round_data, X_pool=round_data["X_pool"][:12])
        g = _gradient_embedding(d)
        first = np.argmax(np.linalg.norm(g, axis=1))
        w = np.sum((g - g[first]) ** 2, axis=1)
        counts = np.zeros(12)
        for seed in range(3000):
            counts[_select(self.make(), d, 2, seed=seed).indices[1]] += 1
        np.testing.assert_allclose(counts / counts.sum(), w / w.sum(), atol=0.03)


class TestCoreSet(StrategyTemplate):
    strategy_class = CoreSetSampling

    def test_matches_brute_force_k_center(self, round_data):
        from scipy.spatial.distance import cdist

        d = round_data
        centers = list(d["X_train"])
        picks = []
        for _ in range(8):
            dist = cdist(d["X_pool"], np.array(centers)).min(axis=1)
            dist[picks] = -1
            j = int(np.argmax(dist))
            picks.append(j)
            centers.append(d["X_pool"][j])
        sel = _select(self.make(), d, 8, seed=0)
        np.testing.assert_array_equal(sel.indices, picks)


class TestISAL(StrategyTemplate):
    strategy_class = ISAL

    def test_influence_at_predicted_label(self, round_data):
        d = round_data
        I = influence_matrix(d["model"], d["X_train"], d["X_val"], d["y_val"], d["X_pool"])
        pred = _proba(d).argmax(axis=1)
        score = I[np.arange(len(pred)), pred]
        sel = _select(self.make(), d, 10, seed=0)
        np.testing.assert_array_equal(sel.indices, np.argsort(-score)[:10])


class TestPredictedInfluence(StrategyTemplate):
    strategy_class = PredictedInfluence

    def test_tree_trained_on_training_set_influence(self, round_data):
        from sklearn.tree import DecisionTreeRegressor

        d = round_data
        I = influence_matrix(d["model"], d["X_train"], d["X_val"], d["y_val"], d["X_train"])
        target = I[np.arange(len(d["y_train"])), d["y_train"]]
        state = int(np.random.default_rng(4).integers(np.iinfo(np.int32).max))
        tree = DecisionTreeRegressor(min_samples_leaf=5, random_state=state)
        score = tree.fit(d["X_train"], target).predict(d["X_pool"])
        sel = _select(self.make(), d, 10, seed=4)
        np.testing.assert_allclose(np.sort(sel.scores), np.sort(score)[-10:])


class TestCrossFitSalutary(StrategyTemplate):
    strategy_class = CrossFitSalutary

    def _explicit(self, d, X_true, y_true, X_own, y_own, seed):
        """Fold-by-fold with fresh fits and influence_matrix."""
        from sklearn.model_selection import StratifiedKFold

        state = int(np.random.default_rng(seed).integers(2**31 - 1))
        folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=state)
        total = 0
        for tr, va in folds.split(X_true, y_true):
            X_fit = np.vstack([X_true[tr], X_own])
            y_fit = np.concatenate([y_true[tr], y_own])
            m = LogisticModel(l2=5.0).fit(X_fit, y_fit)
            total = total + influence_matrix(m, X_fit, X_true[va], y_true[va], d["X_pool"])
        return total

    def test_sums_out_of_fold_influence_over_all_true_labels(self, round_data):
        d = round_data
        # Training rows: 80 true + 20 labeled earlier by the strategy (untrusted).
        X_own = d["X_pool"][-20:]
        y_own = d["model"].predict(X_own)
        X_train = np.vstack([d["X_train"], X_own])
        y_train = np.concatenate([d["y_train"], y_own])
        trusted = np.r_[np.ones(80, bool), np.zeros(20, bool)]
        model = LogisticModel(l2=5.0).fit(X_train, y_train)
        X_true = np.vstack([d["X_train"], d["X_val"]])
        y_true = np.concatenate([d["y_train"], d["y_val"]])
        total = self._explicit(d, X_true, y_true, X_own, y_own, seed=3)
        args = (model, X_train, y_train, d["X_pool"], 10)
        kw = dict(X_val=d["X_val"], y_val=d["y_val"], trusted=trusted)
        sel = self.make().select(*args, **kw, rng=np.random.default_rng(3))
        best = total.max(axis=1)
        np.testing.assert_array_equal(sel.indices, np.argsort(-best)[:10])
        np.testing.assert_allclose(sel.scores, best[sel.indices], rtol=1e-6)
        np.testing.assert_array_equal(sel.labels, model.classes_[total[sel.indices].argmax(1)])

    def test_validation_rows_already_in_training_are_not_counted_twice(self, round_data):
        # fair protocol: V is part of the training rows; paper: passed separately.
        d = round_data
        X_lv = np.vstack([d["X_train"], d["X_val"]])
        y_lv = np.concatenate([d["y_train"], d["y_val"]])
        model = LogisticModel(l2=5.0).fit(X_lv, y_lv)
        kw = dict(X_val=d["X_val"], y_val=d["y_val"])
        fair = self.make().select(model, X_lv, y_lv, d["X_pool"], 10, **kw,
                                  rng=np.random.default_rng(0))  # fmt: skip
        total = self._explicit(d, X_lv, y_lv, X_lv[:0], y_lv[:0], seed=0)
        np.testing.assert_array_equal(fair.indices, np.argsort(-total.max(axis=1))[:10])


class TestNewtonGreedySalutary(StrategyTemplate):
    strategy_class = NewtonGreedySalutary

    @staticmethod
    def _grad(theta, X, Y, l2):
        """Gradient of sum CE + l2/2 ||W||^2 (softmax, intercept last), written out."""
        Xa = np.hstack([X, np.ones((len(X), 1))])
        Z = Xa @ theta.T
        P = np.exp(Z - Z.max(1, keepdims=True))
        P /= P.sum(1, keepdims=True)
        G = (P - Y).T @ Xa
        G[:, :-1] += l2 * theta[:, :-1]
        return G

    @pytest.mark.parametrize("objective", ["loss", "error"])
    def test_first_pick_minimizes_validation_loss_after_an_explicit_newton_step(
        self, round_data, objective
    ):
        d = round_data
        model, classes = d["model"], d["model"].classes_
        pool = d["X_pool"][:40]
        theta = np.hstack([model.coef_, model.intercept_[:, None]])
        Y = (d["y_train"][:, None] == classes).astype(float)
        Yv = (d["y_val"][:, None] == classes).astype(float)
        Xv = np.hstack([d["X_val"], np.ones((len(d["X_val"]), 1))])

        def val_loss(t):
            Z = Xv @ t.T
            m = Z.max(1, keepdims=True)
            ce = m[:, 0] + np.log(np.exp(Z - m).sum(1)) - (Z * Yv).sum(1)
            # objective "error": the expected 0-1 error, sum of 1 - p(true class).
            return float(np.sum(1 - np.exp(-ce)) if objective == "error" else np.sum(ce))

        # Hessian of the current training objective by central differences.
        eps = 1e-5
        H = np.empty((theta.size, theta.size))
        for j in range(theta.size):
            e = np.zeros(theta.size)
            e[j] = eps
            plus = self._grad(theta + e.reshape(theta.shape), d["X_train"], Y, model.l2)
            minus = self._grad(theta - e.reshape(theta.shape), d["X_train"], Y, model.l2)
            H[:, j] = (plus - minus).ravel() / (2 * eps)
        H_pinv = np.linalg.pinv((H + H.T) / 2, rcond=1e-10)
        best = (np.inf, None, None)
        for i, x in enumerate(pool):
            for c in range(len(classes)):
                X_aug = np.vstack([d["X_train"], x])
                Y_aug = np.vstack([Y, np.eye(len(classes))[c]])
                step = -H_pinv @ self._grad(theta, X_aug, Y_aug, model.l2).ravel()
                loss = val_loss(theta + step.reshape(theta.shape))
                if loss < best[0]:
                    best = (loss, i, classes[c])
        strategy = NewtonGreedySalutary(
            candidates=len(pool), labels=len(classes), objective=objective
        )
        sel = _select(strategy, dict(d, X_pool=pool), 1, seed=0)
        assert sel.indices[0] == best[1]
        assert sel.labels[0] == best[2]
        np.testing.assert_allclose(sel.scores[0], val_loss(theta) - best[0], rtol=1e-6)

    def test_later_picks_account_for_earlier_ones(self, round_data):
        # Budget 2 equals: pick one, move to its Newton-step model with the pair in the
        # training set, pick again among the rest (the first sample excluded).
        d = round_data
        strategy = NewtonGreedySalutary(candidates=3, labels=3)
        two = _select(strategy, d, 2, seed=0)
        one = _select(strategy, d, 1, seed=0)
        assert two.indices[0] == one.indices[0] and two.labels[0] == one.labels[0]
        assert two.indices[1] != two.indices[0]
        # Greedy on a convex surrogate: the second pair's predicted gain is measured
        # from the first one's model, so the two gains add up to the batch's.
        assert np.all(np.isfinite(two.scores))

    def test_large_budget_adds_several_pairs_per_step(self, round_data):
        # steps=1: the whole batch comes from the first evaluation, best first.
        d = round_data
        one = _select(NewtonGreedySalutary(candidates=4, labels=3), d, 1, seed=0)
        batch = _select(NewtonGreedySalutary(candidates=4, labels=3, steps=1), d, 6, seed=0)
        assert batch.indices[0] == one.indices[0] and batch.labels[0] == one.labels[0]
        np.testing.assert_allclose(batch.scores[0], one.scores[0], rtol=1e-10)
        assert np.all(np.diff(batch.scores) <= 1e-12)
        assert len(set(batch.indices.tolist())) == 6

    @pytest.mark.parametrize("n_classes", [2, 3])
    @pytest.mark.parametrize("steps", [6, 2])
    def test_woodbury_updates_give_the_refactorized_selection(self, monkeypatch, n_classes, steps):
        # Large models factorize the Hessian once per round and add the chosen pairs'
        # curvature by Woodbury; forced here on a small model, it must reproduce the
        # dense path that adds each pair's Hessian and refactorizes.
        from conftest import make_classification_data

        import salutary.influence._newton

        X, y = make_classification_data(260, 5, n_classes, seed=2)
        model = LogisticModel(l2=2.0).fit(X[:60], y[:60])
        d = {"model": model, "X_train": X[:60], "y_train": y[:60], "X_pool": X[60:200],
             "X_val": X[200:], "y_val": y[200:]}  # fmt: skip
        strategy = NewtonGreedySalutary(candidates=3, labels=2, steps=steps)
        monkeypatch.setattr(salutary.influence._newton, "REFACTOR_MAX_PARAMS", 10**9)
        dense = _select(strategy, d, 6, seed=0)
        monkeypatch.setattr(salutary.influence._newton, "REFACTOR_MAX_PARAMS", 0)
        low_rank = _select(strategy, d, 6, seed=0)
        np.testing.assert_array_equal(low_rank.indices, dense.indices)
        np.testing.assert_array_equal(low_rank.labels, dense.labels)
        np.testing.assert_allclose(low_rank.scores, dense.scores, rtol=1e-8)

    def test_woodbury_solve_equals_the_dense_inverse(self, monkeypatch):
        import salutary.influence._newton
        from salutary.influence import GrowingHessian, pair_hessian

        rng = np.random.default_rng(0)
        k, d1 = 3, 4
        M = rng.normal(size=(k * d1, k * d1))
        H = M @ M.T + np.eye(k * d1)
        pairs = [(rng.dirichlet(np.ones(k)), rng.normal(size=d1)) for _ in range(3)]
        dense = H + sum(pair_hessian(p, x) for p, x in pairs)
        B = rng.normal(size=(k * d1, 5))
        monkeypatch.setattr(salutary.influence._newton, "REFACTOR_MAX_PARAMS", 0)
        system = GrowingHessian(H.copy())
        assert system.low_rank
        for p, x in pairs:
            system.add(p, x)
        np.testing.assert_allclose(system.solver()(B), np.linalg.solve(dense, B), rtol=1e-9)
        np.testing.assert_allclose(
            system.solver()(B[:, 0]), np.linalg.solve(dense, B[:, 0]), rtol=1e-9
        )
        # Pairs whose H^{-1} (I_k (x) x) the caller already solved give the same system.
        given = GrowingHessian(H.copy())
        for p, x in pairs:
            given.add(p, x, solved=np.linalg.solve(H, np.kron(np.eye(k), x[:, None])))
        np.testing.assert_allclose(given.solver()(B), np.linalg.solve(dense, B), rtol=1e-9)

    def test_rounds_factorization_serves_the_first_order_ranking(self, monkeypatch):
        # Where the Hessian is factorized once per round, the shortlist's influence
        # factors are solved with that factorization; with solver="cg" they come from
        # conjugate gradients as in `salutary`. Both must choose alike.
        from conftest import make_classification_data

        import salutary.influence._newton

        X, y = make_classification_data(260, 5, 3, seed=4)
        model = LogisticModel(l2=2.0).fit(X[:60], y[:60])
        d = {"model": model, "X_train": X[:60], "y_train": y[:60], "X_pool": X[60:200],
             "X_val": X[200:], "y_val": y[200:]}  # fmt: skip
        monkeypatch.setattr(salutary.influence._newton, "REFACTOR_MAX_PARAMS", 0)
        shared = _select(NewtonGreedySalutary(candidates=3), d, 6, seed=0)
        cg = _select(NewtonGreedySalutary(candidates=3, solver="cg"), d, 6, seed=0)
        np.testing.assert_array_equal(shared.indices, cg.indices)
        np.testing.assert_array_equal(shared.labels, cg.labels)
        np.testing.assert_allclose(shared.scores, cg.scores, rtol=1e-7)

    def test_hessian_that_does_not_fit_in_memory_is_solved_matrix_free(
        self, round_data, monkeypatch
    ):
        # Below the parameter limit, a dense Hessian the machine cannot allocate: the
        # round solves the same systems matrix-free, without a warning, and picks what
        # the dense Hessian picks.
        import salutary.influence._newton
        import salutary.strategies._newton

        def no_memory(*args, **kwargs):
            raise MemoryError

        monkeypatch.setattr(salutary.influence._newton, "REFACTOR_MAX_PARAMS", 0)
        dense = _select(NewtonGreedySalutary(max_growth=None), round_data, 5, seed=1)
        monkeypatch.setattr(salutary.strategies._newton, "model_system", no_memory)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            sel = _select(NewtonGreedySalutary(max_growth=None), round_data, 5, seed=1)
        np.testing.assert_array_equal(sel.indices, dense.indices)
        np.testing.assert_array_equal(sel.labels, dense.labels)
        np.testing.assert_allclose(sel.scores, dense.scores, rtol=1e-5)

    def test_singular_hessian_falls_back_to_the_dense_pseudo_inverse(self, monkeypatch):
        # A Hessian that is singular to working precision (no penalty, a duplicated
        # feature) cannot be factorized for Woodbury updates: a system small enough to
        # keep a copy takes the dense path, whose solver uses the pseudo-inverse.
        import salutary.influence._newton
        from salutary.influence import GrowingHessian

        rng = np.random.default_rng(0)
        M = rng.normal(size=(6, 4))
        H = M @ M.T  # rank 4 of 6
        B = M @ rng.normal(size=(4, 2))  # in its range
        monkeypatch.setattr(salutary.influence._newton, "REFACTOR_MAX_PARAMS", 0)
        system = GrowingHessian(H.copy())
        assert not system.low_rank
        np.testing.assert_allclose(system.solver()(B), np.linalg.pinv(H) @ B, atol=1e-8)

    def test_uncertain_shortlist_comes_from_the_least_certain_samples(self, round_data):
        # uncertain=1: every candidate is among the samples with the smallest margin
        # between the model's two most probable classes; 0 is the influence shortlist.
        d = round_data
        proba = np.sort(d["model"].predict_proba(d["X_pool"]), axis=1)
        margin = proba[:, -1] - proba[:, -2]
        budget, candidates = 4, 3
        unsure = set(np.argsort(margin, kind="stable")[: budget * candidates].tolist())
        sel = _select(NewtonGreedySalutary(candidates=candidates, uncertain=1.0), d, budget, 0)
        assert set(sel.indices.tolist()) <= unsure
        plain = _select(NewtonGreedySalutary(candidates=candidates), d, budget, 0)
        same = _select(NewtonGreedySalutary(candidates=candidates, uncertain=0.0), d, budget, 0)
        np.testing.assert_array_equal(plain.indices, same.indices)
        assert not set(plain.indices.tolist()) <= unsure  # the fixture tells them apart

    def test_unknown_objective_is_an_error(self, round_data, monkeypatch):
        import salutary.strategies._newton

        message = "'objective' parameter of NewtonGreedySalutary must be a str among"
        with pytest.raises(ValueError, match=message):
            _select(NewtonGreedySalutary(objective="accuracy"), round_data, 2, 0)
        # Also where the model is too large for the dense Hessian (matrix-free) and for
        # the Newton step (first-order fallback).
        monkeypatch.setattr(salutary.strategies._newton, "NEWTON_MAX_PARAMS", 1)
        with pytest.raises(ValueError, match=message):
            _select(NewtonGreedySalutary(objective="accuracy"), round_data, 2, 0)
        monkeypatch.setattr(salutary.strategies._newton, "MATRIX_FREE_MAX_PARAMS", 1)
        with pytest.raises(ValueError, match=message):
            _select(NewtonGreedySalutary(objective="accuracy"), round_data, 2, 0)

    def test_abstaining_stops_where_no_pair_lowers_the_validation_loss(self):
        # Trained on the validation set itself with almost no penalty, the model sits at
        # the validation loss's minimum: no added pair can lower it.
        from conftest import make_classification_data

        X, y = make_classification_data(300, 4, 3, seed=5)
        model = LogisticModel(l2=1e-6).fit(X[:200], y[:200])
        d = {"model": model, "X_train": X[:200], "y_train": y[:200], "X_pool": X[200:],
             "X_val": X[:200], "y_val": y[:200]}  # fmt: skip
        assert len(_select(NewtonGreedySalutary(abstain=True), d, 5, seed=0).indices) == 0
        assert len(_select(NewtonGreedySalutary(), d, 5, seed=0).indices) == 5
        # In sub-batches (2 picks each) too: the first one adds nothing, so none follow.
        split = NewtonGreedySalutary(abstain=True, max_growth=0.01)
        assert len(_select(split, d, 5, seed=0).indices) == 0
        assert len(_select(NewtonGreedySalutary(max_growth=0.01), d, 5, seed=0).indices) == 5

    def test_abstaining_keeps_the_greedy_path_and_only_helpful_pairs(self):
        # Trained on the validation set plus two mislabeled rows: a few pairs undo their
        # pull, then no pair helps. One pair per step (steps = budget): abstaining follows
        # the same greedy path and stops at the first pair that would not help.
        from conftest import make_classification_data

        X, y = make_classification_data(400, 4, 3, seed=5)
        X_train = np.vstack([X[:200], X[200:202]])
        y_train = np.concatenate([y[:200], (y[200:202] + 1) % 3])
        model = LogisticModel(l2=1e-6).fit(X_train, y_train)
        d = {"model": model, "X_train": X_train, "y_train": y_train, "X_pool": X[210:],
             "X_val": X[:200], "y_val": y[:200]}  # fmt: skip
        params = dict(candidates=2, labels=3, steps=30, max_growth=None)  # one batch
        plain = _select(NewtonGreedySalutary(**params), d, 30, seed=0)
        kept = _select(NewtonGreedySalutary(**params, abstain=True), d, 30, seed=0)
        n = len(kept.indices)
        assert 0 < n < 30 and len(plain.indices) == 30
        np.testing.assert_array_equal(kept.indices, plain.indices[:n])
        np.testing.assert_array_equal(kept.labels, plain.labels[:n])
        np.testing.assert_allclose(kept.scores, plain.scores[:n], rtol=1e-12)
        assert np.all(kept.scores > 0) and plain.scores[n] <= 1e-6


class TestNewtonGreedySubBatches(StrategyTemplate):
    """``max_growth``: large budgets in sub-batches with exact refits in between."""

    strategy_class = NewtonGreedySalutary

    def make(self) -> Strategy:
        return NewtonGreedySalutary(max_growth=0.05)  # 80 training rows: 4 per sub-batch

    def test_second_sub_batch_is_a_selection_on_the_retrained_model(self, round_data):
        # Oracle: retrain from scratch on the training set plus the first sub-batch with
        # its salutary labels, then select the rest from the remaining pool with the
        # same random stream. 80 training rows, max_growth 0.05: 4 picks, then 4.
        d = round_data
        coef_before = d["model"].coef_.copy()
        sel = _select(NewtonGreedySalutary(candidates=3, max_growth=0.05), d, 8, seed=0)
        np.testing.assert_array_equal(d["model"].coef_, coef_before)  # caller's untouched
        plain = NewtonGreedySalutary(candidates=3, max_growth=None)
        rng = np.random.default_rng(0)
        first = plain.select(
            d["model"], d["X_train"], d["y_train"], d["X_pool"], 4,
            X_val=d["X_val"], y_val=d["y_val"], rng=rng,
        )  # fmt: skip
        np.testing.assert_array_equal(sel.indices[:4], first.indices)
        np.testing.assert_array_equal(sel.labels[:4], first.labels)
        X_t = np.vstack([d["X_train"], d["X_pool"][first.indices]])
        y_t = np.concatenate([d["y_train"], first.labels])
        retrained = LogisticModel(l2=d["model"].l2).fit(X_t, y_t)
        left = np.delete(np.arange(len(d["X_pool"])), first.indices)
        second = plain.select(
            retrained, X_t, y_t, d["X_pool"][left], 4,
            X_val=d["X_val"], y_val=d["y_val"], rng=rng,
        )  # fmt: skip
        np.testing.assert_array_equal(sel.indices[4:], left[second.indices])
        np.testing.assert_array_equal(sel.labels[4:], second.labels)
        np.testing.assert_allclose(sel.scores[4:], second.scores, rtol=1e-6)

    def test_sub_batches_grow_with_the_training_set_and_share_the_steps(
        self, round_data, monkeypatch
    ):
        # 80 rows at max_growth 0.1: 8 picks (88 rows), 8 (96 rows), then the last 9;
        # the round's 10 greedy steps are shared 4, 3, 3, and at least one each.
        calls = []
        inner = NewtonGreedySalutary._newton_select

        def spy(self, model, X_train, y_train, X_pool, budget, **kw):
            calls.append((len(y_train), budget, kw.get("steps")))
            return inner(self, model, X_train, y_train, X_pool, budget, **kw)

        monkeypatch.setattr(NewtonGreedySalutary, "_newton_select", spy)
        sel = _select(NewtonGreedySalutary(max_growth=0.1), round_data, 25, seed=1)
        assert calls == [(80, 8, 4), (88, 8, 3), (96, 9, 3)]
        assert len(np.unique(sel.indices)) == 25
        calls.clear()
        _select(NewtonGreedySalutary(max_growth=0.1, steps=2), round_data, 25, seed=1)
        assert calls == [(80, 8, 1), (88, 8, 1), (96, 9, 1)]
        calls.clear()
        _select(NewtonGreedySalutary(max_growth=0.1), round_data, 8, seed=1)  # fits at once
        assert calls == [(80, 8, None)]

    def test_no_growth_limit_is_one_batch_and_bad_values_are_errors(self, round_data):
        one = _select(NewtonGreedySalutary(max_growth=None), round_data, 30, seed=2)
        wide = _select(NewtonGreedySalutary(max_growth=1.0), round_data, 30, seed=2)
        np.testing.assert_array_equal(one.indices, wide.indices)  # 30 <= 80: one batch
        np.testing.assert_array_equal(one.scores, wide.scores)
        split = _select(NewtonGreedySalutary(max_growth=0.1), round_data, 30, seed=2)
        assert not np.array_equal(split.labels, one.labels)  # the refits change the picks
        tiny = _select(NewtonGreedySalutary(max_growth=1e-9), round_data, 3, seed=2)
        assert len(np.unique(tiny.indices)) == 3  # below one row: one pick per sub-batch
        for bad in (0, -0.1, float("nan")):
            with pytest.raises(ValueError, match="'max_growth' parameter of NewtonGreedySalutary"):
                _select(NewtonGreedySalutary(max_growth=bad), round_data, 4, seed=2)


def test_strategy_spec_sets_parameters():
    from salutary.strategies import get_strategy, parse_strategy, strategy_class

    s = get_strategy("salutary-newton:steps=1:abstain=True:solver=cg:tol=1e-8")
    assert isinstance(s, NewtonGreedySalutary)
    assert (s.steps, s.abstain, s.solver, s.tol) == (1, True, "cg", 1e-8)
    assert parse_strategy("margin") == (MarginSampling, {})
    assert strategy_class("salutary-newton:labels=1") is NewtonGreedySalutary


@pytest.mark.parametrize(
    "spec, message",
    [
        ("newton", "unknown strategy 'newton'"),
        ("salutary-newton:bogus=1", "has no parameter 'bogus'; it has"),
        ("salutary-newton:steps", "'steps' is not PARAM=VALUE"),
        ("random:=3", "'=3' is not PARAM=VALUE"),
    ],
)
def test_strategy_spec_errors_name_the_problem(spec, message):
    from salutary.strategies import get_strategy

    with pytest.raises(ValueError, match=message):
        get_strategy(spec)


class TestSalutaryHybrid(StrategyTemplate):
    strategy_class = SalutaryHybrid

    @staticmethod
    def _margins(d, rows):
        """Best minus second-best first-order influence of each row, computed directly."""
        factors = InfluenceFactors().fit(d["model"], d["X_train"], d["X_val"], d["y_val"])
        I = np.sort(factors.score(d["X_pool"][rows]), axis=1)
        return I[:, -1] - I[:, -2]

    @pytest.mark.parametrize("budget", [1, 10, 25])
    def test_same_picks_labels_and_scores_as_newton(self, round_data, budget):
        newton = _select(NewtonGreedySalutary(), round_data, budget, seed=3)
        hybrid = _select(self.make(), round_data, budget, seed=3)
        np.testing.assert_array_equal(hybrid.indices, newton.indices)
        np.testing.assert_array_equal(hybrid.labels, newton.labels)
        np.testing.assert_array_equal(hybrid.scores, newton.scores)

    @pytest.mark.parametrize(
        ("fraction", "budget"), [(0.3, 10), (0.3, 25), (0.25, 7), (0.5, 25), (0.9, 6)]
    )
    def test_asks_about_the_smallest_margins(self, round_data, fraction, budget):
        sel = _select(SalutaryHybrid(true_fraction=fraction), round_data, budget, seed=2)
        n_true = round(fraction * budget)
        assert sel.ask.dtype == bool and sel.ask.sum() == n_true
        margin = self._margins(round_data, sel.indices)
        expected = np.argsort(margin, kind="stable")[:n_true]
        assert set(np.flatnonzero(sel.ask)) == set(expected.tolist())
        # the asked margins are all below the kept ones
        assert margin[sel.ask].max() < margin[~sel.ask].min()

    def test_fraction_zero_asks_nothing_and_one_asks_everything(self, round_data):
        newton = _select(NewtonGreedySalutary(), round_data, 12, seed=4)
        for fraction, expected in ((0.0, False), (1.0, True)):
            sel = _select(SalutaryHybrid(true_fraction=fraction), round_data, 12, seed=4)
            np.testing.assert_array_equal(sel.indices, newton.indices)
            assert np.all(sel.ask == expected)

    @pytest.mark.parametrize("fraction", [-0.1, 1.5, float("nan")])
    def test_fraction_outside_unit_interval_is_refused(self, round_data, fraction):
        with pytest.raises(ValueError, match="'true_fraction' parameter of SalutaryHybrid"):
            _select(SalutaryHybrid(true_fraction=fraction), round_data, 5, seed=0)

    def test_first_order_fallback_still_asks_the_smallest_margins(self, round_data, monkeypatch):
        # Too many parameters for the Newton step: picks are salutary's first-order top-b.
        import salutary.strategies._newton

        monkeypatch.setattr(salutary.strategies._newton, "MATRIX_FREE_MAX_PARAMS", 1)
        with pytest.warns(RuntimeWarning, match="first-order top-b"):
            hybrid = SalutaryHybrid(true_fraction=0.4, max_growth=None)  # one batch
            sel = _select(hybrid, round_data, 10, seed=1)
        first_order = _select(SalutaryLabeling(), round_data, 10, seed=1)
        np.testing.assert_array_equal(sel.indices, first_order.indices)
        margin = self._margins(round_data, sel.indices)
        assert set(np.flatnonzero(sel.ask)) == set(np.argsort(margin)[:4].tolist())


def test_template_covers_every_registered_strategy():
    covered = {cls.strategy_class for cls in StrategyTemplate.__subclasses__()}
    assert covered == set(STRATEGIES.values())


def test_top_k_breaks_ties_by_seed_only():
    scores = np.array([1.0, 3.0, 3.0, 3.0, 3.0, 0.0])
    picks = {tuple(top_k(scores, 2, np.random.default_rng(s))) for s in range(30)}
    assert len(picks) > 1  # ties are broken differently by different seeds
    assert all(set(p) <= {1, 2, 3, 4} for p in picks)  # but never below a strict winner
    same = [tuple(top_k(scores, 2, np.random.default_rng(7))) for _ in range(3)]
    assert len(set(same)) == 1


def test_top_k_equals_a_full_sort():
    rng = np.random.default_rng(0)
    scores = np.round(rng.normal(size=2000), 1)  # many ties
    scores[::50] = np.nan
    for k in (0, 1, 10, 500, 1990, 2000):
        expected = np.lexsort((np.random.default_rng(k).permutation(2000), -scores))[:k]
        np.testing.assert_array_equal(top_k(scores, k, np.random.default_rng(k)), expected)


@pytest.mark.parametrize("k", [1, 4])
def test_cross_entropy_sum_matches_the_textbook_formula(k):
    from salutary.influence import cross_entropy_sum

    rng = np.random.default_rng(0)
    Z = 5 * rng.normal(size=(30, 7, k))
    y = rng.integers(0, 2 if k == 1 else k, size=30)
    if k == 1:
        p1 = 1 / (1 + np.exp(-Z[:, :, 0]))
        expected = -np.sum(np.where(y[:, None] == 1, np.log(p1), np.log(1 - p1)), axis=0)
    else:
        P = np.exp(Z) / np.exp(Z).sum(axis=2, keepdims=True)
        expected = -np.sum(np.log(P[np.arange(30), :, y]), axis=0)
    # Class-major layout (k, n, models).
    Zc = np.ascontiguousarray(Z.transpose(2, 0, 1))
    np.testing.assert_allclose(cross_entropy_sum(Zc.copy(), y), expected, rtol=1e-10)
    p_true = np.exp(-_per_row_ce(Z, y))
    error = cross_entropy_sum(Zc.copy(), y, expected_error=True)
    np.testing.assert_allclose(error, np.sum(1 - p_true, axis=0), rtol=1e-10)


def _per_row_ce(Z, y):
    """(n, models) cross-entropies from (n, models, k) logits, written out."""
    n = len(y)
    if Z.shape[2] == 1:
        p1 = 1 / (1 + np.exp(-Z[:, :, 0]))
        return -np.where(y[:, None] == 1, np.log(p1), np.log(1 - p1))
    P = np.exp(Z) / np.exp(Z).sum(axis=2, keepdims=True)
    return -np.log(P[np.arange(n), :, y])


@pytest.mark.parametrize("k", [1, 3])
def test_pair_hessian_equals_the_finite_difference_hessian_of_one_sample(k):
    from scipy.special import expit, softmax

    from salutary.influence import pair_hessian

    rng = np.random.default_rng(1)
    x = np.append(rng.normal(size=4), 1.0)
    theta = rng.normal(size=(k, 5))

    def grad(t):  # gradient of CE(x, y=0) in theta, written out
        z = t @ x
        p = expit(z) if k == 1 else softmax(z)
        r = p.copy() if k == 1 else p - np.eye(k)[0]
        return np.outer(r, x).ravel()

    eps = 1e-6
    H = np.column_stack(
        [
            (
                grad(theta + eps * e.reshape(theta.shape))
                - grad(theta - eps * e.reshape(theta.shape))
            )
            / (2 * eps)
            for e in np.eye(theta.size)
        ]
    )
    z = theta @ x
    p = expit(z) if k == 1 else softmax(z)
    np.testing.assert_allclose(pair_hessian(p, x), H, atol=1e-7)
