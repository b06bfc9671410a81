"""Selection strategies behind one interface.

A strategy sees the fitted model, the current training set, the remaining pool's
*features* and the labeled validation set, and returns which pool rows to add. Oracle
strategies (``requires_oracle = True``) return indices only: the labeling loop asks the
oracle for their labels. Oracle-free strategies also return the labels they assign. A
strategy may also mix the two: it returns labels for all its picks and says, in
``Selection.ask``, which of them go to the oracle instead. No strategy is ever handed
the pool's labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy.special import entr
from sklearn.base import BaseEstimator

from salutary.influence import InfluenceFactors

__all__ = [
    "ISAL",
    "STRATEGIES",
    "BadgeSampling",
    "CoreSetSampling",
    "CrossFitSalutary",
    "NewtonGreedySalutary",
    "EntropySampling",
    "LeastConfidenceSampling",
    "MarginSampling",
    "PredictedInfluence",
    "RandomSampling",
    "SalutaryHybrid",
    "SalutaryLabeling",
    "SalutaryOracle",
    "Selection",
    "SelfTraining",
    "Strategy",
    "ValidationTeacher",
    "get_strategy",
    "label_margin",
    "parse_strategy",
    "strategy_class",
    "top_k",
]


@dataclass
class Selection:
    """What a strategy picked in one round.

    Attributes
    ----------
    indices : ndarray of int
        Positions in the pool array the strategy was given, best first.
    scores : ndarray of float
        The strategy's score of each picked sample (higher is picked first).
    labels : ndarray or None
        Labels assigned by the strategy; ``None`` for oracle strategies that leave all
        labels to the oracle.
    ask : ndarray of bool or None
        Which picks go to the oracle (their entry in ``labels`` is then ignored); the
        others keep ``labels``. Only strategies with ``requires_oracle`` may ask. ``None``:
        as ``requires_oracle`` says (all picks asked, or none).
    """

    indices: np.ndarray
    scores: np.ndarray
    labels: np.ndarray | None = None
    ask: np.ndarray | None = None


def top_k(scores: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of the ``k`` largest scores, best first; ties broken at random by ``rng``.

    Parameters
    ----------
    scores : array of shape (n,)
    k : int
        How many; at most ``n`` are returned.
    rng : numpy.random.Generator
        Orders equal scores.

    Returns
    -------
    ndarray of int
        ``min(k, n)`` indices into ``scores``.
    """
    scores = np.asarray(scores, dtype=np.float64)
    k = min(int(k), scores.shape[0])
    tiebreak = rng.permutation(scores.shape[0])
    if k == 0:
        return np.zeros(0, dtype=np.intp)
    # Only rows scoring at least the k-th largest can be picked (ties at that value
    # included), so sort those alone: O(n) instead of a full O(n log n) sort.
    neg = -scores
    kth = np.partition(neg, k - 1)[k - 1]  # NaN sorts last, as in the lexsort below
    cand = np.arange(neg.shape[0]) if np.isnan(kth) else np.flatnonzero(neg <= kth)
    # lexsort sorts by the last key first: score descending, then the random rank.
    order = cand[np.lexsort((tiebreak[cand], neg[cand]))]
    return order[:k]


class Strategy(BaseEstimator):
    """Base class: choose ``budget`` pool samples given the current model.

    Subclasses implement :meth:`select`. Class attributes say what a strategy needs:
    ``requires_oracle`` (the loop must supply true labels for its picks, or for those
    its ``Selection.ask`` marks) and ``uses_validation`` (it reads the labeled
    validation set).
    """

    requires_oracle: ClassVar[bool] = True
    uses_validation: ClassVar[bool] = False
    name: ClassVar[str] = ""

    def select(
        self,
        model: object,
        X_train: np.ndarray,
        y_train: np.ndarray,
        X_pool: np.ndarray,
        budget: int,
        *,
        X_val: np.ndarray | None = None,
        y_val: np.ndarray | None = None,
        sample_weight: np.ndarray | None = None,
        trusted: np.ndarray | None = None,
        rng: np.random.Generator,
    ) -> Selection:
        """Pick ``budget`` rows of ``X_pool``.

        Parameters
        ----------
        model : fitted classifier with ``predict_proba`` and ``classes_``
            Fitted on ``(X_train, y_train, sample_weight)``.
        X_train, y_train : ndarray
            The current training set.
        X_pool : ndarray of shape (n_pool, n_features)
            Features of the samples still unlabeled.
        budget : int
            How many to pick (fewer only if the pool is smaller).
        X_val, y_val : ndarray or None
            Labeled validation set (for strategies with ``uses_validation``).
        sample_weight : ndarray or None
            Training weights the model was fit with.
        trusted : ndarray of bool or None
            Which training rows carry ground-truth labels (the initial set and oracle
            answers) as opposed to labels assigned by an oracle-free strategy.
        rng : numpy.random.Generator
            Source of every random choice (tie-breaks included).

        Returns
        -------
        Selection
        """
        raise NotImplementedError


class RandomSampling(Strategy):
    """Uniformly random pool samples (oracle labels)."""

    name = "random"

    def select(self, model, X_train, y_train, X_pool, budget, *, rng, **_):
        idx = rng.choice(X_pool.shape[0], size=min(budget, X_pool.shape[0]), replace=False)
        return Selection(indices=idx, scores=np.zeros(len(idx)))


