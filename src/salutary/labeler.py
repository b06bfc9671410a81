"""SalutaryLabeler: salutary labeling as a scikit-learn semi-supervised classifier."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils.validation import _num_samples, check_array, check_is_fitted

from salutary.embeddings import Embedder
from salutary.loop import (
    LabelRound,
    check_xy,
    default_model,
    label_pool,
    oracle_free_strategy,
    validation_loss,
)
from salutary.pool import ArrayPool
from salutary.strategies import DEFAULT_STRATEGY, Strategy

__all__ = ["SalutaryLabeler"]


class SalutaryLabeler(ClassifierMixin, BaseEstimator):
    """Semi-supervised classifier that labels its own training data by salutary labeling.

    Follows scikit-learn's semi-supervised convention: ``y`` holds ``-1`` for unlabeled
    samples. Each of ``rounds`` rounds fits the estimator on the labeled part, scores
    every unlabeled sample and class by its influence on the validation loss, and adds
    the ``budget`` most helpful samples with their salutary labels. No true label beyond
    the initial ones and the validation set is used.

    With an ``encoder``, ``X``, ``X_val`` and the inputs of ``predict`` are raw data
    (texts, images, ...) that the frozen encoder embeds first: the estimator, the
    influence scores and the salutary labels all live on the embeddings (the paper's
    convex surrogate of a deep model). ``X`` and ``X_val`` are embedded once per fit,
    through the embedding cache, so refitting on the same data does not re-embed.

    Parameters
    ----------
    estimator : estimator, default=None
        L2 logistic model refit every round; ``LogisticModel(l2=50)`` by default.
    encoder : encoder, Embedder or None, default=None
        Frozen encoder applied to every input: anything
        :func:`salutary.embeddings.as_encoder` accepts (a ``torch.nn.Module``, a
        sentence-transformers model directory, a fitted scikit-learn transformer, an
        encoder object), or a :class:`salutary.embeddings.Embedder` to choose the cache,
        progress bar and batch size (by default: the default cache, no progress bar).
        None: ``X`` is used as it is.
    budget : int, default=10
        Samples labeled per round.
    rounds : int, default=10
        Number of rounds; fewer are run if the unlabeled rows run out.
    strategy : str or Strategy, default="salutary-newton"
        An oracle-free strategy. The default (batch-aware selection scored by the
        validation loss after one Newton step; budgets above 5% of the training set in
        sub-batches with a refit in between) beat the paper's first-order top-b,
        ``"salutary"``, in our benchmark (README, "Benchmark").
    random_state : int, Generator or None, default=None
        Seeds tie-breaking.
    callback : callable or None, default=None
        Called as ``callback(round, labeler)`` after the initial fit (round 0) and after
        every round, e.g. to drive a progress bar.

    Attributes
    ----------
    estimator_ : estimator
        Fitted on the initial labels plus all labels assigned (on the embeddings when
        an encoder is used).
    embedder_ : Embedder or None
        The fitted embedding step; None without an encoder.
    classes_ : ndarray
    transduction_ : ndarray of shape (n_samples,)
        Labels used for the final fit; ``-1`` for samples still unlabeled.
    labeled_iter_ : ndarray of shape (n_samples,)
        Round in which each sample was labeled: 0 for the initial labels, -1 never.
    salutary_score_ : ndarray of shape (n_samples,)
        Predicted validation-loss decrease of the samples labeled by the strategy
        (NaN elsewhere).
    validation_loss_ : list of float
        Summed validation cross-entropy after each fit (``rounds + 1`` values).
    """

    def __init__(
        self,
        estimator: object | None = None,
        *,
        encoder: object | None = None,
        budget: int = 10,
        rounds: int = 10,
        strategy: str | Strategy = DEFAULT_STRATEGY,
        random_state: int | np.random.Generator | None = None,
        callback: Callable[[int, SalutaryLabeler], None] | None = None,
    ) -> None:
        self.estimator = estimator
        self.encoder = encoder
        self.callback = callback
        self.budget = budget
        self.rounds = rounds
        self.strategy = strategy
        self.random_state = random_state

    def fit(
        self, X: np.ndarray, y: np.ndarray, X_val: np.ndarray, y_val: np.ndarray
    ) -> SalutaryLabeler:
        """Label ``budget x rounds`` of the unlabeled rows and fit the final estimator.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features, or raw inputs (e.g. a list of texts) when ``encoder`` is set.
        y : array-like of shape (n_samples,)
            Labels, ``-1`` for unlabeled samples.
        X_val, y_val : array-like
            Labeled validation set (raw inputs when ``encoder`` is set).

        Returns
        -------
        self : SalutaryLabeler
        """
        strat = oracle_free_strategy(self.strategy)  # fails before the (slow) embedding
        self.embedder_ = None
        if self.encoder is not None:
            self.__dict__.pop("n_features_in_", None)  # from an earlier fit without encoder
            # Check the lengths before the (possibly slow) embedding.
            for name, data, labels in (("X", X, y), ("X_val", X_val, y_val)):
                if np.shape(labels) != (_num_samples(data),):
                    raise ValueError(
                        f"{name} has {_num_samples(data)} samples but its labels have "
                        f"shape {np.shape(labels)}"
                    )
            embedder = self.encoder if isinstance(self.encoder, Embedder) else None
            self.embedder_ = clone(embedder or Embedder(self.encoder)).fit(X)
            # float64 like every dataset of the registry (the encoders give float32).
            X = self.embedder_.transform(X).astype(np.float64)
            X_val = self.embedder_.transform(X_val).astype(np.float64)
        X = check_array(X, dtype=(np.float64, np.float32))
        y = np.asarray(y)
        if y.shape != (X.shape[0],):
            raise ValueError(f"y has shape {y.shape}, expected ({X.shape[0]},)")
        X_val, y_val = check_xy("X_val", X_val, y_val, X.shape[1])
        unlabeled = y == -1
        labeled = ~unlabeled
        if len(np.unique(y[labeled])) < 2:
            raise ValueError("need labeled samples (y != -1) of at least two classes")
        unseen = np.setdiff1d(y_val, y[labeled])
        if len(unseen):
            raise ValueError(f"y_val has labels never seen in y: {unseen[:5].tolist()}")
        pool_rows = np.flatnonzero(unlabeled)
        rounds = min(self.rounds, len(pool_rows) // self.budget)

        self.transduction_ = y.copy()
        self.labeled_iter_ = np.where(labeled, 0, -1)
        self.salutary_score_ = np.full(X.shape[0], np.nan)
        self.validation_loss_: list[float] = []

        def on_round(done: LabelRound) -> None:
            rows = pool_rows[done.rows]
            self.transduction_[rows] = done.labels
            self.labeled_iter_[rows] = done.round
            self.salutary_score_[rows] = done.scores
            self.validation_loss_.append(validation_loss(done.model, X_val, y_val))
            if self.callback is not None:
                self.callback(done.round, self)

        _, self.estimator_ = label_pool(
            default_model() if self.estimator is None else self.estimator,
            X[labeled], y[labeled], ArrayPool(X[pool_rows]), X_val, y_val, strategy=strat,
            budget=self.budget, rounds=rounds, random_state=self.random_state,
            callback=on_round,
        )  # fmt: skip
        self.classes_ = self.estimator_.classes_
        if self.embedder_ is None:
            self.n_features_in_ = X.shape[1]
        return self

    def _features(self, X: Any) -> Any:
        check_is_fitted(self, "estimator_")
        if self.embedder_ is None:
            return X
        return self.embedder_.transform(X).astype(np.float64)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predict with the final estimator (embedding ``X`` first if there is an encoder)."""
        return self.estimator_.predict(self._features(X))

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities from the final estimator (embedding ``X`` first if needed)."""
        return self.estimator_.predict_proba(self._features(X))
