"""SalutaryLabeler as a scikit-learn estimator (issue 17): the estimator checks, Pipelines,
metadata routing, the unlabeled marker, weights, feature names and the stopping reasons,
each against the scikit-learn behaviour it mirrors."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.semi_supervised import SelfTrainingClassifier
from sklearn.utils.estimator_checks import (
    check_estimator_repr,
    check_get_params_invariance,
    check_no_attributes_set_in_init,
    check_parameters_default_constructible,
    check_set_params,
    parametrize_with_checks,
)

from salutary import InfluenceFactors, LogisticModel, SalutaryLabeler
from salutary.labeler import EXPECTED_FAILED_CHECKS
from salutary.strategies import STRATEGIES, Selection, Strategy


@parametrize_with_checks(
    [SalutaryLabeler(), LogisticModel()],
    expected_failed_checks=lambda est: (
        EXPECTED_FAILED_CHECKS if isinstance(est, SalutaryLabeler) else {}
    ),
)
def test_scikit_learn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="the validation set has")
        check(estimator)


API_CHECKS = [
    check_parameters_default_constructible,
    check_no_attributes_set_in_init,
    check_get_params_invariance,
    check_set_params,
    check_estimator_repr,
]


@pytest.mark.parametrize("check", API_CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize(
    "obj", [InfluenceFactors(), *(cls() for cls in STRATEGIES.values())], ids=repr
)
def test_strategies_and_factors_pass_the_api_checks(obj, check):
    """The checks that apply to objects with parameters but no fit(X, y)."""
    check(type(obj).__name__, obj)


def data(n=600, d=5, k=3, labeled=0.3, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(k, d))
    Z = rng.normal(size=(n, d))
    y = (Z @ W.T + rng.gumbel(size=(n, k))).argmax(axis=1)
    X = Z * scale + 3.0  # off-centre and, with scale, off-scale: what a scaler fixes
    y_semi = np.where(rng.random(n) < labeled, y, -1)
    return X, y, y_semi


def assert_same_fit(a: SalutaryLabeler, b: SalutaryLabeler) -> None:
    np.testing.assert_array_equal(a.transduction_, b.transduction_)
    np.testing.assert_array_equal(a.labeled_iter_, b.labeled_iter_)
    np.testing.assert_array_equal(a.estimator_.coef_, b.estimator_.coef_)


def test_pipeline_with_a_scaler_equals_scaling_by_hand():
    X, _, y_semi = data(scale=40.0)
    labeler = SalutaryLabeler(validation_fraction=0.3, rounds=3, random_state=0)
    pipe = make_pipeline(StandardScaler(), labeler).fit(X, y_semi)
    by_hand = SalutaryLabeler(validation_fraction=0.3, rounds=3, random_state=0).fit(
        StandardScaler().fit_transform(X), y_semi
    )
    assert_same_fit(pipe[-1], by_hand)


def test_validation_set_routed_through_a_pipeline_is_transformed():
    X, y, y_semi = data(scale=40.0)
    X_val, y_val = X[:200] * 1.0, y[:200]
    X, y_semi = X[200:], y_semi[200:]
    scaler = StandardScaler().fit(X)
    by_hand = SalutaryLabeler(rounds=3, random_state=0).fit(
        scaler.transform(X), y_semi, scaler.transform(X_val), y_val
    )
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = Pipeline(
            [
                ("scale", StandardScaler()),
                (
                    "label",
                    SalutaryLabeler(rounds=3, random_state=0).set_fit_request(
                        X_val=True, y_val=True
                    ),
                ),
            ],
            transform_input=["X_val"],
        ).fit(X, y_semi, X_val=X_val, y_val=y_val)
    assert_same_fit(pipe[-1], by_hand)
    assert not pipe[-1].validation_mask_.any()  # the given validation set, not a hold-out


def test_held_out_validation_rows_are_a_stratified_share_of_the_labeled_rows():
    X, _, y_semi = data(n=2000)
    lab = SalutaryLabeler(validation_fraction=0.25, rounds=2, random_state=3).fit(X, y_semi)
    held = lab.validation_mask_
    labeled = y_semi != -1
    assert not (held & ~labeled).any()
    assert held.sum() == np.ceil(0.25 * labeled.sum())
    for c in np.unique(y_semi[labeled]):  # stratified: each class's share within one row
        share = 0.25 * np.sum(y_semi == c)
        assert abs(np.sum(held & (y_semi == c)) - share) <= 1
    again = SalutaryLabeler(validation_fraction=0.25, rounds=2, random_state=3).fit(X, y_semi)
    np.testing.assert_array_equal(again.validation_mask_, held)  # seeded
    other = SalutaryLabeler(validation_fraction=0.25, rounds=2, random_state=4).fit(X, y_semi)
    assert not np.array_equal(other.validation_mask_, held)


@pytest.mark.parametrize("train_on_validation", [True, False])
def test_final_estimator_trains_on_the_validation_rows_when_asked(train_on_validation):
    X, _, y_semi = data()
    lab = SalutaryLabeler(
        LogisticModel(l2=5.0), rounds=2, random_state=0, train_on_validation=train_on_validation
    ).fit(X, y_semi)
    rows = lab.transduction_ != -1
    if not train_on_validation:
        rows &= ~lab.validation_mask_
    expected = LogisticModel(l2=5.0).fit(X[rows], lab.transduction_[rows])
    np.testing.assert_allclose(lab.estimator_.coef_, expected.coef_, rtol=1e-7, atol=1e-10)


def test_works_in_cross_validation_and_grid_search():
    X, _, y_semi = data(n=900)
    scores = cross_val_score(SalutaryLabeler(rounds=2, random_state=0), X, y_semi, cv=3)
    assert len(scores) == 3 and np.all(np.isfinite(scores))
    search = GridSearchCV(SalutaryLabeler(rounds=2, random_state=0), {"budget": [5, 10]}, cv=3)
    search.fit(X, y_semi)
    assert search.best_params_["budget"] in (5, 10)


def test_string_labels_follow_self_training():
    X, y, y_semi = data()
    names = np.array(["a", "b", "c"])
    y_str = names[y]
    for est in (SelfTrainingClassifier(LogisticRegression()), SalutaryLabeler(rounds=1)):
        with pytest.raises(ValueError, match="y has dtype string"):
            est.fit(X, np.where(y_semi == -1, "-1", y_str))
    y_obj = y_str.astype(object)
    y_obj[y_semi == -1] = -1
    lab = SalutaryLabeler(rounds=1, random_state=0).fit(X, y_obj)
    st = SelfTrainingClassifier(LogisticRegression(), max_iter=1).fit(X, y_obj)
    assert list(lab.classes_) == list(st.classes_) == ["a", "b", "c"]


def test_not_fitted_error_before_fit():
    X, _, _ = data(n=20)
    for method in ("predict", "predict_proba", "predict_log_proba", "decision_function"):
        with pytest.raises(NotFittedError):
            getattr(SalutaryLabeler(), method)(X)


def test_decision_function_and_log_proba_are_the_final_estimators():
    X, _, y_semi = data()
    lab = SalutaryLabeler(rounds=1, random_state=0).fit(X, y_semi)
    np.testing.assert_array_equal(lab.decision_function(X), lab.estimator_.decision_function(X))
    np.testing.assert_array_equal(lab.predict_log_proba(X), lab.estimator_.predict_log_proba(X))

    class NoDecision(LogisticModel):
        decision_function = property()  # type: ignore[assignment]  # hides the method

    assert not hasattr(SalutaryLabeler(NoDecision()), "decision_function")


def test_sample_weight_equals_repeating_rows():
    """Weight 2 on a row is the row twice, in every fit and every influence; the
    validation set is given, so no random split tells them apart."""
    X, y, y_semi = data(n=500, seed=4)
    X_val, y_val = X[:150], y[:150]
    X, y_semi = X[150:], y_semi[150:]
    w = np.ones(len(X))
    twice = np.flatnonzero(y_semi != -1)[::3]
    w[twice] = 2.0
    kw = dict(strategy="salutary", rounds=3, random_state=0, train_on_validation=False)
    weighted = SalutaryLabeler(LogisticModel(l2=5.0), **kw).fit(
        X, y_semi, X_val, y_val, sample_weight=w
    )
    order = np.concatenate([np.arange(len(X)), twice])  # repeats appended: the pool keeps
    repeated = SalutaryLabeler(LogisticModel(l2=5.0), **kw).fit(  # its order
        X[order], y_semi[order], X_val, y_val
    )
    n = len(X)
    np.testing.assert_array_equal(weighted.labeled_iter_, repeated.labeled_iter_[:n])
    np.testing.assert_array_equal(weighted.transduction_, repeated.transduction_[:n])
    np.testing.assert_allclose(
        weighted.estimator_.coef_, repeated.estimator_.coef_, rtol=1e-7, atol=1e-10
    )


def test_feature_names_follow_self_training():
    X, _, y_semi = data()
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    lab = SalutaryLabeler(rounds=1, random_state=0).fit(frame, y_semi)
    st = SelfTrainingClassifier(LogisticRegression(), max_iter=1).fit(frame, y_semi)
    np.testing.assert_array_equal(lab.feature_names_in_, st.feature_names_in_)
    assert lab.n_features_in_ == st.n_features_in_ == X.shape[1]
    np.testing.assert_array_equal(lab.predict(frame), lab.estimator_.predict(X))
    for est in (lab, st):  # both warn the same way about arrays without names
        with pytest.warns(UserWarning, match="X does not have valid feature names"):
            est.predict(X)
        with pytest.raises(ValueError, match="feature names"):
            est.predict(frame.rename(columns={"f0": "other"}))


class _PickNothing(Strategy):
    """Oracle-free; picks nothing."""

    requires_oracle = False
    name = "pick-nothing"

    def _select(self, model, X_train, y_train, pool, budget, **_):
        return Selection(np.zeros(0, np.intp), np.zeros(0), model.classes_[:0])


def test_iterations_and_termination_condition():
    X, _, y_semi = data(n=400, labeled=0.5)
    n_pool = int(np.sum(y_semi == -1))
    done = SalutaryLabeler(budget=5, rounds=3, random_state=0).fit(X, y_semi)
    assert (done.n_iter_, done.termination_condition_) == (3, "max_iter")
    assert len(done.validation_loss_) == 4
    # More rounds than the pool holds: the last round takes what is left.
    budget = n_pool // 2 + 1
    out = SalutaryLabeler(budget=budget, rounds=5, random_state=0).fit(X, y_semi)
    assert (out.n_iter_, out.termination_condition_) == (2, "all_labeled")
    assert np.all(out.transduction_ != -1)
    assert np.sum(out.labeled_iter_ == 2) == n_pool - budget
    idle = SalutaryLabeler(strategy=_PickNothing(), rounds=4, random_state=0).fit(X, y_semi)
    assert (idle.n_iter_, idle.termination_condition_) == (1, "no_change")
    assert np.all(idle.transduction_ == y_semi)
    nothing = SalutaryLabeler(rounds=0).fit(X, y_semi)
    assert (nothing.n_iter_, nothing.termination_condition_) == (0, "max_iter")
    st = SelfTrainingClassifier(LogisticRegression(), max_iter=10).fit(X, np.where(
        np.arange(len(X)) < 350, y_semi, -1))  # fmt: skip
    assert st.termination_condition_ in ("max_iter", "no_change", "all_labeled")


def test_bad_parameters_and_inputs_are_refused():
    X, _, y_semi = data(n=100)
    with pytest.raises(ValueError, match="validation_fraction"):
        SalutaryLabeler(validation_fraction=1.0).fit(X, y_semi)
    with pytest.raises(ValueError, match="pass both X_val and y_val"):
        SalutaryLabeler().fit(X, y_semi, X_val=X)
    with pytest.raises(ValueError, match="too few to hold out"):
        SalutaryLabeler().fit(X[:4], np.array([0, 1, -1, -1]))
    with pytest.raises(ValueError, match="needs an oracle"):
        SalutaryLabeler(strategy="margin").fit(X, y_semi)


# ------------------------------------------------------------- evidence for every label
def _round_fits(lab: SalutaryLabeler, X: np.ndarray, l2: float):
    """Per round: its training rows (the labeled rows and those labeled in earlier
    rounds), its model refit independently on them, and the rows it labeled."""
    for r in range(1, lab.n_iter_ + 1):
        train = np.flatnonzero((lab.labeled_iter_ >= 0) & (lab.labeled_iter_ < r))
        model = LogisticModel(l2=l2).fit(X[train], lab.transduction_[train])
        yield train, model, np.flatnonzero(lab.labeled_iter_ == r)


def _evidence_data():
    X, y, y_semi = data(n=500, d=4, k=3, labeled=0.4, seed=7)
    return X[100:], y[100:], y_semi[100:], X[:100], y[:100]


@pytest.mark.parametrize("strategy", ["salutary", "salutary-newton"])
def test_margin_and_agreement_against_dense_influence_and_refit_models(strategy):
    """salutary_margin_ is the influence of the chosen label minus the best other one
    (for the first-order strategy: best minus second best), computed densely with the
    round's model; salutary_agrees_ is that model's prediction. Every round's model is
    refit independently."""
    from test_influence import _dense_influence

    X, _, y_semi, X_val, y_val = _evidence_data()
    l2 = 2.0
    lab = SalutaryLabeler(
        LogisticModel(l2=l2),
        budget=8,
        rounds=3,
        strategy=strategy,
        random_state=0,
        check_fraction=None,  # the influence on the whole validation set, as below
    ).fit(X, y_semi, X_val, y_val)
    assert lab.n_iter_ == 3
    agrees_seen = []
    for train, model, rows in _round_fits(lab, X, l2):
        I = _dense_influence(model, X[train], X_val, y_val, X[rows])
        col = np.searchsorted(model.classes_, lab.transduction_[rows])
        best_other = np.where(np.arange(3) == col[:, None], -np.inf, I).max(axis=1)
        expected = I[np.arange(len(rows)), col] - best_other
        np.testing.assert_allclose(lab.salutary_margin_[rows], expected, rtol=1e-6, atol=1e-9)
        if strategy == "salutary":
            top2 = np.sort(I, axis=1)[:, -2:]
            np.testing.assert_allclose(
                lab.salutary_margin_[rows], top2[:, 1] - top2[:, 0], rtol=1e-6, atol=1e-9
            )
        agrees = model.predict(X[rows]) == lab.transduction_[rows]
        np.testing.assert_array_equal(lab.salutary_agrees_[rows], agrees)
        agrees_seen.extend(agrees)
    assert set(agrees_seen) == {True, False}  # both outcomes occur: the check can tell
    others = lab.labeled_iter_ <= 0
    assert np.isnan(lab.salutary_margin_[others]).all()
    assert not lab.salutary_agrees_[others].any()


def test_run_active_learning_reports_margins_and_agreement():
    """Round 1 of run_active_learning against the dense influence of the initial model;
    oracle answers have no margin (NaN), and agreement compares the label added, true or
    salutary, with the prediction of the model that chose the row."""
    from test_influence import _dense_influence

    from salutary.loop import run_active_learning

    X, y, y_semi, X_val, y_val = _evidence_data()
    lab, pool = y_semi != -1, y_semi == -1
    args = (X[lab], y[lab], X[pool], X_val, y_val, X_val, y_val)
    model = LogisticModel(l2=2.0)
    first = LogisticModel(l2=2.0).fit(X[lab], y[lab])
    out = run_active_learning(*args, strategy="salutary", budget=6, rounds=2, model=model)
    rows = out.selected[0]
    I = _dense_influence(first, X[lab], X_val, y_val, X[pool][rows])
    top2 = np.sort(I, axis=1)[:, -2:]
    np.testing.assert_allclose(out.margins[0], top2[:, 1] - top2[:, 0], rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(out.agrees[0], first.predict(X[pool][rows]) == out.labels[0])
    assert [len(m) for m in out.margins] == [len(a) for a in out.agrees] == [6, 6]

    hybrid = run_active_learning(
        *args, strategy="salutary-hybrid:true_fraction=0.5", budget=6, rounds=1,
        y_pool=y[pool], model=model,
    )  # fmt: skip
    asked = hybrid.asked[0]
    assert asked.sum() == 3
    assert np.isnan(hybrid.margins[0][asked]).all()
    assert np.isfinite(hybrid.margins[0][~asked]).all()
    rows, labels = hybrid.selected[0], hybrid.labels[0]
    np.testing.assert_array_equal(labels[asked], y[pool][rows][asked])
    np.testing.assert_array_equal(hybrid.agrees[0], first.predict(X[pool][rows]) == labels)

    oracle = run_active_learning(*args, strategy="margin", budget=6, rounds=1, y_pool=y[pool])
    assert np.isnan(oracle.margins[0]).all()


class _ShortMargins(Strategy):
    """Oracle-free; labels its picks but returns one margin too few."""

    requires_oracle = False
    name = "short-margins"

    def _select(self, model, X_train, y_train, pool, budget, **_):
        idx = np.arange(min(budget, pool.n_rows))
        labels = np.full(len(idx), model.classes_[0])
        return Selection(idx, np.zeros(len(idx)), labels, margins=np.zeros(len(idx) - 1))


def test_margins_of_the_wrong_shape_are_refused_and_none_are_nan():
    X, _, y_semi = data(n=300, labeled=0.5)
    with pytest.raises(RuntimeError, match="returned margins of shape"):
        SalutaryLabeler(strategy=_ShortMargins(), rounds=1, random_state=0).fit(X, y_semi)
    lab = SalutaryLabeler(strategy="self-training", rounds=1, random_state=0).fit(X, y_semi)
    added = lab.labeled_iter_ == 1
    assert added.sum() == 10 and np.isnan(lab.salutary_margin_[added]).all()
