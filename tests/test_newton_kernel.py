"""The training Hessian's solves through its kernel (few rows for the parameters).

:class:`salutary.influence.KernelHessian` must solve the same systems as the dense
Hessian (built here independently, with numpy's solver), grow by pairs as
:class:`salutary.influence.GrowingHessian` does, and leave salutary-newton's picks as
the dense path makes them.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_classification_data

import salutary.influence._kernel
import salutary.influence._newton
from salutary._linear import LogisticObjective, probabilities
from salutary.influence import (
    GrowingHessian,
    KernelHessian,
    kernel_pays,
    model_system,
    pair_hessian,
)
from salutary.model import LogisticModel
from salutary.strategies import NewtonGreedySalutary

CASES = [
    pytest.param(2, True, False, id="binary"),
    pytest.param(2, False, True, id="binary-no-intercept-weighted"),
    pytest.param(4, True, True, id="multinomial-weighted"),
    pytest.param(4, True, False, id="multinomial"),
    pytest.param(4, False, False, id="multinomial-no-intercept"),
]


def _objective(n_classes, fit_intercept, weighted, n=9, d=30, seed=0):
    """A training objective with fewer rows times logits than parameters, parameters
    at which to take its Hessian, and that Hessian built densely (with the null fix)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    w = rng.uniform(0.2, 3.0, size=n) if weighted else None
    train = LogisticObjective(X, rng.integers(0, n_classes, n), n_classes, 0.3, fit_intercept, w)
    theta = 0.4 * rng.normal(size=(train.k, train.d1))
    H = train.hessian(probabilities(train.logits(theta)))
    if train.null is not None:
        H += np.outer(train.null, train.null)
    return train, theta, H


