"""Salutary labeling (first order): the paper's method, its oracle ablation, cross-fitting."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from sklearn.model_selection import StratifiedKFold

from salutary._sparse import vstack
from salutary._validation import Integral, Interval, Real, StrOptions
from salutary.influence import InfluenceFactors
from salutary.pool import Pool, RowScorer
from salutary.strategies._base import Selection, Strategy, pick_margins, rows_in, warm_clone

__all__ = [
    "BestLabels",
    "CrossFitSalutary",
    "FoldInfluence",
    "SalutaryLabeling",
    "SalutaryOracle",
]


class BestLabels(RowScorer):
    """The salutary label of every pool row (an index into ``factors.classes_``) and its
    influence (:meth:`InfluenceFactors.best_labels`)."""

    def __init__(self, factors: InfluenceFactors) -> None:
        self.factors = factors

    def __call__(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # best_labels scores chunk by chunk itself, with a buffer per thread.
        labels, scores = self.factors.best_labels(X, chunk_size=self.chunk_size)
        return scores, labels

    def score_chunk(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self(X)


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
    hessian : {"train", "pool"}, default="train"
        Rows whose curvature defines the Hessian of the influence function: the
        training set (the textbook influence), or the current unlabeled pool at the
        model's predicted probabilities, plus the L2 term, as the authors' code does
        (``salutary:hessian=pool``). ``pool`` reads the whole pool into memory.
    """

    requires_oracle = False
    uses_validation = True
    baseline = False
    name = "salutary"
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "solver": [StrOptions({"auto", "direct", "cg"})],
        "tol": [Interval(Real, 0, None, closed="neither")],
        "hessian": [StrOptions({"train", "pool"})],
    }

    def __init__(self, solver: str = "auto", tol: float = 1e-10, hessian: str = "train") -> None:
        self.solver = solver
        self.tol = tol
        self.hessian = hessian

    def influence_factors(
        self,
        model: Any,
        X_train: np.ndarray,
        X_val: np.ndarray,
        y_val: np.ndarray,
        sample_weight: np.ndarray | None = None,
        *,
        pool: Pool | None = None,
    ) -> InfluenceFactors:
        """The influence factors of ``model`` on the validation set, with this strategy's
        solver and Hessian (``pool`` is required when ``hessian="pool"``)."""
        X_hessian = None
        # Subclasses that do not take ``hessian`` keep the training-set Hessian.
        if getattr(self, "hessian", "train") == "pool":
            if pool is None:
                raise ValueError(f"{type(self).__name__}: hessian='pool' needs the pool")
            X_hessian = pool.to_numpy()
        return InfluenceFactors(solver=self.solver, tol=self.tol).fit(
            model, X_train, X_val, y_val, sample_weight=sample_weight, X_hessian=X_hessian
        )

    def _first_order(
        self, factors: InfluenceFactors, pool: Pool, budget: int, rng: np.random.Generator
    ) -> Selection:
        """The ``budget`` rows of largest best-case influence, with their salutary labels."""
        best = pool.top_k(BestLabels(factors), budget, rng)
        assert best.labels is not None  # BestLabels labels every row
        labels = factors.classes_[best.labels]
        margins = pick_margins(factors, pool, best.indices, labels)
        return Selection(best.indices, best.scores, labels, margins=margins)

    def _select(
        self, model, X_train, y_train, pool, budget, *, X_val, y_val, sample_weight, trusted, rng
    ):
        factors = self.influence_factors(model, X_train, X_val, y_val, sample_weight, pool=pool)
        return self._first_order(factors, pool, budget, rng)


class SalutaryOracle(SalutaryLabeling):
    """Salutary selection with ground-truth labels: the paper's ablation.

    Picks the same samples as :class:`SalutaryLabeling` (largest best-case influence)
    but discards the salutary labels; the loop asks the oracle instead.
    """

    requires_oracle = True
    name = "salutary-oracle"

    def _select(self, *args, **kwargs):
        sel = super()._select(*args, **kwargs)
        return Selection(indices=sel.indices, scores=sel.scores, labels=None)


class FoldInfluence(RowScorer):
    """The summed influence of several folds' factors, its best label and score.

    Parameters
    ----------
    folds : sequence of (InfluenceFactors, ndarray of int)
        Each fold's factors and the columns (indices into the model's classes) of the
        fold model's classes.
    n_classes : int
    """

    def __init__(self, folds: Sequence[tuple[InfluenceFactors, np.ndarray]], n_classes: int):
        self.folds = list(folds)
        self.n_classes = n_classes

    def score_chunk(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        total = np.zeros((X.shape[0], self.n_classes))
        for factors, cols in self.folds:
            total[:, cols] += factors.score(X, chunk_size=self.chunk_size)
        label = total.argmax(axis=1)
        return total[np.arange(len(total)), label], label


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
    solver, tol, hessian : see :class:`SalutaryLabeling`.
    """

    name = "salutary-crossfit"
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **SalutaryLabeling._parameter_constraints,
        "n_folds": [Interval(Integral, 2, None, closed="left")],
    }

    def __init__(
        self, n_folds: int = 5, solver: str = "auto", tol: float = 1e-10, hessian: str = "train"
    ) -> None:
        super().__init__(solver=solver, tol=tol, hessian=hessian)
        self.n_folds = n_folds

    def _select(
        self, model, X_train, y_train, pool, budget, *, X_val, y_val, sample_weight, trusted, rng
    ):
        trusted = np.ones(len(y_train), bool) if trusted is None else np.asarray(trusted)
        X_true, y_true = X_train[trusted], y_train[trusted]
        extra = ~rows_in(X_val, X_true)
        X_true = vstack([X_true, X_val[extra]])
        y_true = np.concatenate([y_true, np.asarray(y_val)[extra]])
        X_own, y_own = X_train[~trusted], y_train[~trusted]
        classes = model.classes_
        folds = StratifiedKFold(
            n_splits=self.n_folds, shuffle=True, random_state=int(rng.integers(2**31 - 1))
        )
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The least populated class")
            splits = list(folds.split(X_true, y_true))
        fold_factors = []
        for train_idx, val_idx in splits:
            X_fit = vstack([X_true[train_idx], X_own])
            y_fit = np.concatenate([y_true[train_idx], y_own])
            # Each fold starts from the full model's optimum: a few Newton steps suffice.
            fold_model = warm_clone(model).fit(X_fit, y_fit)
            keep = np.isin(y_true[val_idx], fold_model.classes_)
            factors = self.influence_factors(
                fold_model, X_fit, X_true[val_idx][keep], y_true[val_idx][keep], None, pool=pool
            )
            fold_factors.append((factors, np.searchsorted(classes, fold_model.classes_)))
        best = pool.top_k(FoldInfluence(fold_factors, len(classes)), budget, rng)
        assert best.labels is not None  # FoldInfluence labels every row
        return Selection(indices=best.indices, scores=best.scores, labels=classes[best.labels])
