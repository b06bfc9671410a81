"""CSR input through the model, the influence engine, every strategy and the labeler:
the same results as the dense computation (to 1e-10, same picks)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from salutary import InfluenceFactors, LogisticModel, SalutaryLabeler, run_active_learning
from salutary.pool import ArrayPool
from salutary.strategies import STRATEGIES, get_strategy

RTOL, ATOL = 1e-10, 1e-12


def sparse_data(n=1200, d=40, k=3, density=0.15, seed=0):
    rng = np.random.default_rng(seed)
    X = sp.random(n, d, density=density, format="csr", random_state=seed) * 4.0
    W = rng.normal(size=(k, d))
    y = (X @ W.T + rng.gumbel(size=(n, k))).argmax(axis=1)
    return X, y


@pytest.mark.parametrize("k", [2, 4])
@pytest.mark.parametrize("solver", ["direct", "cg"])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_logistic_model_on_sparse_input_equals_dense(k, solver, fit_intercept):
    X, y = sparse_data(n=500, k=k)
    w = np.random.default_rng(1).uniform(0.5, 2.0, size=500)
    a = LogisticModel(l2=2.0, solver=solver, fit_intercept=fit_intercept)
    b = LogisticModel(l2=2.0, solver=solver, fit_intercept=fit_intercept)
    a.fit(X, y, sample_weight=w)
    b.fit(X.toarray(), y, sample_weight=w)
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X.toarray()), atol=1e-10)


@pytest.mark.parametrize("k", [2, 4])
def test_influence_on_sparse_input_equals_dense(k):
    X, y = sparse_data(n=6000, k=k)  # more than one 4,096-row chunk
    model = LogisticModel(l2=2.0).fit(X[:300], y[:300])
    fs = InfluenceFactors().fit(model, X[:300], X[300:500], y[300:500])
    fd = InfluenceFactors().fit(model, X[:300].toarray(), X[300:500].toarray(), y[300:500])
    np.testing.assert_allclose(fs.factors_, fd.factors_, rtol=RTOL, atol=ATOL)
    pool = X[500:]
    np.testing.assert_allclose(fs.score(pool), fd.score(pool.toarray()), rtol=RTOL, atol=ATOL)
    (ls, ss), (ld, sd) = fs.best_labels(pool), fd.best_labels(pool.toarray())
    np.testing.assert_array_equal(ls, ld)
    np.testing.assert_allclose(ss, sd, rtol=RTOL, atol=ATOL)


def test_array_pool_keeps_a_sparse_pool_sparse():
    X, _ = sparse_data(n=50)
    pool = ArrayPool(X)
    pool.remove(np.array([0, 7, 49]))
    assert sp.issparse(pool.to_numpy()) and pool.n_rows == 47
    np.testing.assert_array_equal(
        pool.to_numpy().toarray(), np.delete(X.toarray(), [0, 7, 49], axis=0)
    )
    np.testing.assert_array_equal(pool.take(np.array([1, 0])).toarray(), X[[2, 1]].toarray())
    rest = pool.without(np.array([0]))
    assert rest.n_rows == 46 and pool.n_rows == 47


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_selects_the_same_on_sparse_input(name):
    X, y = sparse_data(n=1600, k=3, seed=2)
    X_lab, y_lab, X_val, y_val, X_pool = X[:200], y[:200], X[200:500], y[200:500], X[500:]
    model = LogisticModel(l2=5.0).fit(X_lab, y_lab)
    dense = LogisticModel(l2=5.0).fit(X_lab.toarray(), y_lab)
    strategy = get_strategy(name)
    kw = dict(trusted=np.ones(200, bool))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = strategy.select(model, X_lab, y_lab, ArrayPool(X_pool), 12, X_val=X_val,
                            y_val=y_val, rng=np.random.default_rng(3), **kw)  # fmt: skip
        b = strategy.select(dense, X_lab.toarray(), y_lab, ArrayPool(X_pool.toarray()), 12,
                            X_val=X_val.toarray(), y_val=y_val, rng=np.random.default_rng(3),
                            **kw)  # fmt: skip
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-7, atol=1e-9)
    if a.labels is not None:
        np.testing.assert_array_equal(a.labels, b.labels)


def test_labeler_and_loop_on_sparse_input_equal_dense():
    X, y = sparse_data(n=1500, seed=3)
    y_semi = np.where(np.arange(1500) < 400, y, -1)
    a = SalutaryLabeler(LogisticModel(l2=5.0), rounds=3, random_state=0).fit(X, y_semi)
    b = SalutaryLabeler(LogisticModel(l2=5.0), rounds=3, random_state=0).fit(X.toarray(), y_semi)
    np.testing.assert_array_equal(a.transduction_, b.transduction_)
    np.testing.assert_allclose(a.estimator_.coef_, b.estimator_.coef_, rtol=1e-8, atol=1e-10)
    np.testing.assert_array_equal(a.predict(X), b.predict(X.toarray()))
    runs = [
        run_active_learning(
            Z[:200],
            y[:200],
            Z[200:1000],
            Z[1000:1200],
            y[1000:1200],
            Z[1200:],
            y[1200:],
            strategy="salutary-newton",
            rounds=3,
            y_pool=y[200:1000],
            seed=1,
        )
        for Z in (X, X.toarray())
    ]
    assert runs[0].accuracy == runs[1].accuracy
    for s, t in zip(runs[0].selected, runs[1].selected, strict=True):
        np.testing.assert_array_equal(s, t)