def _rel(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.mark.parametrize(("n_classes", "fit_intercept", "weighted"), CASES)
def test_solves_equal_the_dense_hessian(n_classes, fit_intercept, weighted):
    train, theta, H = _objective(n_classes, fit_intercept, weighted)
    assert train.Xa.shape[0] * train.k < train.n_params / 2
    system = KernelHessian(train, theta)
    assert isinstance(system, GrowingHessian) and system.low_rank
    B = np.random.default_rng(1).normal(size=(train.n_params, 7))
    expected = np.linalg.solve(H, B)
    assert _rel(system.solve0(B), expected) < 1e-8
    assert _rel(system.solve0(B[:, 3]), expected[:, 3]) < 1e-8  # one vector
    assert _rel(system.solver()(B), expected) < 1e-8  # no pair yet


def test_solves_in_several_groups_of_columns(monkeypatch):
    train, theta, H = _objective(4, True, True)
    B = np.random.default_rng(2).normal(size=(train.n_params, 10))
    monkeypatch.setattr(salutary.influence._kernel, "_SOLVE_BUDGET", 3 * train.n_params)
    assert _rel(KernelHessian(train, theta).solve0(B), np.linalg.solve(H, B)) < 1e-8


@pytest.mark.parametrize(("n_classes", "fit_intercept", "weighted"), CASES)
def test_added_pairs_equal_the_dense_hessian_with_their_curvature(
    n_classes, fit_intercept, weighted
):
    train, theta, H = _objective(n_classes, fit_intercept, weighted)
    rng = np.random.default_rng(3)
    pairs = [
        (probabilities(rng.normal(size=(1, train.k)))[0], train.Xa[0] + rng.normal(size=train.d1))
        for _ in range(3)
    ]
    if fit_intercept:
        pairs = [(p, np.r_[x[:-1], 1.0]) for p, x in pairs]
    dense = H + sum(pair_hessian(p, x) for p, x in pairs)
    B = rng.normal(size=(train.n_params, 4))
    expected = np.linalg.solve(dense, B)
    system = KernelHessian(train, theta)
    for p, x in pairs:
        system.add(p, x)
    assert _rel(system.solver()(B), expected) < 1e-8
    # With the pairs' solves given (as salutary-newton hands them over): the same.
    given = KernelHessian(train, theta)
    for p, x in pairs:
        given.add(p, x, solved=np.linalg.solve(H, np.kron(np.eye(train.k), x[:, None])))
    assert _rel(given.solver()(B), expected) < 1e-8
    assert _rel(given.woodbury()(np.linalg.solve(H, B)), expected) < 1e-8


def test_switch_takes_the_kernel_only_where_it_applies(monkeypatch):
    train, _, _ = _objective(4, True, False, n=9, d=300)  # 1,204 parameters, 36 rows x logits
    assert kernel_pays(train)
    monkeypatch.setattr(salutary.influence._kernel, "KERNEL_MAX_SHARE", 0.0)
    assert not kernel_pays(train)
    monkeypatch.undo()
    small, _, _ = _objective(4, True, False)  # refactorized per step: never the kernel
    assert not kernel_pays(small)
    penalty_free, _, _ = _objective(4, True, False, n=9, d=300)
    penalty_free.l2 = 0.0
    assert not kernel_pays(penalty_free)


@pytest.mark.parametrize(
    ("n_classes", "d", "fit_intercept", "weighted"),
    [
        pytest.param(4, 260, True, False, id="multinomial"),  # 1,044 parameters
        pytest.param(2, 150, True, True, id="binary-weighted"),
        pytest.param(3, 60, False, False, id="no-intercept"),
    ],
)
def test_selection_equals_the_dense_path(monkeypatch, n_classes, d, fit_intercept, weighted):
    if d < 260:
        # Smaller models, factorized once per round as those above 1,000 parameters.
        monkeypatch.setattr(salutary.influence._newton, "REFACTOR_MAX_PARAMS", 100)
    X, y = make_classification_data(180, d, n_classes, seed=5)
    n = {4: 40, 2: 60, 3: 25}[n_classes]
    w = np.random.default_rng(6).uniform(0.5, 2.0, n) if weighted else None
    model = LogisticModel(l2=3.0, fit_intercept=fit_intercept).fit(X[:n], y[:n], sample_weight=w)
    assert isinstance(model_system(model, X[:n], w), KernelHessian)

    def select():
        return NewtonGreedySalutary(candidates=3, labels=2, max_growth=None).select(
            model, X[:n], y[:n], X[n:140], 5, X_val=X[140:], y_val=y[140:],
            sample_weight=w, rng=np.random.default_rng(0),
        )  # fmt: skip

    kernel = select()
    monkeypatch.setattr(salutary.influence._kernel, "KERNEL_MAX_SHARE", 0.0)
    assert not isinstance(model_system(model, X[:n], w), KernelHessian)
    dense = select()
    assert len(dense.indices) == 5
    np.testing.assert_array_equal(kernel.indices, dense.indices)
    np.testing.assert_array_equal(kernel.labels, dense.labels)
    np.testing.assert_allclose(kernel.scores, dense.scores, rtol=1e-6)


def test_dense_path_is_untouched_when_the_kernel_does_not_apply(monkeypatch):
    # More rows times logits than half the parameters: the dense GrowingHessian.
    monkeypatch.setattr(salutary.influence._newton, "REFACTOR_MAX_PARAMS", 0)
    X, y = make_classification_data(60, 5, 3, seed=4)
    model = LogisticModel(l2=2.0).fit(X, y)
    system = model_system(model, X, None)
    assert type(system) is GrowingHessian


def test_badly_scaled_features_lose_no_more_than_the_dense_solve():
    # Large features and a tiny penalty: the weights can fit the rows almost exactly,
    # so the intercepts' Schur complement is tiny next to its terms. It is formed
    # without subtracting them, so the solves stay as accurate as the dense ones.
    train, theta, H = _objective(4, True, False, n=9, d=30, seed=3)
    train.Xa[:, :-1] *= 100.0
    theta[:, :-1] /= 100.0  # the same logits
    train.l2 = 1e-4
    H = train.hessian(probabilities(train.logits(theta))) + np.outer(train.null, train.null)
    B = np.random.default_rng(4).normal(size=(train.n_params, 3))

    def residual(X):
        return float(np.linalg.norm(H @ X - B) / np.linalg.norm(B))

    dense = residual(np.linalg.solve(H, B))
    assert residual(KernelHessian(train, theta).solve0(B)) < max(10 * dense, 1e-12)
