"""Influence-based baselines that ask the oracle: ISAL and predicted influence."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from sklearn.tree import DecisionTreeRegressor

from salutary._validation import Integral, Interval
from salutary.influence import InfluenceFactors
from salutary.pool import RowScorer
from salutary.strategies._base import Selection
from salutary.strategies._salutary import SalutaryLabeling

__all__ = ["ISAL", "PredictedInfluence", "PredictedLabelInfluence", "TreeScorer"]


class PredictedLabelInfluence(RowScorer):
    """The influence of every pool row with the label ``model`` predicts for it."""

    has_labels = False

    def __init__(self, factors: InfluenceFactors, model: Any) -> None:
        self.factors = factors
        self.model = model

    def score_chunk(self, X: np.ndarray) -> tuple[np.ndarray, None]:
        I = self.factors.score(X, chunk_size=self.chunk_size)
        pred = self.model.predict_proba(X).argmax(axis=1)
        return I[np.arange(len(pred)), pred], None


class TreeScorer(RowScorer):
    """The predictions of a fitted regressor, as scores."""

    has_labels = False

    def __init__(self, tree: Any) -> None:
        self.tree = tree

    def score_chunk(self, X: np.ndarray) -> tuple[np.ndarray, None]:
        return self.tree.predict(X), None


class ISAL(SalutaryLabeling):
    """Influence-based selection with pseudo-labels (ISAL, Liu et al., 2021; oracle labels).

    Scores each pool sample by the influence of adding it with the model's *predicted*
    label, takes the top ``budget``, and asks the oracle for their true labels.
    """

    requires_oracle = True
    baseline = True
    name = "isal"

    def _select(
        self, model, X_train, y_train, pool, budget, *, X_val, y_val, sample_weight, trusted, rng
    ):
        factors = self.influence_factors(model, X_train, X_val, y_val, sample_weight, pool=pool)
        best = pool.top_k(PredictedLabelInfluence(factors, model), budget, rng)
        return Selection(indices=best.indices, scores=best.scores)


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
    baseline = True
    name = "predicted-influence"
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **SalutaryLabeling._parameter_constraints,
        "min_samples_leaf": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, min_samples_leaf: int = 5, solver: str = "auto", tol: float = 1e-10):
        super().__init__(solver=solver, tol=tol)
        self.min_samples_leaf = min_samples_leaf

    def _select(
        self, model, X_train, y_train, pool, budget, *, X_val, y_val, sample_weight, trusted, rng
    ):
        factors = self.influence_factors(model, X_train, X_val, y_val, sample_weight)
        I_train = factors.score(X_train)
        target = I_train[np.arange(len(y_train)), np.searchsorted(factors.classes_, y_train)]
        tree = DecisionTreeRegressor(
            min_samples_leaf=self.min_samples_leaf,
            random_state=int(rng.integers(np.iinfo(np.int32).max)),
        ).fit(X_train, target)
        best = pool.top_k(TreeScorer(tree), budget, rng)
        return Selection(indices=best.indices, scores=best.scores)