class _UncertaintySampling(Strategy):
    def uncertainty(self, proba: np.ndarray) -> np.ndarray:
        """Per-sample uncertainty from predicted probabilities ``(n, n_classes)``; larger
        is picked first."""
        raise NotImplementedError

    def select(self, model, X_train, y_train, X_pool, budget, *, rng, **_):
        u = self.uncertainty(model.predict_proba(X_pool))
        idx = top_k(u, budget, rng)
        return Selection(indices=idx, scores=u[idx])


class EntropySampling(_UncertaintySampling):
    """Highest predictive entropy first (oracle labels)."""

    name = "entropy"

    def uncertainty(self, proba):
        return entr(proba).sum(axis=1)


class MarginSampling(_UncertaintySampling):
    """Smallest gap between the two most probable classes first (oracle labels)."""

    name = "margin"

    def uncertainty(self, proba):
        top2 = np.partition(proba, -2, axis=1)[:, -2:]
        return -(top2[:, 1] - top2[:, 0])


class LeastConfidenceSampling(_UncertaintySampling):
    """Lowest top-class probability first (oracle labels)."""

    name = "least-confidence"

    def uncertainty(self, proba):
        return 1.0 - proba.max(axis=1)


class SalutaryLabeling(Strategy):
    """Salutary labeling (Xiao & Liu, 2024): no oracle.

    Every pool sample gets the label whose addition is predicted, by the influence
    function, to lower the validation loss most; the ``budget`` samples with the largest
    predicted decrease are added with those labels.

    Parameters
    ----------
    solver : {"auto", "direct", "cg"}, default="auto"
        Linear solver for the influence factors (see :class:`InfluenceFactors`).
    tol : float, default=1e-10
        Conjugate-gradient tolerance.
    """

    requires_oracle = False
    uses_validation = True
    name = "salutary"

    def __init__(self, solver: str = "auto", tol: float = 1e-10) -> None:
        self.solver = solver
        self.tol = tol

    def _factors(self, model, X_train, X_val, y_val, sample_weight) -> InfluenceFactors:
        if X_val is None or y_val is None:
            raise ValueError(f"strategy {self.name!r} needs a labeled validation set")
        return InfluenceFactors(solver=self.solver, tol=self.tol).fit(
            model, X_train, X_val, y_val, sample_weight=sample_weight
        )

    def _scores(self, model, X_train, X_pool, X_val, y_val, sample_weight):
        factors = self._factors(model, X_train, X_val, y_val, sample_weight)
        label_idx, gain = factors.best_labels(X_pool)
        return factors.classes_[label_idx], gain

    def select(
        self, model, X_train, y_train, X_pool, budget, *, X_val=None, y_val=None,
        sample_weight=None, rng, **_,
    ):  # fmt: skip
        labels, gain = self._scores(model, X_train, X_pool, X_val, y_val, sample_weight)
        idx = top_k(gain, budget, rng)
        return Selection(indices=idx, scores=gain[idx], labels=labels[idx])


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
    the lowest. The one-Newton-step model becomes the starting point of the next
    step, so the batch accounts for its own members: a second sample that would repeat
    the first one's correction no longer looks as good as alone.

    Each round builds and factorizes the dense Hessian (the chosen pairs' curvature
    enters by refactorizing small systems, by the Woodbury identity for larger ones),
    so this runs when the model has at most :data:`NEWTON_MAX_PARAMS` parameters
    (enough for 784 pixels and 10 classes); beyond that it falls back to the
    first-order top-b of :class:`SalutaryLabeling` (with a warning).

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

    def select(
        self, model, X_train, y_train, X_pool, budget, *, X_val=None, y_val=None,
        sample_weight=None, rng, **_,
    ):  # fmt: skip
        return self._select_and_factors(
            model, X_train, y_train, X_pool, budget, X_val=X_val, y_val=y_val,
            sample_weight=sample_weight, rng=rng,
        )[0]  # fmt: skip

    def _select_and_factors(
        self, model, X_train, y_train, X_pool, budget, *, X_val, y_val, sample_weight, rng
    ) -> tuple[Selection, InfluenceFactors]:
        """The selection and the first-order influence factors of the round's model."""
        growth = self.max_growth
        if growth is not None:
            growth = float(growth)
            if not growth > 0:  # also NaN
                raise ValueError(f"max_growth must be positive or None, got {self.max_growth!r}")
        budget = min(int(budget), X_pool.shape[0])
        if growth is None or budget <= _sub_batch(growth, len(y_train)):
            return self._newton_select(
                model, X_train, y_train, X_pool, budget, X_val=X_val, y_val=y_val,
                sample_weight=sample_weight, rng=rng,
            )  # fmt: skip
        return self._batched_select(
            model, X_train, y_train, X_pool, budget, growth,
            X_val=X_val, y_val=y_val, sample_weight=sample_weight, rng=rng,
        )  # fmt: skip

    def _batched_select(
        self, model, X_train, y_train, X_pool, budget, growth, *, X_val, y_val,
        sample_weight, rng,
    ) -> tuple[Selection, InfluenceFactors]:  # fmt: skip
        """``budget`` picks in sub-batches of at most ``growth`` times the training set,
        refitting a copy of the model in between."""
        import copy

        left = np.arange(X_pool.shape[0])  # pool rows not yet chosen, in their order
        picks, labels, scores = [], [], []
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
        shares = np.array_split(np.arange(max(int(self.steps), 1)), len(sizes))
        for b, (size, share) in enumerate(zip(sizes, shares, strict=True)):
            if b > 0:
                if m is model:
                    m = copy.deepcopy(model)  # the caller's model stays as it was
                m.fit(X_t, y_t) if w_t is None else m.fit(X_t, y_t, sample_weight=w_t)
            # The remaining rows are copied (not for the first sub-batch): about the cost
            # of the first-order pass over the pool that each sub-batch makes anyway.
            pool = X_pool if b == 0 else X_pool[left]
            sel, factors = self._newton_select(
                m, X_t, y_t, pool, size, X_val=X_val, y_val=y_val,
                sample_weight=w_t, rng=rng, steps=max(len(share), 1),
            )  # fmt: skip
            if b == 0:
                first_factors = factors  # the round's model: what the hybrid's margin uses
            if len(sel.indices) == 0:
                break  # abstaining: nothing more is predicted to help this round
            rows = left[sel.indices]
            picks.append(rows)
            labels.append(np.asarray(sel.labels))
            scores.append(np.asarray(sel.scores, dtype=np.float64))
            X_t = np.vstack([X_t, X_pool[rows]])
            y_t = np.concatenate([y_t, np.asarray(sel.labels).astype(y_t.dtype, copy=False)])
            if w_t is not None:
                w_t = np.concatenate([w_t, np.ones(len(rows))])
            left = np.delete(left, sel.indices)
            if len(rows) < size:
                break  # abstaining stopped within the sub-batch
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
        self, model, X_train, y_train, X_pool, budget, *, X_val, y_val, sample_weight, rng,
        steps: int | None = None,
    ) -> tuple[Selection, InfluenceFactors]:  # fmt: skip
        """The selection and the first-order influence factors it ranked the pool with
        (in at most ``steps`` greedy steps, default ``self.steps``)."""
        import warnings

        from salutary._linear import LogisticObjective, linear_scores, probabilities
        from salutary.influence import model_parameters

        if self.objective not in ("loss", "error"):  # before the work, whatever the model
            raise ValueError(f"objective must be 'loss' or 'error', got {self.objective!r}")
        factors = self._factors(model, X_train, X_val, y_val, sample_weight)
        classes, theta, l2, fit_intercept = model_parameters(model)
        K = len(classes)
        k = 1 if K == 2 else K
        d1 = theta.shape[1]
        budget = min(int(budget), X_pool.shape[0])
        if k * d1 > NEWTON_MAX_PARAMS:
            warnings.warn(
                f"{self.name}: {k * d1} parameters exceed {NEWTON_MAX_PARAMS}; "
                "using first-order top-b",
                RuntimeWarning,
                stacklevel=2,
            )
            sel = super().select(
                model, X_train, y_train, X_pool, budget, X_val=X_val, y_val=y_val,
                sample_weight=sample_weight, rng=rng,
            )  # fmt: skip
            return sel, factors
        # Candidates: a multiple of the budget, at most 500 beyond it (large budgets).
        n_cand = min(X_pool.shape[0], budget + min((int(self.candidates) - 1) * budget, 500))
        ranking = factors.best_labels(X_pool)[1]
        n_unc = min(round(float(self.uncertain) * n_cand), n_cand)
        if n_unc > 0:
            # Part of the shortlist from the samples the model is least sure about
            # (smallest margin between its two most probable classes).
            proba = np.sort(model.predict_proba(X_pool), axis=1)
            unsure = top_k(proba[:, -2] - proba[:, -1], n_unc, rng)
            ranking = ranking.copy()
            ranking[unsure] = np.inf
        cand = top_k(ranking, n_cand, rng)
        # Labels to try per candidate: the best by first-order influence.
        I = factors.score(X_pool[cand])  # (n_cand, K), larger = more helpful
        n_lab = min(max(int(self.labels), 1), K)
        lab = np.argsort(-I, axis=1, kind="stable")[:, :n_lab]
        pair_row = np.repeat(np.arange(n_cand), n_lab)
        pair_lab = lab.ravel()

        y_index = np.searchsorted(classes, np.asarray(y_train))
        w_train = np.ones(len(y_index)) if sample_weight is None else np.asarray(sample_weight)
        y_val_index = np.searchsorted(classes, np.asarray(y_val))
        val = LogisticObjective(X_val, y_val_index, K, 0.0, fit_intercept)
        Xc = X_pool[cand]
        Xc_a = np.hstack([Xc, np.ones((n_cand, 1))]) if fit_intercept else Xc
        Yc = np.zeros((len(pair_row), k))
        if k == 1:
            Yc[:, 0] = pair_lab == 1
        else:
            Yc[np.arange(len(pair_row)), pair_lab] = 1.0

        chosen: list[int] = []
        alive = np.ones(len(pair_row), bool)
        gains = []
        error = self.objective == "error"

        def val_objective(t: np.ndarray) -> float:
            if not error:
                return val.loss(t)
            Zt = val.logits(t).T[:, :, None]  # class-major (k, n_val, 1)
            return float(_cross_entropy_sum(np.ascontiguousarray(Zt), y_val_index, True)[0])

        loss_now = val_objective(theta)
        steps = self.steps if steps is None else steps
        per_step = -(-budget // max(int(steps), 1))  # ceil: at most `steps` steps
        # The training set's Hessian is built once per round, at the fitted model; the
        # chosen pairs' own curvature (at the same point) is added as they join. Building
        # it at every step would cost n d^2 k^2 each time for little change.
        train = LogisticObjective(X_train, y_index, K, l2, fit_intercept, w_train)
        P0 = probabilities(train.logits(theta))
        H = train.hessian(P0)
        if train.null is not None:
            H += np.outer(train.null, train.null)
        system = _GrowingHessian(H)
        del H
        Pc0 = probabilities(linear_scores(Xc, theta, fit_intercept))
        while len(chosen) < budget:
            rows = np.asarray(chosen, dtype=np.intp)
            sel_rows = pair_row[rows] if len(rows) else np.zeros(0, np.intp)
            # Gradient of the training set plus the chosen pairs at the current model.
            _, G, _ = train.loss_grad(theta)
            if len(rows):
                Rs = probabilities(linear_scores(Xc[sel_rows], theta, fit_intercept)) - Yc[rows]
                G = G + Rs.T @ Xc_a[sel_rows]
            solve = system.solver()
            # Gradient of each candidate pair's cross-entropy at theta: (p - y) (x) x_a.
            Pc = probabilities(linear_scores(Xc, theta, fit_intercept))[pair_row]
            R = Pc - Yc  # (pairs, k)
            Gp = (R[:, :, None] * Xc_a[pair_row][:, None, :]).reshape(len(pair_row), -1)
            steps = -solve((Gp + G.ravel()).T).T  # (pairs, k d1)
            base = -solve(G.ravel())  # the step with no pair added
            # Exact validation loss at every one-Newton-step model, in chunks of pairs.
            # Class-major logits (k, n_val, pairs): the reductions over classes then run
            # over k contiguous slices instead of k-long rows (NumPy's per-row cost).
            Zv = (val.Xa @ theta.T).T  # (k, n_val)
            steps_c = steps.reshape(len(pair_row), k, d1)
            losses = np.full(len(pair_row), np.inf)
            n_val = val.Xa.shape[0]
            chunk = max(1, 8_000_000 // max(n_val * k, 1))  # 64 MB of logits at most
            live_all = np.flatnonzero(alive)
            for start in range(0, len(live_all), chunk):
                live = live_all[start : start + chunk]
                Zp = np.empty((k, n_val, len(live)))
                for c in range(k):
                    np.matmul(val.Xa, steps_c[live, c, :].T, out=Zp[c])
                    Zp[c] += Zv[c][:, None]
                losses[live] = _cross_entropy_sum(Zp, y_val_index, error)
            # The best pairs of distinct samples; with one per step (budget <= steps),
            # plain greedy. Abstaining, a pair must beat the model the chosen pairs
            # reach without it (the base step; ~ the current model at the first step).
            bar = val_objective(theta + base.reshape(k, d1)) if self.abstain else np.inf
            picked: list[int] = []
            for j in np.argsort(losses, kind="stable"):
                if len(picked) == min(per_step, budget - len(chosen)) or not alive[j]:
                    break
                if not losses[j] < bar:
                    break
                if all(pair_row[j] != pair_row[i] for i in picked):
                    picked.append(int(j))
            if not picked:
                break  # abstain: no remaining pair is predicted to help
            gains.extend(loss_now - losses[picked])
            # Steps are linear in the added gradients: the joint Newton step is the base
            # step plus each pair's own contribution.
            joint = base + np.sum(steps[picked] - base, axis=0)
            theta = theta + joint.reshape(k, d1)
            loss_now = val_objective(theta) if len(picked) > 1 else losses[picked[0]]
            for j in picked:
                chosen.append(j)
                alive[pair_row == pair_row[j]] = False  # one label per sample
                system.add(Pc0[pair_row[j]], Xc_a[pair_row[j]])
        chosen_arr = np.asarray(chosen, dtype=np.intp)
        sel = Selection(
            indices=cand[pair_row[chosen_arr]],
            scores=np.asarray(gains, dtype=np.float64),
            labels=classes[pair_lab[chosen_arr]],
        )
        return sel, factors


def _sub_batch(growth: float, n_train: int) -> int:
    """Picks one sub-batch may add to a training set of ``n_train`` rows (at least 1)."""
    return max(1, int(growth * n_train))


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
    name = "salutary-hybrid"

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
        frac = float(self.true_fraction)
        if not 0.0 <= frac <= 1.0:
            raise ValueError(f"true_fraction must be in [0, 1], got {self.true_fraction!r}")
        return min(max(round(frac * n_picked), 0), n_picked)

    def select(
        self, model, X_train, y_train, X_pool, budget, *, X_val=None, y_val=None,
        sample_weight=None, rng, **_,
    ):  # fmt: skip
        n_ask = self.n_true(min(int(budget), X_pool.shape[0]))  # fail before the work
        sel, factors = self._select_and_factors(
            model, X_train, y_train, X_pool, budget, X_val=X_val, y_val=y_val,
            sample_weight=sample_weight, rng=rng,
        )  # fmt: skip
        n = len(sel.indices)
        ask = np.zeros(n, dtype=bool)
        if n_ask >= n:
            ask[:] = True
        elif n_ask > 0:
            ask[top_k(-label_margin(factors.score(X_pool[sel.indices])), n_ask, rng)] = True
        return Selection(indices=sel.indices, scores=sel.scores, labels=sel.labels, ask=ask)


#: Largest model (``k * (d + 1)`` parameters) for which :class:`NewtonGreedySalutary`
#: builds the dense Hessian (800 MB in float64); beyond it, first-order top-b.
NEWTON_MAX_PARAMS = 10_000

#: Up to this many parameters the Hessian is refactorized after each greedy step;
#: beyond it, it is factorized once per round and the chosen pairs enter by Woodbury.
REFACTOR_MAX_PARAMS = 4000


class _GrowingHessian:
    """The training Hessian plus the curvature of the pairs chosen so far.

    Small systems (``REFACTOR_MAX_PARAMS``) add each pair's Hessian to the dense
    matrix and refactorize per step. Large ones factorize ``H`` once and add pairs as
    low-rank terms: a pair's Hessian ``C (x) x x^T`` with ``C = diag(p) - p p^T =
    A A^T``, ``A = diag(sqrt p) - p sqrt(p)^T``, is ``U U^T`` with ``U = A (x) x``
    (``k`` columns), and ``(H + U U^T)^{-1} B`` follows from the Woodbury identity.
    """

    def __init__(self, H: np.ndarray) -> None:
        import scipy.linalg

        self.low_rank = H.shape[0] > REFACTOR_MAX_PARAMS
        if self.low_rank:
            self.chol = scipy.linalg.cho_factor(H, lower=True, overwrite_a=True)
            self.U: list[np.ndarray] = []  # (k d1, k) per chosen pair
            self.Y: list[np.ndarray] = []  # H^{-1} U, same shapes
        else:
            self.H = H

    def add(self, p: np.ndarray, x: np.ndarray) -> None:
        """Add the Hessian of one pair's cross-entropy (probabilities ``p``, features ``x``)."""
        import scipy.linalg

        if not self.low_rank:
            self.H += _pair_hessian(p, x)
            return
        if p.shape[0] == 1:
            A = np.sqrt(p * (1.0 - p))[:, None]
        else:
            r = np.sqrt(p)
            A = np.diag(r) - np.outer(p, r)
        U = np.kron(A, x[:, None])
        self.U.append(U)
        self.Y.append(scipy.linalg.cho_solve(self.chol, U))

    def solver(self):
        """A function ``B -> (H + added)^{-1} B`` for the current system."""
        import scipy.linalg

        if not self.low_rank:
            chol = scipy.linalg.cho_factor(self.H, lower=True)
            return lambda B: scipy.linalg.cho_solve(chol, B)
        chol0 = self.chol
        if not self.U:
            return lambda B: scipy.linalg.cho_solve(chol0, B)
        U, Y = np.hstack(self.U), np.hstack(self.Y)
        small = scipy.linalg.cho_factor(np.eye(U.shape[1]) + U.T @ Y, lower=True)

        def solve(B: np.ndarray) -> np.ndarray:
            X = scipy.linalg.cho_solve(chol0, B)
            return X - Y @ scipy.linalg.cho_solve(small, U.T @ X)

        return solve


def label_margin(influence: np.ndarray) -> np.ndarray:
    """Best minus second-best entry per row of an influence matrix (n, n_classes).

    How much more the most helpful label is predicted to help than the runner-up: the
    certainty of a salutary label (0 = two labels equally good).
    """
    top2 = np.partition(np.asarray(influence, dtype=np.float64), -2, axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


def _pair_hessian(p: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Hessian of one sample's cross-entropy: ``(diag(p) - p p^T) (x) x x^T``.

    ``p`` holds the probabilities of the ``k`` logits (one sigmoid logit: ``p (1 - p)``).
    """
    C = np.diag(p * (1.0 - p)) if p.shape[0] == 1 else np.diag(p) - np.outer(p, p)
    return np.kron(C, np.outer(x, x))


def _cross_entropy_sum(Z: np.ndarray, y: np.ndarray, expected_error: bool = False) -> np.ndarray:
    """Summed cross-entropy per model: ``Z`` is (k, n, models) logits, class-major;
    ``y`` (n,) class indices (in {0, 1} for a single sigmoid logit). ``Z`` is overwritten.

    With ``expected_error`` the sum of ``1 - p_y`` (the expected 0-1 error) instead.
    """
    from scipy.special import log_expit

    if Z.shape[0] == 1:
        z = Z[0]
        z[y == 1] *= -1.0  # CE = -log sigmoid(z) for y = 1, -log sigmoid(-z) for y = 0
        log_p = log_expit(-z)  # log-probability of the true class
        if expected_error:
            return np.sum(-np.expm1(log_p), axis=0)
        return -np.sum(log_p, axis=0)
    true = Z[y, np.arange(Z.shape[1]), :]
    if not expected_error:
        true = true.sum(axis=0)
    m = Z.max(axis=0)
    Z -= m
    np.exp(Z, out=Z)
    lse = Z.sum(axis=0)
    np.log(lse, out=lse)
    lse += m
    if expected_error:
        lse -= true  # per-row cross-entropy
        return np.sum(-np.expm1(-lse), axis=0)
    return lse.sum(axis=0) - true


class SalutaryOracle(SalutaryLabeling):
    """Salutary selection with ground-truth labels: the paper's ablation.

    Picks the same samples as :class:`SalutaryLabeling` (largest best-case influence)
    but discards the salutary labels; the loop asks the oracle instead.
    """

    requires_oracle = True
    name = "salutary-oracle"

    def select(self, *args, **kwargs):
        sel = super().select(*args, **kwargs)
        return Selection(indices=sel.indices, scores=sel.scores, labels=None)


class SelfTraining(Strategy):
    """Self-training: the most confident pool samples, with the model's predicted labels.

    No oracle. The classic oracle-free baseline: it adds what the model already believes,
    which reinforces its mistakes as readily as its successes.
    """

    requires_oracle = False
    name = "self-training"

    def select(self, model, X_train, y_train, X_pool, budget, *, rng, **_):
        proba = model.predict_proba(X_pool)
        conf = proba.max(axis=1)
        idx = top_k(conf, budget, rng)
        return Selection(indices=idx, scores=conf[idx], labels=model.classes_[proba[idx].argmax(1)])


class ValidationTeacher(Strategy):
    """Self-training with a teacher that also learns from the validation labels.

    No oracle. The control for salutary labeling: it is given the same labeled
    validation set, but uses no influence function. A copy of the model, the teacher, is
    fit on the training rows plus the validation rows not already among them (warm
    started from the model); the pool samples the teacher is most confident about
    (``pick="confident"``), or those the model itself is least sure of (``"margin"``,
    smallest gap between its two most probable classes: margin sampling with the
    teacher as the oracle), are added with the teacher's predicted labels. The model
    itself never trains on the validation rows. It asks whether salutary labeling gains
    anything over simply passing the validation labels on to the pool. Under the
    ``fair`` protocol, where the validation rows are already training rows, it labels
    with the model's own predictions (with ``"confident"``, it is :class:`SelfTraining`).

    Parameters
    ----------
    pick : {"confident", "margin"}, default="confident"
    """

    requires_oracle = False
    uses_validation = True
    name = "val-teacher"

    def __init__(self, pick: str = "confident") -> None:
        self.pick = pick

    def select(
        self, model, X_train, y_train, X_pool, budget, *, X_val=None, y_val=None,
        sample_weight=None, rng, **_,
    ):  # fmt: skip
        if self.pick not in ("confident", "margin"):
            raise ValueError(f"pick must be 'confident' or 'margin', got {self.pick!r}")
        if X_val is None or y_val is None:
            raise ValueError(f"strategy {self.name!r} needs a labeled validation set")
        y_val = np.asarray(y_val)
        # Validation rows of a class the model does not know would add a class to it.
        extra = ~_rows_in(X_val, X_train) & np.isin(y_val, model.classes_)
        teacher = model
        if extra.any():
            w = None
            if sample_weight is not None:
                w = np.concatenate([sample_weight, np.ones(int(extra.sum()))])
            teacher = _warm_clone(model).fit(
                np.vstack([X_train, X_val[extra]]),
                np.concatenate([y_train, y_val[extra]]),
                sample_weight=w,
            )
        proba = teacher.predict_proba(X_pool)
        if self.pick == "confident":
            score = proba.max(axis=1)
        else:  # the model's own uncertainty, as margin sampling measures it
            score = MarginSampling().uncertainty(model.predict_proba(X_pool))
        idx = top_k(score, budget, rng)
        labels = teacher.classes_[proba[idx].argmax(axis=1)]
        return Selection(indices=idx, scores=score[idx], labels=labels)


def _warm_clone(model):
    """An unfitted copy of ``model`` that starts its next fit from ``model``'s optimum."""
    from sklearn.base import clone

    fresh = clone(model)
    if "warm_start" in fresh.get_params() and hasattr(model, "coef_"):
        fresh.set_params(warm_start=True)
        fresh.classes_, fresh.coef_, fresh.intercept_ = (
            model.classes_, model.coef_, model.intercept_,
        )  # fmt: skip
    return fresh


def _augment(X: np.ndarray) -> np.ndarray:
    return np.hstack([X, np.ones((X.shape[0], 1), dtype=X.dtype)])


class BadgeSampling(Strategy):
    """BADGE (Ash et al., 2020): k-means++ seeding on gradient embeddings (oracle labels).

    The embedding of ``x`` is the gradient of the loss at the model's predicted label,
    ``(p - e_yhat) (x) [x, 1]``, which is large for uncertain samples and points in
    diverse directions for diverse ones. Distances between these Kronecker products are
    computed from the two factors, never materializing the ``K (D + 1)`` embeddings.
    """

    name = "badge"

    def select(self, model, X_train, y_train, X_pool, budget, *, rng, **_):
        proba = model.predict_proba(X_pool)
        R = proba.copy()
        R[np.arange(len(R)), proba.argmax(axis=1)] -= 1.0
        Xa = _augment(np.asarray(X_pool, dtype=np.float64))
        r2, x2 = np.sum(R * R, axis=1), np.sum(Xa * Xa, axis=1)
        norms = r2 * x2
        n = len(norms)
        budget = min(budget, n)
        chosen = [int(top_k(norms, 1, rng)[0])]  # first center: the largest gradient
        dist = np.full(n, np.inf)
        for _ in range(1, budget):
            j = chosen[-1]
            d = norms + norms[j] - 2.0 * (R @ R[j]) * (Xa @ Xa[j])
            dist = np.minimum(dist, np.maximum(d, 0.0))
            dist[chosen] = 0.0
            total = dist.sum()
            if total <= 0:  # every remaining point coincides with a center
                rest = np.setdiff1d(np.arange(n), chosen)
                chosen.extend(rng.choice(rest, size=budget - len(chosen), replace=False))
                break
            chosen.append(int(rng.choice(n, p=dist / total)))
        idx = np.asarray(chosen, dtype=np.intp)
        return Selection(indices=idx, scores=np.sqrt(norms[idx]))


class CoreSetSampling(Strategy):
    """CoreSet (Sener & Savarese, 2018): greedy k-center on the features (oracle labels).

    Repeatedly picks the pool sample farthest from the training set and the samples
    already picked. For a linear model the features are its last-layer embedding.
    """

    name = "coreset"

    def __init__(self, chunk_size: int = 2048) -> None:
        self.chunk_size = chunk_size

    def select(self, model, X_train, y_train, X_pool, budget, *, rng, **_):
        X_pool = np.asarray(X_pool, dtype=np.float64)
        X_train = np.asarray(X_train, dtype=np.float64)
        p2 = np.sum(X_pool**2, axis=1)
        t2 = np.sum(X_train**2, axis=1)
        dist = np.empty(len(X_pool))
        for s in range(0, len(X_pool), self.chunk_size):
            block = p2[s : s + self.chunk_size, None] + t2[None, :]
            block -= 2.0 * X_pool[s : s + self.chunk_size] @ X_train.T
            dist[s : s + self.chunk_size] = block.min(axis=1)
        dist = np.maximum(dist, 0.0)
        chosen, scores = [], []
        for _ in range(min(budget, len(X_pool))):
            j = int(top_k(dist, 1, rng)[0])
            chosen.append(j)
            scores.append(np.sqrt(dist[j]))
            d = np.maximum(p2 + p2[j] - 2.0 * (X_pool @ X_pool[j]), 0.0)
            dist = np.minimum(dist, d)
            dist[chosen] = -1.0  # never again
        return Selection(indices=np.asarray(chosen, dtype=np.intp), scores=np.asarray(scores))


class ISAL(SalutaryLabeling):
    """Influence-based selection with pseudo-labels (ISAL, Liu et al., 2021; oracle labels).

    Scores each pool sample by the influence of adding it with the model's *predicted*
    label, takes the top ``budget``, and asks the oracle for their true labels.
    """

    requires_oracle = True
    name = "isal"

    def select(
        self, model, X_train, y_train, X_pool, budget, *, X_val=None, y_val=None,
        sample_weight=None, rng, **_,
    ):  # fmt: skip
        I = self._factors(model, X_train, X_val, y_val, sample_weight).score(X_pool)
        pred = model.predict_proba(X_pool).argmax(axis=1)
        score = I[np.arange(len(pred)), pred]
        idx = top_k(score, budget, rng)
        return Selection(indices=idx, scores=score[idx])


class PredictedInfluence(SalutaryLabeling):
    """Predicted influence (Chhabra et al., 2024, InfDataSel-style; oracle labels).

    The influence of each *labeled* training sample on the validation loss (with its
    true label) is computed exactly; a regression tree learns it from the features and
    ranks the pool by predicted influence; the oracle labels the top ``budget``.

    Parameters
    ----------
    min_samples_leaf : int, default=5
        Leaf size of the regression tree.
    solver, tol : see :class:`SalutaryLabeling`.
    """

    requires_oracle = True
    name = "predicted-influence"

    def __init__(self, min_samples_leaf: int = 5, solver: str = "auto", tol: float = 1e-10):
        super().__init__(solver=solver, tol=tol)
        self.min_samples_leaf = min_samples_leaf

    def select(
        self, model, X_train, y_train, X_pool, budget, *, X_val=None, y_val=None,
        sample_weight=None, rng, **_,
    ):  # fmt: skip
        from sklearn.tree import DecisionTreeRegressor

        factors = self._factors(model, X_train, X_val, y_val, sample_weight)
        I_train = factors.score(X_train)
        target = I_train[np.arange(len(y_train)), np.searchsorted(factors.classes_, y_train)]
        tree = DecisionTreeRegressor(
            min_samples_leaf=self.min_samples_leaf,
            random_state=int(rng.integers(np.iinfo(np.int32).max)),
        ).fit(X_train, target)
        score = tree.predict(X_pool)
        idx = top_k(score, budget, rng)
        return Selection(indices=idx, scores=score[idx])


def _rows_in(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Which rows of ``A`` occur (bit for bit) among the rows of ``B``."""
    seen = {row.tobytes() for row in np.ascontiguousarray(B, dtype=np.float64)}
    return np.array(
        [row.tobytes() in seen for row in np.ascontiguousarray(A, dtype=np.float64)], dtype=bool
    )


class CrossFitSalutary(SalutaryLabeling):
    """Salutary labeling with cross-fitted influence: validation labels used twice.

    The ground-truth-labeled rows (the training rows marked ``trusted`` plus any
    validation rows not already among them) are split into ``n_folds`` stratified folds.
    For each fold, a model is fit on the other folds plus every row labeled so far by
    this strategy, and the influence of each (pool sample, class) on *that fold's* loss
    is computed; the fold influences are summed. Every true label thus serves both for
    training and, out of fold, as validation. Labels and picks then follow
    :class:`SalutaryLabeling`. Meant for the ``fair`` protocol, where the final model
    also trains on the validation labels.

    A class absent from a fold's training part (a class with a single labeled example)
    cannot be scored by that fold: its validation rows are left out there and the fold
    adds nothing to that class's column.

    Parameters
    ----------
    n_folds : int, default=5
    solver, tol : see :class:`SalutaryLabeling`.
    """

    name = "salutary-crossfit"

    def __init__(self, n_folds: int = 5, solver: str = "auto", tol: float = 1e-10) -> None:
        super().__init__(solver=solver, tol=tol)
        self.n_folds = n_folds

    def select(
        self, model, X_train, y_train, X_pool, budget, *, X_val=None, y_val=None,
        sample_weight=None, trusted=None, rng, **_,
    ):  # fmt: skip
        import warnings

        from sklearn.model_selection import StratifiedKFold

        if X_val is None or y_val is None:
            raise ValueError(f"strategy {self.name!r} needs a labeled validation set")
        trusted = np.ones(len(y_train), bool) if trusted is None else np.asarray(trusted)
        X_true, y_true = X_train[trusted], y_train[trusted]
        extra = ~_rows_in(X_val, X_true)
        X_true = np.vstack([X_true, X_val[extra]])
        y_true = np.concatenate([y_true, np.asarray(y_val)[extra]])
        X_own, y_own = X_train[~trusted], y_train[~trusted]
        classes = model.classes_
        total = np.zeros((X_pool.shape[0], len(classes)))
        folds = StratifiedKFold(
            n_splits=self.n_folds, shuffle=True, random_state=int(rng.integers(2**31 - 1))
        )
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The least populated class")
            splits = list(folds.split(X_true, y_true))
        for train_idx, val_idx in splits:
            X_fit = np.vstack([X_true[train_idx], X_own])
            y_fit = np.concatenate([y_true[train_idx], y_own])
            # Each fold starts from the full model's optimum: a few Newton steps suffice.
            fold_model = _warm_clone(model).fit(X_fit, y_fit)
            keep = np.isin(y_true[val_idx], fold_model.classes_)
            factors = self._factors(
                fold_model, X_fit, X_true[val_idx][keep], y_true[val_idx][keep], None
            )
            cols = np.searchsorted(classes, fold_model.classes_)
            total[:, cols] += factors.score(X_pool)
        label_idx = total.argmax(axis=1)
        gain = total[np.arange(len(total)), label_idx]
        idx = top_k(gain, budget, rng)
        return Selection(indices=idx, scores=gain[idx], labels=classes[label_idx[idx]])


STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls
    for cls in (
        SalutaryLabeling,
        NewtonGreedySalutary,
        CrossFitSalutary,
        SelfTraining,
        ValidationTeacher,
        SalutaryOracle,
        SalutaryHybrid,
        RandomSampling,
        EntropySampling,
        MarginSampling,
        LeastConfidenceSampling,
        BadgeSampling,
        CoreSetSampling,
        ISAL,
        PredictedInfluence,
    )
}


def parse_strategy(spec: str) -> tuple[type[Strategy], dict[str, object]]:
    """Strategy class and parameters from a spec ``NAME[:PARAM=VALUE[:PARAM=VALUE...]]``.

    ``NAME`` is a registered name (see :data:`STRATEGIES`); each ``VALUE`` is read as a
    Python literal (``1``, ``0.5``, ``True``), or kept as a string (``solver=cg``).
    ``"salutary-newton:steps=1:labels=1"`` is :class:`NewtonGreedySalutary` with
    ``steps=1, labels=1``: variants for ablations run through the benchmark like any
    strategy, under their spec.

    Raises
    ------
    ValueError
        Unknown name or parameter, or an item that is not ``PARAM=VALUE``.
    """
    import ast

    name, *items = str(spec).split(":")
    cls = STRATEGIES.get(name.strip())
    if cls is None:
        raise ValueError(f"unknown strategy {name!r}; choose from {', '.join(STRATEGIES)}")
    valid = cls().get_params()
    params: dict[str, object] = {}
    for item in items:
        key, eq, raw = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise ValueError(f"strategy {spec!r}: {item!r} is not PARAM=VALUE")
        if key not in valid:
            raise ValueError(
                f"strategy {spec!r}: {cls.name!r} has no parameter {key!r}; "
                f"it has {', '.join(valid) or 'none'}"
            )
        try:
            params[key] = ast.literal_eval(raw.strip())
        except (ValueError, SyntaxError):
            params[key] = raw.strip()
    return cls, params


def strategy_class(spec: str) -> type[Strategy]:
    """The registered class behind a strategy name or spec (see :func:`parse_strategy`)."""
    return parse_strategy(spec)[0]


def get_strategy(strategy: str | Strategy) -> Strategy:
    """A strategy instance from its registered name or spec, or the instance itself.

    See :func:`parse_strategy` for the ``NAME:PARAM=VALUE`` form.
    """
    if isinstance(strategy, Strategy):
        return strategy
    cls, params = parse_strategy(strategy)
    return cls(**params)
