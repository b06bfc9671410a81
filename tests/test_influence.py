"""Influence engine against independent oracles: finite differences, an explicit dense
computation, refitting with an infinitesimal weight, and actual retraining."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import softmax
from scipy.stats import spearmanr
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from salutary import InfluenceFactors, LogisticModel, influence_matrix
from salutary._chunks import n_threads
from salutary._linear import LogisticObjective
from salutary.datasets import load_dataset

CASES = [(2, True), (2, False), (4, True), (4, False)]


# --------------------------------------------------------------------------- objective
@pytest.mark.parametrize(("k", "fit_intercept"), CASES)
def test_gradient_and_hessian_match_finite_differences(make_data, k, fit_intercept):
    X, y = make_data(60, 4, k, seed=k)
    w = np.random.default_rng(1).uniform(0.5, 1.5, size=len(y))
    obj = LogisticObjective(X, y, k, 0.8, fit_intercept, w)
    theta = np.random.default_rng(2).normal(scale=0.5, size=(obj.k, obj.d1))
    _, G, P = obj.loss_grad(theta)
    H = obj.hessian(P)
    h = 1e-6
    fd_grad = np.empty(theta.size)
    fd_hess = np.empty((theta.size, theta.size))
    for i in range(theta.size):
        e = np.zeros(theta.size)
        e[i] = h
        e = e.reshape(theta.shape)
        fd_grad[i] = (obj.loss(theta + e) - obj.loss(theta - e)) / (2 * h)
        fd_hess[:, i] = (obj.loss_grad(theta + e)[1] - obj.loss_grad(theta - e)[1]).ravel() / (
            2 * h
        )
    np.testing.assert_allclose(G.ravel(), fd_grad, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(H, fd_hess, rtol=1e-5, atol=1e-6)
    # Matrix-free product and diagonal agree with the dense Hessian.
    v = np.random.default_rng(3).normal(size=theta.shape)
    np.testing.assert_allclose(obj.hvp(P, v).ravel(), H @ v.ravel(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(obj.hessian_diagonal(P).ravel(), np.diag(H), rtol=1e-12)


def test_softmax_hessian_is_singular_along_intercept_shift(make_data):
    X, y = make_data(80, 3, 3, seed=0)
    obj = LogisticObjective(X, y, 3, 1.0, True)
    _, _, P = obj.loss_grad(np.zeros((3, 4)))
    H = obj.hessian(P)
    np.testing.assert_allclose(H @ obj.null, 0.0, atol=1e-10)
    assert np.min(np.linalg.eigvalsh(H)) < 1e-10


# --------------------------------------------------------------------- dense oracle
def _dense_influence(model, X_train, X_val, y_val, X_pool):
    """Per-class gradients times the pseudo-inverse of an explicitly assembled Hessian."""
    classes = model.classes_
    k = len(classes)
    aug = (lambda A: np.hstack([A, np.ones((len(A), 1))])) if model.fit_intercept else (lambda A: A)
    theta = (
        np.hstack([model.coef_, model.intercept_[:, None]])
        if model.fit_intercept
        else (model.coef_)
    )
    mask = np.ones(theta.shape)
    if model.fit_intercept:
        mask[:, -1] = 0
    if k == 2:
        sig = lambda A: 1 / (1 + np.exp(-(aug(A) @ theta[0])))  # noqa: E731

        def grad(x, c):  # c is a class index
            return (sig(x[None])[0] - c) * aug(x[None])[0]

        H = sum(
            s * (1 - s) * np.outer(xa, xa) for s, xa in zip(sig(X_train), aug(X_train), strict=True)
        )
    else:
        prob = lambda A: softmax(aug(A) @ theta.T, axis=1)  # noqa: E731

        def grad(x, c):
            return np.kron(prob(x[None])[0] - np.eye(k)[c], aug(x[None])[0])

        H = sum(
            np.kron(np.diag(p) - np.outer(p, p), np.outer(xa, xa))
            for p, xa in zip(prob(X_train), aug(X_train), strict=True)
        )
    H = H + model.l2 * np.diag(mask.ravel())
    y_idx = np.searchsorted(classes, y_val)
    g_val = sum(grad(x, c) for x, c in zip(X_val, y_idx, strict=True))
    v = np.linalg.pinv(H, hermitian=True) @ g_val
    return np.array([[grad(x, c) @ v for c in range(k)] for x in X_pool])


@pytest.mark.parametrize(("k", "fit_intercept"), CASES)
@pytest.mark.parametrize("solver", ["direct", "cg"])
def test_closed_form_matches_dense_pseudo_inverse(make_data, k, fit_intercept, solver):
    X, y = make_data(260, 5, k, seed=20 + k)
    X_train, y_train = X[:150], y[:150]
    model = LogisticModel(l2=0.5, fit_intercept=fit_intercept).fit(X_train, y_train)
    I = influence_matrix(model, X_train, X[150:200], y[150:200], X[200:], solver=solver)
    ref = _dense_influence(model, X_train, X[150:200], y[150:200], X[200:])
    assert I.shape == (60, k)
    rel = np.max(np.abs(I - ref)) / np.max(np.abs(ref))
    assert rel < 1e-8


@pytest.mark.parametrize(("k", "fit_intercept"), CASES)
def test_factors_from_a_prefactorized_hessian_match_the_dense_pseudo_inverse(
    make_data, k, fit_intercept
):
    # salutary-newton hands the factorization of its round (model_system) to the
    # first-order factors instead of letting them solve again.
    from salutary.influence import InfluenceFactors, model_system

    X, y = make_data(260, 5, k, seed=30 + k)
    X_train = X[:150]
    model = LogisticModel(l2=0.5, fit_intercept=fit_intercept).fit(X_train, y[:150])
    system = model_system(model, X_train, None)
    factors = InfluenceFactors().fit(
        model, X_train, X[150:200], y[150:200], hessian_solve=system.solver()
    )
    ref = _dense_influence(model, X_train, X[150:200], y[150:200], X[200:])
    I = factors.score(X[200:])
    assert np.max(np.abs(I - ref)) / np.max(np.abs(ref)) < 1e-8
    assert factors.solve_info_.solver == "direct"
    assert factors.solve_info_.residual < 1e-10


@pytest.mark.parametrize(("k", "fit_intercept"), CASES)
def test_symmetric_hessian_matches_the_sum_of_per_sample_hessians(make_data, k, fit_intercept):
    # salutary-newton's Hessian built with symmetric rank-n products, against its
    # definition: sum_i w_i (diag p_i - p_i p_i^T) (x) x_i x_i^T, plus the penalty.
    from salutary._linear import LogisticObjective, probabilities
    from salutary.influence import pair_hessian, symmetric_hessian

    X, y = make_data(120, 4, k, seed=40 + k)
    w = np.random.default_rng(1).uniform(0.5, 2.0, size=len(y))
    train = LogisticObjective(X, y, k, 0.7, fit_intercept, w)
    theta = np.random.default_rng(2).normal(size=(train.k, train.d1))
    P = probabilities(train.logits(theta))
    ref = sum(wi * pair_hessian(p, xa) for wi, p, xa in zip(w, P, train.Xa, strict=True))
    ref = ref + 0.7 * np.diag(train.mask.ravel())
    H = symmetric_hessian(train, P)
    np.testing.assert_allclose(H, ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())
    np.testing.assert_array_equal(H, H.T)


def test_accepts_sklearn_logistic_regression(make_data):
    X, y = make_data(300, 4, 3, seed=5)
    sk = LogisticRegression(C=0.5, tol=1e-12, max_iter=10_000).fit(X[:200], y[:200])
    ours = LogisticModel(l2=2.0).fit(X[:200], y[:200])
    a = influence_matrix(sk, X[:200], X[200:250], y[200:250], X[250:])
    b = influence_matrix(ours, X[:200], X[200:250], y[200:250], X[250:])
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6 * np.abs(b).max())


# ------------------------------------------------------------- sign and scale by refit
def _val_loss(model, X_val, y_val):
    P = model.predict_proba(X_val)
    return -np.sum(np.log(P[np.arange(len(y_val)), np.searchsorted(model.classes_, y_val)]))


@pytest.mark.parametrize(("k", "fit_intercept"), CASES)
def test_influence_is_minus_derivative_of_validation_loss(make_data, k, fit_intercept):
    X, y = make_data(300, 4, k, seed=40 + k)
    X_tr, y_tr, X_val, y_val, X_pool = X[:150], y[:150], X[150:220], y[150:220], X[220:]
    base = LogisticModel(l2=1.0, fit_intercept=fit_intercept, tol=1e-13).fit(X_tr, y_tr)
    I = influence_matrix(base, X_tr, X_val, y_val, X_pool)
    L0 = _val_loss(base, X_val, y_val)
    eps = 1e-5
    rng = np.random.default_rng(0)
    for j in rng.choice(len(X_pool), size=4, replace=False):
        for c in range(k):
            Xp = np.vstack([X_tr, X_pool[j]])
            yp = np.append(y_tr, base.classes_[c])
            w = np.append(np.ones(len(y_tr)), eps)
            refit = LogisticModel(l2=1.0, fit_intercept=fit_intercept, tol=1e-13).fit(
                Xp, yp, sample_weight=w
            )
            dL = (_val_loss(refit, X_val, y_val) - L0) / eps
            assert dL == pytest.approx(-I[j, c], rel=1e-3, abs=1e-6)


# ---------------------------------------------------------- against actual retraining
def test_predicts_actual_retraining_on_wine_quality():
    data = load_dataset("wine_quality")
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(data.y))
    X = StandardScaler().fit_transform(data.X)
    tr, val, pool = idx[:400], idx[400:1400], idx[1400:1460]
    model = LogisticModel(l2=50.0).fit(X[tr], data.y[tr])
    # Validation labels must be classes the model knows.
    val = val[np.isin(data.y[val], model.classes_)]
    I = influence_matrix(model, X[tr], X[val], data.y[val], X[pool])
    L0 = _val_loss(model, X[val], data.y[val])
    actual = np.empty_like(I)
    for a, j in enumerate(pool):
        for c, label in enumerate(model.classes_):
            refit = LogisticModel(l2=50.0, warm_start=True)
            refit.classes_, refit.coef_, refit.intercept_ = (
                model.classes_,
                model.coef_,
                model.intercept_,
            )
            refit.fit(np.vstack([X[tr], X[j]]), np.append(data.y[tr], label))
            actual[a, c] = L0 - _val_loss(refit, X[val], data.y[val])
    rho = spearmanr(I.ravel(), actual.ravel()).statistic
    assert rho >= 0.9
    agree = np.mean(I.argmax(axis=1) == actual.argmax(axis=1))
    assert agree >= 0.8


# ---------------------------------------------------------------- factors and scoring
@pytest.mark.parametrize(("k", "fit_intercept"), CASES)
def test_factors_score_chunks_and_best_labels(make_data, k, fit_intercept):
    X, y = make_data(500, 6, k, seed=9)
    model = LogisticModel(l2=1.0, fit_intercept=fit_intercept).fit(X[:200], y[:200])
    f = InfluenceFactors().fit(model, X[:200], X[200:300], y[200:300])
    full = f.score(X[300:])
    np.testing.assert_allclose(f.score(X[300:], chunk_size=7), full, rtol=1e-12)
    labels, best = f.best_labels(X[300:], chunk_size=13)
    np.testing.assert_array_equal(labels, full.argmax(axis=1))
    np.testing.assert_allclose(best, full.max(axis=1))
    # The salutary label minimizes s_c and its score is never negative (DESIGN.md).
    assert np.all(best >= -1e-12)
    # float32 pools are scored in float32 with small error.
    f32 = f.score(X[300:].astype(np.float32))
    assert f32.dtype == np.float32
    np.testing.assert_allclose(f32, full, atol=1e-4 * np.abs(full).max())


@pytest.mark.parametrize("k", [2, 4])
def test_threaded_scoring_equals_serial_bit_for_bit(make_data, k):
    X, y = make_data(2300, 5, k, seed=4)
    model = LogisticModel(l2=1.0).fit(X[:200], y[:200])
    serial = InfluenceFactors(n_jobs=1).fit(model, X[:200], X[200:300], y[200:300])
    threaded = InfluenceFactors(n_jobs=3).fit(model, X[:200], X[200:300], y[200:300])
    assert n_threads(threaded.n_jobs, 10) == 3 and n_threads(serial.n_jobs, 10) == 1
    pool = X[300:]  # 2,000 rows in chunks of 64: each thread scores about 10 chunks
    np.testing.assert_array_equal(
        threaded.score(pool, chunk_size=64), serial.score(pool, chunk_size=64)
    )
    best_t, best_s = (
        threaded.best_labels(pool, chunk_size=64),
        serial.best_labels(pool, chunk_size=64),
    )
    np.testing.assert_array_equal(best_t[0], best_s[0])
    np.testing.assert_array_equal(best_t[1], best_s[1])


def test_best_label_ties_go_to_the_first_class_as_argmin(make_data):
    # Classes 1 and 3 get identical factors, and so identical s_c for every sample:
    # wherever they are the minimum, the label is 1, as np.argmin would give.
    X, y = make_data(400, 4, 4, seed=6)
    model = LogisticModel(l2=1.0).fit(X[:200], y[:200])
    f = InfluenceFactors().fit(model, X[:200], X[200:300], y[200:300])
    f.factors_[3] = f.factors_[1]
    f.factors_[2] = f.factors_[1]
    f.factors_[2, -1] += 1e3  # the intercept's column: s_2 = s_1 + 1000, never the minimum
    labels, _ = f.best_labels(X[300:])
    S = np.hstack([X[300:], np.ones((100, 1))]) @ f.factors_.T
    np.testing.assert_array_equal(labels, S.argmin(axis=1))
    assert set(labels) == {0, 1}


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_pool_rows_are_named(make_data, bad):
    X, y = make_data(400, 4, 3, seed=2)
    model = LogisticModel(l2=1.0).fit(X[:200], y[:200])
    f = InfluenceFactors().fit(model, X[:200], X[200:300], y[200:300])
    pool = X[300:].copy()
    pool[57, 2] = bad
    for method in (f.score, f.best_labels):
        with pytest.raises(ValueError, match="X_pool row 57 gives a non-finite influence"):
            method(pool, chunk_size=16)


def test_unseen_validation_label_is_rejected(make_data):
    X, y = make_data(200, 3, 3, seed=1)
    model = LogisticModel().fit(X[:100], y[:100])
    with pytest.raises(ValueError, match="labels the model was not trained on: 7"):
        influence_matrix(model, X[:100], X[100:110], np.full(10, 7), X[110:])


def test_cg_reports_iterations_and_residual(make_data):
    X, y = make_data(400, 20, 6, seed=2)
    model = LogisticModel(l2=1.0).fit(X[:300], y[:300])
    f = InfluenceFactors(solver="cg", tol=1e-10).fit(model, X[:300], X[300:], y[300:])
    assert f.solve_info_.solver == "cg"
    assert 0 < f.solve_info_.n_iter <= 10 * f.factors_.size
    assert f.solve_info_.residual < 1e-9


def test_auto_solver_choice_follows_operation_count():
    from salutary._linear import choose_solver

    assert choose_solver(300, 7, 12) == "direct"  # Wine Quality under the paper protocol
    assert choose_solver(2000, 10, 101) == "cg"  # building the Hessian would dominate
    assert choose_solver(50, 10, 500) == "cg"  # beyond 4,000 parameters: always CG
