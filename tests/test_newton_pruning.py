"""salutary-newton evaluates exactly only the one-step losses that decide its picks.

``OneStepLosses.evaluate(alive, count, abstain)`` drops a pair as soon as a lower bound of
its validation loss (exact on the rows computed so far, tangent on the others) exceeds
the loss of the step's ``count``-th pick. The oracles: every loss computed (``count``
None), and the validation cross-entropy recomputed from scratch at each pair's model.
"""

from __future__ import annotations

import numpy as np
import pytest

import salutary.influence._lookahead
import salutary.influence._newton
from salutary import LogisticModel
from salutary._linear import LogisticObjective
from salutary.influence import OneStepLosses, step_picks
from salutary.strategies import NewtonGreedySalutary


def _look(make_data, k, fit_intercept, seed, n_val=1200, objective="loss"):
    X, y = make_data(80 + n_val + 40, 5, k, seed=seed)
    model = LogisticModel(l2=1.0, fit_intercept=fit_intercept).fit(X[:80], y[:80])
    X_val, y_val = X[80 : 80 + n_val], y[80 : 80 + n_val]
    X_cand = X[80 + n_val :]
    labels = min(k, 3)
    pair_row = np.repeat(np.arange(len(X_cand)), labels)
    pair_label = np.tile(np.arange(labels), len(X_cand))
    look = OneStepLosses(
        model, X[:80], y[:80], None, X_val, y_val, X_cand, pair_row, pair_label,
        expected_error=objective == "error",
    )  # fmt: skip
    return look, model, X_val, y_val


def _greedy(look, count, abstain, pruned, steps=6):
    """Picks of each step, and each step's (losses, all losses, steps) for checking."""
    alive = np.ones(len(look.pair_row), bool)
    history = []
    for _ in range(steps):
        full, step, base = look.evaluate(alive)
        losses = look.evaluate(alive, count, abstain)[0] if pruned else full
        bar = look.base_loss(base) if abstain else np.inf
        picked = step_picks(losses, look.pair_row, count, bar)
        history.append((picked, losses, full, step))
        if not picked:
            break
        look.accept(picked, losses, step, base)
        for j in picked:
            alive[look.pair_row == look.pair_row[j]] = False
    return history


@pytest.mark.parametrize(
    ("k", "fit_intercept", "count", "abstain"),
    [(2, True, 1, False), (3, True, 1, False), (5, True, 3, False), (4, False, 2, True),
     (2, False, 2, True)],
)  # fmt: skip
def test_pruned_steps_pick_what_every_loss_picks(make_data, k, fit_intercept, count, abstain):
    evaluated = []
    for seed in range(3):
        look_all, *_ = _look(make_data, k, fit_intercept, seed)
        look_pruned, *_ = _look(make_data, k, fit_intercept, seed)
        every = _greedy(look_all, count, abstain, pruned=False)
        pruned = _greedy(look_pruned, count, abstain, pruned=True)
        assert [h[0] for h in pruned] == [h[0] for h in every]
        for picked, losses, full, _ in pruned:
            done = np.isfinite(losses)
            np.testing.assert_allclose(losses[done], full[done], rtol=1e-12)
            if len(picked) == count:
                # A pair left out would not have come before the last pick.
                assert np.all(full[~done] > losses[picked[-1]])
            evaluated.append(done.sum() / np.isfinite(full).sum())
    assert np.mean(evaluated) < 0.9  # the bound does prune


