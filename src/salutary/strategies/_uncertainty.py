"""Random sampling and uncertainty sampling (oracle labels)."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import entr

from salutary.pool import RowScorer
from salutary.strategies._base import Selection, Strategy

__all__ = [
    "EntropySampling",
    "LeastConfidenceSampling",
    "MarginSampling",
    "RandomSampling",
    "UncertaintyScorer",
    "entropy_scores",
    "least_confidence_scores",
    "margin_scores",
]


def entropy_scores(proba: np.ndarray) -> np.ndarray:
    """Predictive entropy per row of class probabilities ``(n, n_classes)``."""
    return entr(proba).sum(axis=1)


def margin_scores(proba: np.ndarray) -> np.ndarray:
    """Minus the gap between the two most probable classes (larger: less sure)."""
    top2 = np.partition(proba, -2, axis=1)[:, -2:]
    return -(top2[:, 1] - top2[:, 0])


def least_confidence_scores(proba: np.ndarray) -> np.ndarray:
    """One minus the top-class probability."""
    return 1.0 - proba.max(axis=1)


class RandomSampling(Strategy):
    """Uniformly random pool samples (oracle labels)."""

    name = "random"

    def _select(
        self, model, X_train, y_train, pool, budget, *, X_val, y_val, sample_weight, trusted, rng
    ):
        idx = rng.choice(pool.n_rows, size=min(budget, pool.n_rows), replace=False)
        return Selection(indices=idx, scores=np.zeros(len(idx)))


class UncertaintyScorer(RowScorer):
    """A strategy's uncertainty of ``model`` on every pool row (no labels)."""

    has_labels = False

    def __init__(self, strategy: _UncertaintySampling, model: Any) -> None:
        self.strategy = strategy
        self.model = model

    def score_chunk(self, X: np.ndarray) -> tuple[np.ndarray, None]:
        return self.strategy.uncertainty(self.model.predict_proba(X)), None


class _UncertaintySampling(Strategy):
    def uncertainty(self, proba: np.ndarray) -> np.ndarray:
        """Per-sample uncertainty from predicted probabilities ``(n, n_classes)``; larger
        is picked first."""
        raise NotImplementedError

    def _select(
        self, model, X_train, y_train, pool, budget, *, X_val, y_val, sample_weight, trusted, rng
    ):
        best = pool.top_k(UncertaintyScorer(self, model), budget, rng)
        return Selection(indices=best.indices, scores=best.scores)


class EntropySampling(_UncertaintySampling):
    """Highest predictive entropy first (oracle labels)."""

    name = "entropy"

    def uncertainty(self, proba: np.ndarray) -> np.ndarray:
        return entropy_scores(proba)


class MarginSampling(_UncertaintySampling):
    """Smallest gap between the two most probable classes first (oracle labels)."""

    name = "margin"

    def uncertainty(self, proba: np.ndarray) -> np.ndarray:
        return margin_scores(proba)


class LeastConfidenceSampling(_UncertaintySampling):
    """Lowest top-class probability first (oracle labels)."""

    name = "least-confidence"

    def uncertainty(self, proba: np.ndarray) -> np.ndarray:
        return least_confidence_scores(proba)
