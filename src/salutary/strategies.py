"""Selection strategies behind one interface.

A strategy sees the fitted model, the current training set, the remaining pool's
*features* and the labeled validation set, and returns which pool rows to add. Oracle
strategies (``requires_oracle = True``) return indices only: the labeling loop asks the
oracle for their labels. Oracle-free strategies also return the labels they assign. No
strategy is ever handed the pool's labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy.special import entr
from sklearn.base import BaseEstimator

from salutary.influence import InfluenceFactors

__all__ = [
    "STRATEGIES",
    "EntropySampling",
    "LeastConfidenceSampling",
    "MarginSampling",
    "RandomSampling",
    "SalutaryLabeling",
    "SalutaryOracle",
    "Selection",
    "Strategy",
    "get_strategy",
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
        Labels assigned by an oracle-free strategy; ``None`` for oracle strategies.
    """

    indices: np.ndarray
    scores: np.ndarray
    labels: np.ndarray | None = None


def top_k(scores: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of the ``k`` largest scores, best first; ties broken at random by ``rng``."""
    scores = np.asarray(scores, dtype=np.float64)
    k = min(int(k), scores.shape[0])
    tiebreak = rng.permutation(scores.shape[0])
    # lexsort sorts by the last key first: score descending, then the random rank.
    order = np.lexsort((tiebreak, -scores))
    return order[:k]


class Strategy(BaseEstimator):
    """Base class: choose ``budget`` pool samples given the current model.

    Subclasses implement :meth:`select`. Class attributes say what a strategy needs:
    ``requires_oracle`` (the loop must supply true labels for its picks) and
    ``uses_validation`` (it reads the labeled validation set).
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

    def _scores(self, model, X_train, X_pool, X_val, y_val, sample_weight):
        if X_val is None or y_val is None:
            raise ValueError(f"strategy {self.name!r} needs a labeled validation set")
        factors = InfluenceFactors(solver=self.solver, tol=self.tol).fit(
            model, X_train, X_val, y_val, sample_weight=sample_weight
        )
        label_idx, gain = factors.best_labels(X_pool)
        return factors.classes_[label_idx], gain

    def select(
        self, model, X_train, y_train, X_pool, budget, *, X_val=None, y_val=None,
        sample_weight=None, rng, **_,
    ):  # fmt: skip
        labels, gain = self._scores(model, X_train, X_pool, X_val, y_val, sample_weight)
        idx = top_k(gain, budget, rng)
        return Selection(indices=idx, scores=gain[idx], labels=labels[idx])


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


STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls
    for cls in (
        SalutaryLabeling,
        SalutaryOracle,
        RandomSampling,
        EntropySampling,
        MarginSampling,
        LeastConfidenceSampling,
    )
}


def get_strategy(strategy: str | Strategy) -> Strategy:
    """A strategy instance from its registered name (or the instance itself)."""
    if isinstance(strategy, Strategy):
        return strategy
    try:
        return STRATEGIES[strategy]()
    except KeyError:
        raise ValueError(
            f"unknown strategy {strategy!r}; choose from {', '.join(STRATEGIES)}"
        ) from None
