"""The paper-faithful mode: the pool Hessian and the authors' Wine Quality protocol.

Oracles: the influence with a Hessian built densely, row by row, from its definition;
the shapes and the published test-accuracy curves of the authors' notebook
(``main_multi_wine.ipynb`` in wxxiaoss/salutary-labeling, in that repository's history).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import make_classification_data

from salutary.benchmark import PROTOCOLS, RunKey, run_one
from salutary.datasets import load_dataset
from salutary.experiment import authors_split
from salutary.influence import InfluenceFactors
from salutary.model import LogisticModel
from salutary.strategies import ISAL, SalutaryLabeling, get_strategy

# The notebook's test accuracy (%) after rounds 0..10 (its saved outputs).
NOTEBOOK_SALUTARY = [44.62, 44.46, 44.69, 45.46, 46.15, 47.85, 48.85, 49.00, 49.38, 49.85, 50.46]
NOTEBOOK_MARGIN = [44.62, 45.31, 45.15, 45.85, 46.85, 46.38, 47.00, 47.38, 47.46, 48.85, 47.92]


def _dense_pool_influence(model, X_pool, X_val, y_val):
    """``I[j, c] = grad l(x_j, c)^T H_pool^+ g_V`` with everything built row by row."""
    coef = model.coef_
    fit_intercept = model.fit_intercept
    classes = model.classes_

    def aug(x):
        return np.append(x, 1.0) if fit_intercept else x

    def probs(x):
        z = coef @ x + (model.intercept_ if fit_intercept else 0.0)
        if len(classes) == 2:  # one sigmoid logit
            return np.array([1.0 / (1.0 + np.exp(-z[0]))])
        e = np.exp(z - z.max())
        return e / e.sum()

    def grad(x, c):
        p, xa = probs(x), aug(x)
        if len(classes) == 2:
            return (p - (c == 1)) * xa
        return np.kron(p - np.eye(len(classes))[c], xa)

    d1 = len(aug(X_pool[0]))
    k = 1 if len(classes) == 2 else len(classes)
    H = np.zeros((k * d1, k * d1))
    for x in X_pool:
        p, xa = probs(x), aug(x)
        curv = np.diag(p * (1 - p)) if k == 1 else np.diag(p) - np.outer(p, p)
        H += np.kron(curv, np.outer(xa, xa))
    penalty = np.ones(d1)
    if fit_intercept:
        penalty[-1] = 0.0  # the intercept is not penalized
    H += model.l2 * np.diag(np.tile(penalty, k))
    g_val = sum(
        grad(x, int(np.searchsorted(classes, c))) for x, c in zip(X_val, y_val, strict=True)
    )
    v = np.linalg.pinv(H, hermitian=True) @ g_val
    return np.array([[grad(x, c) @ v for c in range(len(classes))] for x in X_pool])


@pytest.mark.parametrize(("k", "fit_intercept"), [(3, True), (4, False), (2, True), (2, False)])
def test_pool_hessian_influence_matches_dense_formula(k, fit_intercept):
    X, y = make_classification_data(260, 4, k, seed=k + fit_intercept)
    X_tr, y_tr, X_val, y_val, X_pool = X[:80], y[:80], X[80:140], y[80:140], X[140:]
    model = LogisticModel(l2=2.0, fit_intercept=fit_intercept).fit(X_tr, y_tr)
    expected = _dense_pool_influence(model, X_pool, X_val, y_val)
    for solver in ("direct", "cg"):
        factors = InfluenceFactors(solver=solver, tol=1e-12).fit(
            model, X_tr, X_val, y_val, X_hessian=X_pool
        )
        np.testing.assert_allclose(factors.score(X_pool), expected, rtol=1e-6, atol=1e-8)
    # The training-set Hessian gives other values: the option is not a no-op.
    train = InfluenceFactors().fit(model, X_tr, X_val, y_val).score(X_pool)
    assert not np.allclose(train, expected, rtol=1e-3)


def test_pool_hessian_checks_features():
    X, y = make_classification_data(100, 3, 3, seed=0)
    model = LogisticModel(l2=1.0).fit(X, y)
    with pytest.raises(ValueError, match="X_hessian has 2 features"):
        InfluenceFactors().fit(model, X, X, y, X_hessian=X[:, :2])


def test_salutary_pool_hessian_picks_the_dense_best():
    X, y = make_classification_data(400, 5, 4, seed=3)
    X_tr, y_tr, X_val, y_val, X_pool = X[:100], y[:100], X[100:180], y[100:180], X[180:]
    model = LogisticModel(l2=5.0).fit(X_tr, y_tr)
    strategy = get_strategy("salutary:hessian=pool")
    assert isinstance(strategy, SalutaryLabeling) and strategy.hessian == "pool"
    sel = strategy.select(
        model, X_tr, y_tr, X_pool, 10, X_val=X_val, y_val=y_val, rng=np.random.default_rng(0)
    )
    dense = _dense_pool_influence(model, X_pool, X_val, y_val)
    best = dense.max(axis=1)
    np.testing.assert_array_equal(np.sort(sel.indices), np.sort(np.argsort(-best)[:10]))
    np.testing.assert_array_equal(sel.labels, model.classes_[dense[sel.indices].argmax(axis=1)])
    np.testing.assert_allclose(sel.scores, best[sel.indices], rtol=1e-6)


def test_hessian_option_is_checked_and_shared():
    with pytest.raises(ValueError, match="hessian"):
        get_strategy("salutary:hessian=validation")
    assert get_strategy("salutary-crossfit:hessian=pool").hessian == "pool"
    # ISAL scores with the same factors: it takes the pool Hessian too.
    X, y = make_classification_data(300, 4, 3, seed=5)
    model = LogisticModel(l2=5.0).fit(X[:80], y[:80])
    rng = np.random.default_rng(0)
    args = (model, X[:80], y[:80], X[150:], 5)
    pool_sel = ISAL(hessian="pool").select(*args, X_val=X[80:150], y_val=y[80:150], rng=rng)
    dense = _dense_pool_influence(model, X[150:], X[80:150], y[80:150])
    predicted = np.searchsorted(model.classes_, model.predict(X[150:]))
    expected = dense[np.arange(len(dense)), predicted]
    np.testing.assert_array_equal(np.sort(pool_sel.indices), np.sort(np.argsort(-expected)[:5]))


@pytest.fixture(scope="module")
def wine():
    return load_dataset("wine_quality")


def test_authors_split_is_the_notebooks(wine):
    split = authors_split(wine.X, wine.y, seed=1)
    # The notebook's printed shapes: initial, pool, validation, test.
    sizes = [len(split.y_labeled), len(split.y_pool), len(split.y_val), len(split.y_test)]
    assert sizes == [301, 3596, 1300, 1300]
    parts = [split.y_labeled, split.y_pool, split.y_val, split.y_test]
    assert [int(np.sum(part == 9)) for part in parts] == [1, 2, 1, 1]
    # Raw features: every row of the dataset exactly once, unscaled.
    rows = np.vstack([split.X_labeled, split.X_pool, split.X_val, split.X_test])
    labels = np.concatenate(parts)
    order = np.lexsort(np.column_stack([rows, labels]).T)
    ref = np.lexsort(np.column_stack([wine.X, wine.y]).T)
    np.testing.assert_array_equal(rows[order], wine.X[ref])
    np.testing.assert_array_equal(labels[order], wine.y[ref])
    # Stratified: each part has the class shares of the whole (quality 9 aside).
    common = wine.y != 9
    share = np.bincount(wine.y[common], minlength=9) / common.sum()
    for part in parts:
        kept = part[part != 9]
        assert np.abs(np.bincount(kept, minlength=9) / len(kept) - share).max() < 0.01
    other = authors_split(wine.X, wine.y, seed=2)
    assert not np.array_equal(other.y_test, split.y_test)
    assert [int(np.sum(p == 9)) for p in (other.y_labeled, other.y_pool)] == [1, 2]


def test_authors_protocol_reproduces_the_notebook():
    protocol = PROTOCOLS["authors"]
    assert (protocol.fit_intercept, protocol.l2, protocol.split) == (False, 50.0, "authors")
    curves = {}
    for spec in ("salutary:hessian=pool", "margin"):
        frame = run_one(RunKey("wine_quality", "authors", spec, 1))
        curves[spec] = 100 * frame.sort_values("round")["accuracy"].to_numpy()
    gap = np.abs(curves["salutary:hessian=pool"] - NOTEBOOK_SALUTARY)
    assert len(gap) == 11 and gap.mean() <= 1.0, gap
    assert np.abs(curves["margin"] - NOTEBOOK_MARGIN).mean() <= 1.0


def test_run_command_reproduces_the_notebook(tmp_path):
    from typer.testing import CliRunner

    from salutary.cli import app

    args = ["run", "--protocol", "authors", "--first-seed", "1", "--seeds", "1",
            "-s", "salutary:hessian=pool", "--json", "-o", str(tmp_path / "out")]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["settings"]["protocol"] == "authors" and doc["settings"]["seeds"] == [1]
    assert doc["split_sizes"] == {"labeled": 301, "pool": 3596, "validation": 1300, "test": 1300}
    curve = [100 * r["mean"] for r in doc["strategies"]["salutary:hessian=pool"]["rounds"]]
    assert np.abs(np.array(curve) - NOTEBOOK_SALUTARY).mean() <= 1.0
