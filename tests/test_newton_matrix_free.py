"""The matrix-free second-order path of salutary-newton, against dense oracles.

Above the dense Hessian's limit (or when it cannot be allocated) salutary-newton solves
the same systems by conjugate gradients on Hessian-vector products. Here the limit is
lowered so that both paths run on small models: products against the explicit
Hessian, solves against ``numpy.linalg.solve``, rounds against the dense path's picks.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse

import salutary.influence._lookahead
import salutary.strategies._newton
from salutary import LogisticModel
from salutary._linear import LogisticObjective, batched_cg, probabilities
from salutary.influence import MatrixFreeHessian, matrix_free_system, pair_hessian
from salutary.strategies import NewtonGreedySalutary, SalutaryHybrid

CASES = [(2, True), (3, True), (4, False)]


def _objective(make_data, k, fit_intercept, seed, sparse=False):
    X, y = make_data(90, 4, k, seed=seed)
    w = np.random.default_rng(seed).uniform(0.5, 2.0, size=len(y))
    Xs = scipy.sparse.csr_matrix(X) if sparse else X
    return LogisticObjective(Xs, y, k, 0.7, fit_intercept, w)


def _dense_hessian(train, P):
    """Sum of the per-sample Hessians, the penalty and the null-direction fix."""
    Xa = train.Xa.toarray() if scipy.sparse.issparse(train.Xa) else train.Xa
    H = sum(wi * pair_hessian(p, x) for wi, p, x in zip(train.w, P, Xa, strict=True))
    H = H + train.l2 * np.diag(train.mask.ravel())
    if train.null is not None:
        H = H + np.outer(train.null, train.null)
    return H


@pytest.mark.parametrize(("k", "fit_intercept"), CASES)
@pytest.mark.parametrize("sparse", [False, True])
def test_products_match_the_explicit_hessian_with_added_pairs(make_data, k, fit_intercept, sparse):
    train = _objective(make_data, k, fit_intercept, seed=k, sparse=sparse)
    rng = np.random.default_rng(7)
    theta = rng.normal(size=(train.k, train.d1))
    system = MatrixFreeHessian(train, theta)
    H = _dense_hessian(train, probabilities(train.logits(theta)))
    V = rng.normal(size=(5, train.n_params))
    np.testing.assert_allclose(system.product(V), V @ H, rtol=1e-10, atol=1e-10)
    # Two accepted pairs: their curvature joins the products (not solve0's).
    for _ in range(2):
        x = np.append(rng.normal(size=4), 1.0) if fit_intercept else rng.normal(size=4)
        p = probabilities(x[None, :] @ theta.T)[0]
        system.add(p, x)
        H = H + pair_hessian(p, x)
    np.testing.assert_allclose(system.product(V), V @ H, rtol=1e-10, atol=1e-10)
    assert not np.allclose(system.product(V, pairs=False), V @ H)


def test_batched_conjugate_gradients_match_numpy_solve():
    rng = np.random.default_rng(0)
    M = rng.normal(size=(40, 40))
    A = M @ M.T + 0.5 * np.eye(40)
    B = rng.normal(size=(6, 40))
    B[3] = 0.0  # a zero right-hand side stays zero and does not hold the others up
    diag = np.diag(A)
    X, n_iter = batched_cg(lambda V: V @ A, B, lambda R: R / diag, tol=1e-12, max_iter=400)
    ref = np.linalg.solve(A, B.T).T
    np.testing.assert_allclose(X, ref, rtol=1e-8, atol=1e-10)
    assert np.all(X[3] == 0.0)
    assert 0 < n_iter <= 400
    # Warm-started from the solution, nothing is left to do.
    _, again = batched_cg(lambda V: V @ A, B, lambda R: R / diag, tol=1e-8, max_iter=400, X0=X)
    assert again == 0
    with pytest.warns(RuntimeWarning, match="conjugate gradients stopped after 2"):
        batched_cg(lambda V: V @ A, B, lambda R: R / diag, tol=1e-12, max_iter=2)


@pytest.mark.parametrize(("k", "fit_intercept"), CASES)
def test_matrix_free_solves_match_numpy_solve(make_data, k, fit_intercept):
    X, y = make_data(200, 5, k, seed=10 + k)
    model = LogisticModel(l2=0.5, fit_intercept=fit_intercept).fit(X[:120], y[:120])
    system = matrix_free_system(model, X[:120], None)
    H = _dense_hessian(system.train, system.P)
    B = np.random.default_rng(1).normal(size=(H.shape[0], 3))
    ref = np.linalg.solve(H, B)
    np.testing.assert_allclose(system.solve0(B), ref, rtol=1e-6, atol=1e-8 * np.abs(ref).max())
    np.testing.assert_allclose(system.solver()(B[:, 0]), ref[:, 0], rtol=1e-6, atol=1e-9)
    assert system.n_iter and max(system.n_iter) <= H.shape[0] + 5


@pytest.fixture(scope="module")
def rounds():
    from conftest import make_classification_data

    out = {}
    for k in (2, 4):
        X, y = make_classification_data(560, 6, k, seed=20 + k)
        model = LogisticModel(l2=2.0).fit(X[:100], y[:100])
        out[k] = {"model": model, "X_train": X[:100], "y_train": y[:100],
                  "X_pool": X[100:460], "X_val": X[460:], "y_val": y[460:]}  # fmt: skip
    return out


def _select(strategy, d, budget, seed=0):
    return strategy.select(
        d["model"], d["X_train"], d["y_train"], d["X_pool"], budget,
        X_val=d["X_val"], y_val=d["y_val"], rng=np.random.default_rng(seed),
    )  # fmt: skip


@pytest.mark.parametrize("k", [2, 4])
@pytest.mark.parametrize("table", [True, False])
@pytest.mark.parametrize(
    "strategy",
    [
        NewtonGreedySalutary(max_growth=None),
        NewtonGreedySalutary(max_growth=None, objective="error", steps=3),
        NewtonGreedySalutary(max_growth=0.04, abstain=True),
    ],
    ids=["greedy", "error-3-steps", "sub-batches-abstain"],
)
def test_matrix_free_round_picks_what_the_dense_round_picks(
    rounds, monkeypatch, k, table, strategy
):
    # table: the candidates' solves tabulated once with Woodbury updates (few
    # classes); otherwise every greedy step solves for each live pair.
    d = rounds[k]
    dense = _select(strategy, d, 8)
    monkeypatch.setattr(salutary.strategies._newton, "NEWTON_MAX_PARAMS", 1)
    if not table:
        monkeypatch.setattr(salutary.influence._lookahead, "_CANDIDATE_SOLVES_BUDGET", 0)
    built: list[MatrixFreeHessian] = []

    def spy(*args):
        built.append(matrix_free_system(*args))
        return built[-1]

    monkeypatch.setattr(salutary.strategies._newton, "matrix_free_system", spy)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no first-order fallback, CG converged
        free = _select(strategy, d, 8)
    assert built and all(s.n_iter for s in built)  # the matrix-free path ran
    np.testing.assert_array_equal(free.indices, dense.indices)
    np.testing.assert_array_equal(free.labels, dense.labels)
    np.testing.assert_allclose(free.scores, dense.scores, rtol=1e-4, atol=1e-9)


def test_hybrid_asks_the_same_picks_matrix_free(rounds, monkeypatch):
    d = rounds[4]
    hybrid = SalutaryHybrid(true_fraction=0.5, max_growth=None)
    dense = _select(hybrid, d, 6)
    monkeypatch.setattr(salutary.strategies._newton, "NEWTON_MAX_PARAMS", 1)
    free = _select(hybrid, d, 6)
    np.testing.assert_array_equal(free.indices, dense.indices)
    np.testing.assert_array_equal(free.ask, dense.ask)


def test_first_order_fallback_only_above_the_matrix_free_limit(rounds, monkeypatch):
    d = rounds[4]
    monkeypatch.setattr(salutary.strategies._newton, "NEWTON_MAX_PARAMS", 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _select(NewtonGreedySalutary(max_growth=None), d, 4)
    monkeypatch.setattr(salutary.strategies._newton, "MATRIX_FREE_MAX_PARAMS", 27)
    with pytest.warns(RuntimeWarning, match="exceed the limit of 27 .*first-order top-b"):
        _select(NewtonGreedySalutary(max_growth=None), d, 4)
