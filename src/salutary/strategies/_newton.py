"""Salutary labeling with batch-aware, second-order selection, and its hybrid."""

from __future__ import annotations

import copy
import warnings
from typing import Any, ClassVar

import numpy as np

from salutary._sparse import densify, vstack
from salutary._validation import Integral, Interval, Real, StrOptions
from salutary.influence import (
    MATRIX_FREE_MAX_PARAMS,
    NEWTON_MAX_PARAMS,
    GrowingHessian,
    InfluenceFactors,
    MatrixFreeHessian,
    OneStepLosses,
    factorized_once,
    matrix_free_system,
    model_parameters,
    model_system,
    step_picks,
)
from salutary.pool import Pool, RowScorer, top_k
from salutary.strategies._base import Selection, pick_margins
from salutary.strategies._salutary import BestLabels, SalutaryLabeling

__all__ = ["MarginGap", "NewtonGreedySalutary", "SalutaryHybrid", "label_margin"]


def label_margin(influence: np.ndarray) -> np.ndarray:
    """Best minus second-best entry per row of an influence matrix (n, n_classes).

    How much more the most helpful label is predicted to help than the runner-up: the
    certainty of a salutary label (0 = two labels equally good).
    """
    top2 = np.partition(np.asarray(influence, dtype=np.float64), -2, axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


class MarginGap(RowScorer):
    """Second-largest minus largest class probability of ``model`` (larger: less sure)."""

    has_labels = False

    def __init__(self, model: Any) -> None:
        self.model = model

    def score_chunk(self, X: np.ndarray) -> tuple[np.ndarray, None]:
        proba = np.sort(self.model.predict_proba(X), axis=1)
        return proba[:, -2] - proba[:, -1], None


def _sub_batch(growth: float, n_train: int) -> int:
    """Picks one sub-batch may add to a training set of ``n_train`` rows (at least 1)."""
    return max(1, int(growth * n_train))


class NewtonGreedySalutary(SalutaryLabeling):
    """Salutary labeling with batch-aware, second-order selection. No oracle.

    First-order influence ranks the pool; the ``candidates * budget`` best samples, each
    with its ``labels`` most helpful labels, are then chosen greedily: every step
    predicts, for every remaining (sample, label), the model after adding it to the
    training set *together with the pairs already chosen this round*, by one Newton
    step from the current parameters (with the Hessian of the training set and the
    chosen pairs, taken once per round at the fitted model; the candidate's own
    curvature is left out, as in the influence function), evaluates the validation
    loss exactly at that model (not its linearization), and adds the pair that reaches
    the lowest. (Pairs that cannot reach it are left off early: a lower bound of their
    loss, exact on the validation rows computed so far and tangent on the rest,
    already exceeds it; the picks are those of evaluating every pair, except among
    pairs whose losses tie to rounding.) The one-Newton-step model becomes the starting
    point of the next step, so the batch accounts for its own members: a second sample
    that would repeat the first one's correction no longer looks as good as alone.

    Up to :data:`salutary.influence.NEWTON_MAX_PARAMS` parameters (25,000: 1,024
    features and 20 classes; 5 GB) each round builds and factorizes the dense Hessian
    (the chosen pairs' curvature enters by refactorizing systems up to 1,000
    parameters, by the Woodbury identity for larger ones); its cost grows with the
    square (Hessian, solves) and the cube (factorization) of the parameter count.
    Where the training rows times the logits (``n k``) are at most
    :data:`salutary.influence.KERNEL_MAX_SHARE` (half) of the parameters (above 1,000
    parameters, dense features), the same systems are solved exactly without the dense
    Hessian (:class:`salutary.influence.KernelHessian`): one factorization of an
    ``n k x n k`` matrix built from the training rows' Gram matrix, its cost growing
    with the cube of ``n k``, and solves with ``(n k)^2`` plus ``n k`` times the
    features each (raw MNIST, 300 labeled rows and 7,850 parameters: the selection
    takes 1.8 times less CPU time than with the dense Hessian; BENCHMARKS.md). Beyond
    25,000 parameters, or when the Hessian cannot be allocated, the same steps are
    solved matrix-free (:class:`salutary.influence.MatrixFreeHessian`): conjugate
    gradients on Hessian-vector products computed from the training features, every
    greedy step solving for each remaining pair (warm-started from the step before),
    with the same picks and labels up to the solver's tolerance; its cost grows with
    the parameter count times the training rows, per pair and iteration. Only beyond
    :data:`salutary.influence.MATRIX_FREE_MAX_PARAMS` (1,000,000) does it fall back to
    the first-order top-b of :class:`SalutaryLabeling`, with a warning. See
    BENCHMARKS.md for measured rounds.

    Parameters
    ----------
    candidates : int, default=5
        Candidate pool size as a multiple of the budget.
    labels : int, default=2
        Labels tried per candidate (its best ones by first-order influence).
    steps : int, default=10
        Greedy steps per round at most: with a budget above it, each step adds the
        ``ceil(budget / steps)`` best pairs of distinct samples at once (cost control
        for large budgets; with ``budget <= steps`` the selection is plain greedy).
        Sub-batches (``max_growth``) share the steps, at least one each.
    abstain : bool, default=False
        Add only pairs predicted to lower the validation loss: a step stops at the
        first pair whose one-Newton-step loss is not below that of the model the
        already chosen pairs reach, so a round may add fewer than ``budget`` samples,
        or none. (Without it, the best ``budget`` pairs are added even when every one
        of them is predicted to hurt.) The first-order fallback never abstains: its
        best label's predicted gain is never negative.
    uncertain : float, default=0.0
        Share of the shortlist taken from the pool samples the model is least sure
        about (smallest margin between its two most probable classes) instead of from
        the first-order influence ranking; the greedy steps then choose among both.
    objective : {"loss", "error"}, default="loss"
        What the greedy steps minimize on the validation set after the Newton step:
        the summed cross-entropy, or the expected 0-1 error ``sum(1 - p_true)``
        (bounded per row, so confidently wrong validation rows weigh less). The
        shortlist is ranked by cross-entropy influence either way.
    max_growth : float or None, default=0.05
        Largest share by which one sub-batch may grow the training set. A budget
        above ``max_growth`` times the training set's size is chosen in sub-batches of
        at most that share of the set as it grows, one after another, each as above
        (up to ``steps`` greedy steps) on the model refit exactly (warm-started) with
        the pairs before it, with its own first-order ranking and Hessian. One Newton
        step from the round's model predicts well while the added pairs move the
        model little; 700 pairs onto 300 labeled samples move it far, and its
        predictions then pick wrong labels that hurt. Costs a fit, influence factors,
        a first-order pass over the pool and a copy of its remaining rows per extra
        sub-batch. ``None``: one batch, whatever the budget.
    solver, tol
        As in :class:`SalutaryLabeling`, for the first-order ranking.
    """

    name = "salutary-newton"
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **SalutaryLabeling._parameter_constraints,
        "candidates": [Interval(Integral, 1, None, closed="left")],
        "labels": [Interval(Integral, 1, None, closed="left")],
        "steps": [Interval(Integral, 1, None, closed="left")],
        "abstain": ["boolean"],
        "uncertain": [Interval(Real, 0, 1, closed="both")],
        "objective": [StrOptions({"loss", "error"})],
        "max_growth": [Interval(Real, 0, None, closed="neither"), None],
    }

    def __init__(
        self,
        candidates: int = 5,
        labels: int = 2,
        steps: int = 10,
        abstain: bool = False,
        uncertain: float = 0.0,
        objective: str = "loss",
        max_growth: float | None = 0.05,
        solver: str = "auto",
        tol: float = 1e-10,
    ) -> None:
        super().__init__(solver=solver, tol=tol)
        self.candidates = candidates
        self.labels = labels
        self.steps = steps
        self.abstain = abstain
        self.uncertain = uncertain
        self.objective = objective
        self.max_growth = max_growth

    def _select(
        self, model, X_train, y_train, pool, budget, *, X_val, y_val, sample_weight, trusted, rng
    ):
        return self._select_and_factors(
            model, X_train, y_train, pool, budget, X_val=X_val, y_val=y_val,
            sample_weight=sample_weight, rng=rng,
        )[0]  # fmt: skip

    def _select_and_factors(
        self, model, X_train, y_train, pool: Pool, budget, *, X_val, y_val, sample_weight, rng
    ) -> tuple[Selection, InfluenceFactors]:
        """The selection and the first-order influence factors of the round's model."""
        budget = min(int(budget), pool.n_rows)
        growth = self.max_growth
        if growth is None or budget <= _sub_batch(float(growth), len(y_train)):
            sel, factors = self._newton_select(
                model, X_train, y_train, pool, budget, X_val=X_val, y_val=y_val,
                sample_weight=sample_weight, rng=rng,
            )  # fmt: skip
        else:
            sel, factors = self._batched_select(
                model, X_train, y_train, pool, budget, float(growth),
                X_val=X_val, y_val=y_val, sample_weight=sample_weight, rng=rng,
            )  # fmt: skip
        # Each pick's evidence: the first-order margin of its label, with the round's factors.
        sel.margins = pick_margins(factors, pool, sel.indices, sel.labels)
        return sel, factors

    def _batched_select(
        self, model, X_train, y_train, pool: Pool, budget, growth, *, X_val, y_val,
        sample_weight, rng,
    ) -> tuple[Selection, InfluenceFactors]:  # fmt: skip
        """``budget`` picks in sub-batches of at most ``growth`` times the training set,
        refitting a copy of the model in between."""
        left = np.arange(pool.n_rows)  # pool rows not yet chosen, in their order
        picks: list[np.ndarray] = []
        labels: list[np.ndarray] = []
        scores: list[np.ndarray] = []
        m = model
        X_t, y_t = X_train, np.asarray(y_train)
        w_t = None if sample_weight is None else np.asarray(sample_weight, float)
        # The sub-batch sizes follow from the sizes of the growing training set; the
        # round's greedy steps are shared among them (at least one each), so a round
        # costs about as many validation-loss evaluations as one batch would.
        sizes: list[int] = []
        total = 0
        while total < budget:
            sizes.append(min(budget - total, _sub_batch(growth, len(y_t) + total)))
            total += sizes[-1]
        shares = np.array_split(np.arange(self.steps), len(sizes))
        first_factors: InfluenceFactors | None = None
        for b, (size, share) in enumerate(zip(sizes, shares, strict=True)):
            if b > 0:
                if m is model:
                    m = copy.deepcopy(model)  # the caller's model stays as it was
                m.fit(X_t, y_t) if w_t is None else m.fit(X_t, y_t, sample_weight=w_t)
            # The remaining rows are copied (not for the first sub-batch): about the cost
            # of the first-order pass over the pool that each sub-batch makes anyway.
            sub = pool if b == 0 else pool.without(np.concatenate(picks))
            sel, factors = self._newton_select(
                m, X_t, y_t, sub, size, X_val=X_val, y_val=y_val,
                sample_weight=w_t, rng=rng, steps=max(len(share), 1),
            )  # fmt: skip
            if first_factors is None:
                first_factors = factors  # the round's model: what the hybrid's margin uses
            if len(sel.indices) == 0:
                break  # abstaining: nothing more is predicted to help this round
            assert sel.labels is not None  # salutary labels for every pick
            rows = left[sel.indices]
            picks.append(rows)
            labels.append(np.asarray(sel.labels))
            scores.append(np.asarray(sel.scores, dtype=np.float64))
            X_t = vstack([X_t, pool.take(rows)])
            y_t = np.concatenate([y_t, np.asarray(sel.labels).astype(y_t.dtype, copy=False)])
            if w_t is not None:
                w_t = np.concatenate([w_t, np.ones(len(rows))])
            left = np.delete(left, sel.indices)
            if len(rows) < size:
                break  # abstaining stopped within the sub-batch
        assert first_factors is not None  # at least one sub-batch ran
        if not picks:
            empty = Selection(np.zeros(0, np.intp), np.zeros(0), np.asarray(y_t[:0]))
            return empty, first_factors
        sel = Selection(
            indices=np.concatenate(picks),
            scores=np.concatenate(scores),
            labels=np.concatenate(labels),
        )
        return sel, first_factors

    def _newton_select(
        self, model, X_train, y_train, pool: Pool, budget, *, X_val, y_val, sample_weight,
        rng, steps: int | None = None,
    ) -> tuple[Selection, InfluenceFactors]:  # fmt: skip
        """The selection and the first-order influence factors it ranked the pool with
        (in at most ``steps`` greedy steps, default ``self.steps``)."""
        _, theta, _, _ = model_parameters(model)
        n_params = theta.size
        budget = min(int(budget), pool.n_rows)
        system: GrowingHessian | MatrixFreeHessian | None = None
        too_large = n_params > MATRIX_FREE_MAX_PARAMS
        if not too_large and n_params > NEWTON_MAX_PARAMS:
            system = matrix_free_system(model, X_train, sample_weight)
        elif not too_large and factorized_once(n_params):
            try:
                system = model_system(model, X_train, sample_weight)
            except MemoryError:
                # The dense Hessian does not fit in this machine's memory: the same
                # systems, solved matrix-free.
                system = matrix_free_system(model, X_train, sample_weight)
        if isinstance(system, GrowingHessian) and self.solver != "cg":
            # The round factorizes the training Hessian once for the greedy steps: the
            # first-order factors are one solve with it instead of a CG or a second
            # factorization (below, small systems are refactorized per step anyway).
            factors = InfluenceFactors(solver=self.solver, tol=self.tol).fit(
                model, X_train, X_val, y_val, sample_weight=sample_weight,
                hessian_solve=system.solver(),
            )  # fmt: skip
        else:
            factors = self.influence_factors(model, X_train, X_val, y_val, sample_weight)
        classes = factors.classes_
        if too_large:
            warnings.warn(
                f"{self.name}: {n_params} parameters exceed the limit of "
                f"{MATRIX_FREE_MAX_PARAMS} of the matrix-free second-order path; "
                "using first-order top-b",
                RuntimeWarning,
                stacklevel=2,
            )
            return self._first_order(factors, pool, budget, rng), factors
        # Candidates: a multiple of the budget, at most 500 beyond it (large budgets).
        n_cand = min(pool.n_rows, budget + min((self.candidates - 1) * budget, 500))
        n_unc = min(round(float(self.uncertain) * n_cand), n_cand)
        # Part of the shortlist from the samples the model is least sure about
        # (smallest margin between its two most probable classes): they rank first.
        unsure = pool.top_k(MarginGap(model), n_unc, rng).indices if n_unc > 0 else None
        cand = pool.top_k(BestLabels(factors), n_cand, rng, first=unsure).indices
        Xc = densify(pool.take(cand))  # a shortlist: dense even for a sparse pool
        # Labels to try per candidate: the best by first-order influence.
        I = factors.score(Xc)  # (n_cand, K), larger = more helpful
        lab = np.argsort(-I, axis=1, kind="stable")[:, : min(self.labels, len(classes))]
        pair_row = np.repeat(np.arange(n_cand), lab.shape[1])
        pair_lab = lab.ravel()
        look = OneStepLosses(
            model, X_train, y_train, sample_weight, X_val, y_val, Xc, pair_row, pair_lab,
            expected_error=self.objective == "error", system=system,
        )  # fmt: skip
        chosen, gains = self._greedy(look, pair_row, budget, self.steps if steps is None else steps)
        sel = Selection(
            indices=cand[pair_row[chosen]],
            scores=np.asarray(gains, dtype=np.float64),
            labels=classes[pair_lab[chosen]],
        )
        return sel, factors

    def _greedy(
        self, look: OneStepLosses, pair_row: np.ndarray, budget: int, steps: int
    ) -> tuple[np.ndarray, list[float]]:
        """Pairs chosen greedily (indices into ``pair_row``) and the decrease of the
        validation objective each is predicted to bring: at most ``steps`` steps of
        ``ceil(budget / steps)`` pairs of distinct samples each (with one per step,
        plain greedy)."""
        chosen: list[int] = []
        gains: list[float] = []
        alive = np.ones(len(pair_row), bool)
        per_step = -(-budget // steps)  # ceil: at most `steps` steps
        while len(chosen) < budget:
            count = min(per_step, budget - len(chosen))
            losses, step, base = look.evaluate(alive, count, self.abstain)
            # Abstaining, a pair must beat the model the chosen pairs reach without it
            # (the base step; ~ the current model at the first step).
            bar = look.base_loss(base) if self.abstain else np.inf
            picked = step_picks(losses, pair_row, count, bar)
            if not picked:
                break  # abstain: no remaining pair is predicted to help
            gains.extend(look.loss - losses[picked])
            look.accept(picked, losses, step, base)
            for j in picked:
                chosen.append(j)
                alive[pair_row == pair_row[j]] = False  # one label per sample
        return np.asarray(chosen, dtype=np.intp), gains


class SalutaryHybrid(NewtonGreedySalutary):
    """Salutary labeling that spends a few true labels where its own are least certain.

    Each round picks ``budget`` samples with their salutary labels exactly as
    :class:`NewtonGreedySalutary` does (same picks and labels for the same ``rng``),
    then sends ``round(true_fraction * n_picked)`` of them (Python's ``round``: halves
    go to the even number) to the oracle and keeps its own label on the rest.

    The oracle gets the picks whose salutary label is least certain: those with the
    smallest margin between the first-order influence (:meth:`InfluenceFactors.score`,
    with the factors the round's ranking used) of their best and second-best label.
    A small margin means the influence function barely prefers one label over another,
    so the salutary label there is closest to a coin toss and a true label changes the
    most; a large margin means one label clearly helps the validation loss, true or
    not. The margin is first-order even though the picks' labels come from the
    second-order greedy step: it measures how sharply the validation set prefers a
    label, not which one the batch chose. Ties in the margin are broken by ``rng``
    (drawn only when some but not all picks are asked, so ``true_fraction`` 0 and 1
    consume the same random numbers as :class:`NewtonGreedySalutary`).

    Parameters
    ----------
    true_fraction : float, default=0.3
        Share of each round's picks labeled by the oracle, in [0, 1]. 0 is
        :class:`NewtonGreedySalutary` (the oracle is never called); 1 is an oracle
        strategy with its picks.
    candidates, labels, steps, max_growth, solver, tol
        As in :class:`NewtonGreedySalutary` (with sub-batches, the margin is measured
        with the factors of the round's model, as the first sub-batch's ranking).
    """

    requires_oracle = True  # its picks may get true labels: the loop must have an oracle
    partial_oracle = True
    name = "salutary-hybrid"
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **NewtonGreedySalutary._parameter_constraints,
        "true_fraction": [Interval(Real, 0, 1, closed="both")],
    }

    def __init__(
        self,
        true_fraction: float = 0.3,
        candidates: int = 5,
        labels: int = 2,
        steps: int = 10,
        max_growth: float | None = 0.05,
        solver: str = "auto",
        tol: float = 1e-10,
    ) -> None:
        super().__init__(
            candidates=candidates, labels=labels, steps=steps, max_growth=max_growth,
            solver=solver, tol=tol,
        )  # fmt: skip
        self.true_fraction = true_fraction

    def n_true(self, n_picked: int) -> int:
        """How many of ``n_picked`` picks go to the oracle."""
        return min(max(round(float(self.true_fraction) * n_picked), 0), n_picked)

    def _select(
        self, model, X_train, y_train, pool, budget, *, X_val, y_val, sample_weight, trusted, rng
    ):
        n_ask = self.n_true(min(int(budget), pool.n_rows))
        sel, factors = self._select_and_factors(
            model, X_train, y_train, pool, budget, X_val=X_val, y_val=y_val,
            sample_weight=sample_weight, rng=rng,
        )  # fmt: skip
        n = len(sel.indices)
        ask = np.zeros(n, dtype=bool)
        if n_ask >= n:
            ask[:] = True
        elif n_ask > 0:
            margin = label_margin(factors.score(pool.take(sel.indices)))
            ask[top_k(-margin, n_ask, rng)] = True
        return Selection(sel.indices, sel.scores, sel.labels, ask=ask, margins=sel.margins)
