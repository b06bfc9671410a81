"""The strategy interface: what a strategy is given, what it returns, and shared helpers."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, clone

from salutary._sparse import is_sparse
from salutary._validation import validate_params
from salutary.pool import Pool, as_pool

__all__ = ["Selection", "Strategy", "chosen_margin", "pick_margins", "rows_in", "warm_clone"]


@dataclass
class Selection:
    """What a strategy picked in one round.

    Attributes
    ----------
    indices : ndarray of int
        Positions in the pool the strategy was given, best first.
    scores : ndarray of float
        The strategy's score of each picked sample (higher is picked first).
    labels : ndarray or None
        Labels assigned by the strategy; ``None`` for oracle strategies that leave all
        labels to the oracle.
    ask : ndarray of bool or None
        Which picks go to the oracle (their entry in ``labels`` is then ignored); the
        others keep ``labels``. Only strategies with ``requires_oracle`` may ask. ``None``:
        as ``requires_oracle`` says (all picks asked, or none).
    margins : ndarray of float or None
        How much better each pick's label in ``labels`` is predicted to be than the
        best other label (:func:`chosen_margin`; small or negative: doubtful). ``None``
        for strategies that measure no such thing.
    """

    indices: np.ndarray
    scores: np.ndarray
    labels: np.ndarray | None = None
    ask: np.ndarray | None = None
    margins: np.ndarray | None = None


def chosen_margin(influence: Any, classes: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Influence of each row's chosen label minus the largest influence of its other labels.

    Parameters
    ----------
    influence : ndarray of shape (n, n_classes)
        Predicted decrease of the validation loss per (row, class), columns in
        ``classes`` order (:meth:`salutary.influence.InfluenceFactors.score`).
    classes : ndarray of shape (n_classes,)
        Sorted, as a fitted model's ``classes_``.
    labels : ndarray of shape (n,)
        The label chosen for each row (values of ``classes``).

    Returns
    -------
    ndarray of shape (n,)
        For the label of largest influence, its lead over the runner-up (0: two labels
        equally good); negative when another label has the larger influence.
    """
    I = np.asarray(influence, dtype=np.float64)
    rows = np.arange(len(I))
    col = np.searchsorted(classes, labels)
    others = I.copy()
    others[rows, col] = -np.inf
    return I[rows, col] - others.max(axis=1, initial=-np.inf)


def pick_margins(factors: Any, pool: Pool, indices: np.ndarray, labels: Any) -> np.ndarray:
    """:func:`chosen_margin` of the pool rows ``indices`` with the labels they were
    given, by the first-order influence of fitted ``InfluenceFactors``."""
    if not len(indices):
        return np.zeros(0)
    influence = factors.score(pool.take(indices))
    return chosen_margin(influence, factors.classes_, np.asarray(labels))


class Strategy(BaseEstimator, ABC):
    """Base class: choose ``budget`` pool samples given the current model.

    :meth:`select` checks the parameters (``_parameter_constraints``, scikit-learn
    style) and that a strategy that reads the validation set got one, then calls
    :meth:`_select`, which subclasses implement. Class attributes say what a strategy
    is and needs:

    * ``name``: its name in the registry (``salutary.strategies.STRATEGIES``);
    * ``requires_oracle``: the loop must supply true labels for its picks (or for
      those its ``Selection.ask`` marks); ``partial_oracle``: it labels part of its
      picks itself and may ask the oracle about the rest;
    * ``uses_validation``: it reads the labeled validation set;
    * ``baseline``: ``False`` for the variants of salutary labeling (the method under
      test), ``True`` for the methods it is compared with.

    Strategies see the pool only through :class:`salutary.pool.Pool` (best rows by a
    per-row score, the features of a few rows), so the oracle-free ones run on the
    in-memory pool and on a Dask cluster alike.
    """

    name: ClassVar[str] = ""
    requires_oracle: ClassVar[bool] = True
    partial_oracle: ClassVar[bool] = False
    uses_validation: ClassVar[bool] = False
    baseline: ClassVar[bool] = True
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {}

    def validate(self) -> None:
        """Check the parameters; ``InvalidParameterError`` (a ``ValueError``) names a bad one."""
        validate_params(self)

    def select(
        self,
        model: Any,
        X_train: np.ndarray,
        y_train: np.ndarray,
        pool: Pool | np.ndarray,
        budget: int,
        *,
        X_val: np.ndarray | None = None,
        y_val: np.ndarray | None = None,
        sample_weight: np.ndarray | None = None,
        trusted: np.ndarray | None = None,
        rng: np.random.Generator,
    ) -> Selection:
        """Pick ``budget`` rows of the pool.

        Parameters
        ----------
        model : fitted classifier with ``predict_proba`` and ``classes_``
            Fitted on ``(X_train, y_train, sample_weight)``.
        X_train, y_train : ndarray
            The current training set.
        pool : Pool or ndarray of shape (n_pool, n_features)
            The samples still unlabeled (an array is wrapped in an ``ArrayPool``).
        budget : int
            How many to pick (fewer only if the pool is smaller, or if the strategy
            abstains).
        X_val, y_val : ndarray or None
            Labeled validation set (required by strategies with ``uses_validation``).
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
        self.validate()
        if self.uses_validation and (X_val is None or y_val is None):
            raise ValueError(f"strategy {self.name!r} needs a labeled validation set")
        return self._select(
            model, X_train, y_train, as_pool(pool), budget, X_val=X_val, y_val=y_val,
            sample_weight=sample_weight, trusted=trusted, rng=rng,
        )  # fmt: skip

    @abstractmethod
    def _select(
        self,
        model: Any,
        X_train: np.ndarray,
        y_train: np.ndarray,
        pool: Pool,
        budget: int,
        *,
        X_val: Any,
        y_val: Any,
        sample_weight: np.ndarray | None,
        trusted: np.ndarray | None,
        rng: np.random.Generator,
    ) -> Selection:
        """The selection, with checked parameters (see :meth:`select`)."""


def warm_clone(model: Any) -> Any:
    """An unfitted copy of ``model`` that starts its next fit from ``model``'s optimum."""
    fresh = clone(model)
    if "warm_start" in fresh.get_params() and hasattr(model, "coef_"):
        fresh.set_params(warm_start=True)
        fresh.classes_, fresh.coef_, fresh.intercept_ = (
            model.classes_, model.coef_, model.intercept_,
        )  # fmt: skip
    return fresh


def rows_in(A: Any, B: Any) -> np.ndarray:
    """Which rows of ``A`` occur (bit for bit) among the rows of ``B`` (dense or sparse)."""
    seen = set(_row_keys(B))
    return np.array([key in seen for key in _row_keys(A)], dtype=bool)


def _row_keys(X: Any) -> list[bytes]:
    """One bytes key per row, equal for rows equal bit for bit."""
    if not is_sparse(X):
        return [row.tobytes() for row in np.ascontiguousarray(X, dtype=np.float64)]
    X = sp.csr_matrix(X, dtype=np.float64, copy=True)
    X.sum_duplicates()
    X.eliminate_zeros()
    return [
        X.indices[a:b].tobytes() + b"|" + X.data[a:b].tobytes()
        for a, b in zip(X.indptr[:-1], X.indptr[1:], strict=True)
    ]