@pytest.mark.parametrize("joint", [True, False], ids=["one-product", "per-class"])
@pytest.mark.parametrize(("k", "fit_intercept"), [(2, True), (4, True), (3, False)])
def test_losses_are_the_validation_cross_entropy_at_each_step(
    make_data, monkeypatch, k, fit_intercept, joint
):
    # Oracle: the summed cross-entropy recomputed at every pair's one-step model, with
    # the validation rows in their given order. The logits come from one product for all
    # classes above a size (forced here for every block of several pairs) or one per class.
    monkeypatch.setattr(salutary.influence._lookahead, "_JOINT_MIN", 0 if joint else 10**18)
    look, model, X_val, y_val = _look(make_data, k, fit_intercept, seed=7)
    alive = np.ones(len(look.pair_row), bool)
    full, steps, _ = look.evaluate(alive)
    val = LogisticObjective(
        X_val, np.searchsorted(model.classes_, y_val), len(model.classes_), 0.0, fit_intercept
    )
    kd = steps.shape[1]
    direct = [val.loss(look.theta + s.reshape(kd // look.d1, look.d1)) for s in steps]
    np.testing.assert_allclose(full, direct, rtol=1e-11)
    pruned = look.evaluate(alive, 1)[0]
    best = int(np.argmin(direct))
    assert np.isfinite(pruned[best]) and int(np.argmin(pruned)) == best


@pytest.mark.parametrize(("k", "labels"), [(4, 2), (3, 3)])
def test_low_rank_steps_match_the_refactorized_hessian_at_every_step(
    make_data, monkeypatch, k, labels
):
    # Oracle: the same steps with the pairs' curvature added to the explicit Hessian and
    # refactorized (no candidates' solves table, no Woodbury, no reused buffers). The
    # low-rank side reuses its gathered solves and logits buffers from step to step.
    X, y = make_data(80 + 1200 + 30, 5, k, seed=11)
    model = LogisticModel(l2=1.0).fit(X[:80], y[:80])
    pair_row = np.repeat(np.arange(30), labels)
    pair_label = np.tile(np.arange(labels), 30)
    args = (model, X[:80], y[:80], None, X[80:1280], y[80:1280], X[1280:], pair_row, pair_label)
    monkeypatch.setattr(salutary.influence._newton, "REFACTOR_MAX_PARAMS", 0)
    low_rank = OneStepLosses(*args)
    monkeypatch.setattr(salutary.influence._newton, "REFACTOR_MAX_PARAMS", 10**9)
    dense = OneStepLosses(*args)
    assert low_rank.S0 is not None and dense.S0 is None
    alive = np.ones(len(pair_row), bool)
    for _ in range(5):
        losses, steps, base = low_rank.evaluate(alive, 2)
        every, ref_steps, ref_base = dense.evaluate(alive)
        np.testing.assert_allclose(steps[alive], ref_steps[alive], rtol=1e-8, atol=1e-12)
        np.testing.assert_allclose(base, ref_base, rtol=1e-8, atol=1e-12)
        done = np.isfinite(losses)
        assert done.sum() >= 2
        np.testing.assert_allclose(losses[done], every[done], rtol=1e-10)
        picked = step_picks(losses, pair_row, 2)
        assert picked == step_picks(every, pair_row, 2)
        low_rank.accept(picked, losses, steps, base)
        dense.accept(picked, every, ref_steps, ref_base)
        for j in picked:
            alive[pair_row == pair_row[j]] = False


def test_expected_error_is_not_pruned(make_data):
    # sum(1 - p_true) is not convex: the tangent bound does not hold, so every live pair
    # is evaluated.
    look, *_ = _look(make_data, 3, True, seed=1, objective="error")
    alive = np.ones(len(look.pair_row), bool)
    alive[::4] = False
    losses = look.evaluate(alive, 1)[0]
    assert np.all(np.isfinite(losses[alive])) and np.all(np.isinf(losses[~alive]))
    assert look.n_exact == [alive.sum()]


def test_step_picks_takes_distinct_samples_below_the_bar():
    losses = np.array([0.5, 0.2, 0.2, np.inf, 0.1, 0.9])
    rows = np.array([0, 1, 1, 2, 0, 3])
    assert step_picks(losses, rows, 1) == [4]
    # Sample 0's second pair (0.5) and sample 1's tie (index 2) are skipped.
    assert step_picks(losses, rows, 3) == [4, 1, 5]
    assert step_picks(losses, rows, 3, bar=0.5) == [4, 1]
    assert step_picks(losses, rows, 10) == [4, 1, 5]  # never an inf loss
    assert step_picks(np.full(3, np.inf), np.arange(3), 1) == []


@pytest.mark.parametrize(
    "params",
    [{}, {"abstain": True, "max_growth": 0.04}, {"steps": 3}, {"labels": 3, "candidates": 3}],
    ids=["greedy", "abstain-sub-batches", "three-per-step", "three-labels"],
)
def test_selection_unchanged_by_pruning(make_data, monkeypatch, params):
    X, y = make_data(900, 6, 4, seed=3)
    model = LogisticModel(l2=2.0).fit(X[:100], y[:100])

    def select():
        return NewtonGreedySalutary(**params).select(
            model, X[:100], y[:100], X[100:500], 9, X_val=X[500:], y_val=y[500:],
            rng=np.random.default_rng(0),
        )  # fmt: skip

    pruned = select()
    evaluate = OneStepLosses.evaluate
    monkeypatch.setattr(
        OneStepLosses, "evaluate", lambda self, alive, count=None, abstain=False: evaluate(
            self, alive
        ),
    )  # fmt: skip
    every = select()
    np.testing.assert_array_equal(pruned.indices, every.indices)
    np.testing.assert_array_equal(pruned.labels, every.labels)
    np.testing.assert_allclose(pruned.scores, every.scores, rtol=1e-9)
