"""LogisticModel: the objective it claims, its optimum, and scikit-learn compatibility."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import softmax
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.utils.estimator_checks import parametrize_with_checks

from salutary import LogisticModel


@parametrize_with_checks([LogisticModel(), LogisticModel(l2=0.1, fit_intercept=False)])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def _explicit_gradient(model, X, y, w):
    """Gradient of sum_i w_i CE + l2/2 ||W||^2, written out independently."""
    classes = model.classes_
    Xa = np.hstack([X, np.ones((len(X), 1))]) if model.fit_intercept else X
    theta = (
        model.coef_
        if not model.fit_intercept
        else np.hstack([model.coef_, model.intercept_[:, None]])
    )
    if len(classes) == 2:
        z = Xa @ theta[0]
        r = 1 / (1 + np.exp(-z)) - (y == classes[1])
        g = (w * r) @ Xa
        pen = model.l2 * theta[0]
        if model.fit_intercept:
            pen[-1] = 0
        return g + pen
    P = softmax(Xa @ theta.T, axis=1)
    Y = (y[:, None] == classes[None, :]).astype(float)
    G = ((P - Y) * w[:, None]).T @ Xa
    pen = model.l2 * theta
    if model.fit_intercept:
        pen[:, -1] = 0
    return (G + pen).ravel()


@pytest.mark.parametrize("k", [2, 4])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_fit_reaches_stationary_point(make_data, k, fit_intercept):
    X, y = make_data(300, 6, k, seed=k, shift=0.5)
    w = np.random.default_rng(0).uniform(0.2, 2.0, size=len(y))
    model = LogisticModel(l2=0.7, fit_intercept=fit_intercept).fit(X, y, sample_weight=w)
    g = _explicit_gradient(model, X, y, w)
    assert np.max(np.abs(g)) < 1e-8 * w.sum()


@pytest.mark.parametrize("k", [2, 3, 5])
def test_same_probabilities_as_sklearn_with_C_equal_one_over_l2(make_data, k):
    X, y = make_data(400, 5, k, seed=10 + k)
    l2 = 3.0
    ours = LogisticModel(l2=l2).fit(X, y)
    ref = LogisticRegression(C=1 / l2, tol=1e-12, max_iter=10_000).fit(X, y)
    assert ours.coef_.shape == ref.coef_.shape
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-6)
    np.testing.assert_array_equal(ours.classes_, ref.classes_)


def test_integer_weights_equal_duplication(make_data):
    X, y = make_data(120, 4, 3, seed=3)
    w = np.random.default_rng(1).integers(1, 4, size=len(y))
    weighted = LogisticModel(l2=2.0).fit(X, y, sample_weight=w)
    duplicated = LogisticModel(l2=2.0).fit(np.repeat(X, w, axis=0), np.repeat(y, w))
    np.testing.assert_allclose(weighted.coef_, duplicated.coef_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(weighted.intercept_, duplicated.intercept_, atol=1e-9)


def test_sum_objective_scales_with_n_like_a_penalty_ratio(make_data):
    # Sum form: doubling every weight is the same as halving l2.
    X, y = make_data(150, 4, 3, seed=4)
    a = LogisticModel(l2=4.0).fit(X, y, sample_weight=np.full(len(y), 2.0))
    b = LogisticModel(l2=2.0).fit(X, y)
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-8)


def test_string_labels_and_softmax_intercepts_centred(make_data):
    X, y = make_data(200, 3, 3, seed=5)
    labels = np.array(["cat", "dog", "emu"])[y]
    model = LogisticModel(l2=1.0).fit(X, labels)
    assert set(model.predict(X)) <= set(labels)
    assert abs(model.intercept_.sum()) < 1e-10


def test_warm_start_gives_the_same_optimum(make_data):
    X, y = make_data(300, 5, 4, seed=6)
    cold = LogisticModel(l2=1.0).fit(X, y)
    warm = LogisticModel(l2=1.0, warm_start=True).fit(X[:150], y[:150]).fit(X, y)
    np.testing.assert_allclose(warm.coef_, cold.coef_, rtol=1e-8, atol=1e-10)


def test_cg_solver_matches_direct(make_data):
    X, y = make_data(300, 8, 4, seed=7)
    a = LogisticModel(l2=1.0, solver="direct").fit(X, y)
    b = LogisticModel(l2=1.0, solver="cg").fit(X, y)
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-7, atol=1e-9)


def test_not_converged_warns(make_data):
    X, y = make_data(200, 5, 3, seed=8)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        LogisticModel(l2=1e-3, max_iter=1).fit(X, y)


def test_single_class_is_rejected():
    with pytest.raises(ValueError, match="only one class"):
        LogisticModel().fit(np.ones((5, 2)), np.zeros(5))


def _ill_conditioned(n=1500, d=40, k=4, seed=0):
    """Strongly correlated features (like image pixels): Jacobi-CG needs many iterations."""
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, 5))
    X = Z @ rng.standard_normal((5, d)) + 0.05 * rng.standard_normal((n, d))
    y = np.argmax(Z[:, :k] + 0.5 * rng.standard_normal((n, k)), axis=1)
    return X, y


@pytest.mark.parametrize("k", [2, 4])
def test_block_jacobi_inverts_the_dense_diagonal_blocks(k):
    from salutary._linear import BlockJacobi, LogisticObjective, probabilities

    X, y = _ill_conditioned(n=300, d=12, k=k)
    obj = LogisticObjective(X, y, k, 0.5, True)
    theta = np.random.default_rng(1).normal(size=(obj.k, obj.d1))
    P = probabilities(obj.logits(theta))
    H = obj.hessian(P)
    if obj.null is not None:
        H = H + np.outer(obj.null, obj.null)
    pre = BlockJacobi(obj, P)
    x = np.random.default_rng(2).normal(size=obj.n_params)
    d1 = obj.d1
    expected = np.concatenate(
        [
            np.linalg.solve(
                H[a * d1 : (a + 1) * d1, a * d1 : (a + 1) * d1], x[a * d1 : (a + 1) * d1]
            )
            for a in range(obj.k)
        ]
    )
    np.testing.assert_allclose(pre(x), expected, rtol=1e-9, atol=1e-12)


def test_block_jacobi_cg_solution_equals_direct_with_fewer_iterations():
    from salutary._linear import BlockJacobi, LogisticObjective, probabilities

    X, y = _ill_conditioned()
    obj = LogisticObjective(X, y, 4, 1.0, True)
    theta = np.zeros((obj.k, obj.d1))
    P = probabilities(obj.logits(theta))
    rhs = np.random.default_rng(3).normal(size=(obj.k, obj.d1))
    rhs[:, -1] -= rhs[:, -1].mean()  # orthogonal to the intercept null direction
    v_direct, _ = obj.solve(P, rhs, solver="direct")
    v_jacobi, jacobi = obj.solve(P, rhs, solver="cg", tol=1e-10)
    v_block, block = obj.solve(P, rhs, solver="cg", tol=1e-10, preconditioner=BlockJacobi(obj, P))
    scale = np.abs(v_direct).max()
    assert np.abs(v_jacobi - v_direct).max() < 1e-7 * scale
    assert np.abs(v_block - v_direct).max() < 1e-7 * scale
    assert block.n_iter < jacobi.n_iter


def test_model_builds_block_jacobi_when_cg_is_slow_and_keeps_the_optimum():
    X, y = _ill_conditioned()
    direct = LogisticModel(l2=1.0, solver="direct").fit(X, y)
    cg = LogisticModel(l2=1.0, solver="cg", warm_start=True).fit(X, y)
    assert cg._preconditioner is not None  # Jacobi took >= 50 iterations here
    np.testing.assert_allclose(cg.coef_, direct.coef_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(cg.intercept_, direct.intercept_, rtol=1e-6, atol=1e-8)
    # A warm refit on grown data reuses it (stale probabilities, more rows) and still
    # reaches the exact optimum of the new data.
    X_new, y_new = _ill_conditioned(n=1600, seed=0)
    X2, y2 = np.vstack([X, X_new[:30]]), np.concatenate([y, y_new[:30]])
    kept = cg._preconditioner
    cg.fit(X2, y2)
    assert cg._preconditioner is kept
    again = LogisticModel(l2=1.0, solver="direct").fit(X2, y2)
    np.testing.assert_allclose(cg.coef_, again.coef_, rtol=1e-6, atol=1e-8)
    # ... and is not pickled (it can be large).
    import pickle

    assert not hasattr(pickle.loads(pickle.dumps(cg)), "_preconditioner")
