"""The labeling loop: rounds of select, label, refit."""

from __future__ import annotations

import ctypes
import mmap
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.metrics import log_loss
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _num_samples,
    check_array,
    check_is_fitted,
    check_random_state,
)

from salutary.model import LogisticModel
from salutary.strategies import Selection, Strategy, get_strategy

__all__ = ["ActiveLearningResult", "SalutaryLabeler", "default_model", "run_active_learning"]

#: The paper's strong regularization (lambda = 50, i.e. C = 0.02) on standardized features.
PAPER_L2 = 50.0


def default_model() -> LogisticModel:
    """``LogisticModel(l2=50)``, the paper's setting, warm-started between rounds."""
    return LogisticModel(l2=PAPER_L2, warm_start=True)


@dataclass
class ActiveLearningResult:
    """Outcome of :func:`run_active_learning`.

    Attributes
    ----------
    strategy : str
    seed : int
    accuracy : list of float
        Test accuracy before the first round and after each round (``rounds + 1``).
    selected : list of ndarray
        Per round, the chosen rows as indices into the original ``X_pool``.
    labels : list of ndarray
        Per round, the labels the chosen rows were added with (salutary labels for
        oracle-free strategies, ground truth for oracle strategies and for the rows a
        strategy sent to the oracle).
    asked : list of ndarray of bool
        Per round, which chosen rows were labeled by the oracle.
    scores : list of ndarray
        Per round, the strategy's scores of the chosen rows.
    agreement : list of float
        Per round, the fraction of given labels equal to the hidden ground truth; NaN
        when ``y_pool`` was not supplied. Computed after the fact, for reporting only.
    validation_loss : list of float
        Summed validation cross-entropy of the model after each fit (``rounds + 1``).
    n_labeled : list of int
        Training-set size after each fit.
    n_true : list of int
        Oracle labels spent so far, after each fit (0 at round 0; the initial set is
        not counted).
    seconds : list of float
        Wall-clock seconds of each round (selection and refit).
    model : estimator
        The final fitted model.
    """

    strategy: str
    seed: int
    accuracy: list[float] = field(default_factory=list)
    selected: list[np.ndarray] = field(default_factory=list)
    labels: list[np.ndarray] = field(default_factory=list)
    asked: list[np.ndarray] = field(default_factory=list)
    scores: list[np.ndarray] = field(default_factory=list)
    agreement: list[float] = field(default_factory=list)
    validation_loss: list[float] = field(default_factory=list)
    n_labeled: list[int] = field(default_factory=list)
    n_true: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    model: object = None

    def to_frame(self) -> pd.DataFrame:
        """One row per round (round 0 is the initial model)."""
        n = len(self.accuracy)
        return pd.DataFrame(
            {
                "strategy": self.strategy,
                "seed": self.seed,
                "round": np.arange(n),
                "n_labeled": self.n_labeled,
                "n_true": self.n_true,
                "accuracy": self.accuracy,
                "validation_loss": self.validation_loss,
                "label_agreement": [np.nan, *self.agreement],
                "seconds": [0.0, *self.seconds],
            }
        )


def _validation_loss(model: object, X_val: np.ndarray, y_val: np.ndarray) -> float:
    if X_val is None or y_val is None or not np.all(np.isin(y_val, model.classes_)):
        return float("nan")
    return float(log_loss(y_val, model.predict_proba(X_val), labels=model.classes_) * len(y_val))


def _check_xy(name: str, X: np.ndarray, y: np.ndarray | None, n_features: int | None):
    X = check_array(X, dtype=(np.float64, np.float32), ensure_all_finite=True, input_name=name)
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(f"{name} has {X.shape[1]} features, X_labeled has {n_features}")
    if y is not None:
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(X):
            raise ValueError(f"{name} has {len(X)} rows but its labels have shape {y.shape}")
    return X, y


def _drop_rows(X: np.ndarray, n: int, rows: np.ndarray) -> None:
    """Remove ``rows`` from the first ``n`` rows of C-contiguous ``X`` in place, in order.

    Rows after each removed one slide up with one ``memmove`` per gap: a round costs a
    pass over the pool at memory speed, with no allocation (a fresh ``X[remaining]``
    would page-fault a whole new pool every round).
    """
    if not X.flags.c_contiguous:
        raise ValueError("_drop_rows needs a C-contiguous array")
    if len(rows) == 0:  # a strategy may pick nothing (salutary-newton abstaining)
        return
    drop = np.sort(rows)
    ends = np.append(drop[1:], n)
    row = X.strides[0]
    base = X.ctypes.data
    for k, (gap, end) in enumerate(zip(drop.tolist(), ends.tolist(), strict=True)):
        count = end - gap - 1
        if count > 0:
            ctypes.memmove(base + (gap - k) * row, base + (gap + 1) * row, count * row)


def _private_copy_without(
    X: np.ndarray, rows: np.ndarray, *, min_bytes: int = 64 * 2**20
) -> np.ndarray:
    """A C-contiguous copy of ``X`` without ``rows`` (``np.delete``), owned by the loop.

    A copy of ``min_bytes`` or more goes to an anonymous mapping populated up front
    (``MAP_POPULATE``, Linux): a fresh NumPy array takes a page fault per page on first
    touch, which cost up to 7 s for a 3 GB pool on our VM against about 0.9 s populated
    in bulk (BENCHMARKS.md). Elsewhere, and for small pools, ``np.delete``.
    """
    drop = np.unique(np.asarray(rows, dtype=np.intp))
    shape = (X.shape[0] - len(drop), *X.shape[1:])
    nbytes = int(np.prod(shape)) * X.dtype.itemsize
    populate = getattr(mmap, "MAP_POPULATE", None)
    if populate is None or nbytes < min_bytes or nbytes == 0:
        return np.ascontiguousarray(np.delete(X, drop, axis=0))
    buf = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | populate)
    out = np.frombuffer(buf, dtype=X.dtype).reshape(shape)  # keeps ``buf`` alive
    # One block copy per run of kept rows (np.compress into ``out`` was 8x slower).
    src = dst = 0
    for stop in [*drop.tolist(), X.shape[0]]:
        out[dst : dst + stop - src] = X[src:stop]
        dst += stop - src
        src = stop + 1
    return out


def _asked(strategy: Strategy, sel: Selection, n: int) -> np.ndarray:
    """Which of the ``n`` picks of ``sel`` go to the oracle, checked."""
    if sel.ask is None:
        return np.full(n, strategy.requires_oracle)
    ask = np.asarray(sel.ask)
    if ask.dtype != bool or ask.shape != (n,):
        raise RuntimeError(
            f"strategy {strategy.name!r} returned ask of dtype {ask.dtype} and shape "
            f"{ask.shape} for {n} picks; expected booleans of shape ({n},)"
        )
    if ask.any() and not strategy.requires_oracle:
        raise RuntimeError(
            f"strategy {strategy.name!r} asks the oracle but has requires_oracle = False"
        )
    if not ask.all() and (sel.labels is None or len(sel.labels) != n):
        raise RuntimeError(f"strategy {strategy.name!r} left picks unlabeled and unasked")
    return ask


def _label_loop(
    model: object,
    strategy: Strategy,
    X_labeled: np.ndarray,
    y_labeled: np.ndarray,
    X_pool: np.ndarray,
    X_val: np.ndarray | None,
    y_val: np.ndarray | None,
    *,
    budget: int,
    rounds: int,
    rng: np.random.Generator,
    oracle: Callable[[np.ndarray], np.ndarray] | None,
    on_round: Callable[[int, object, np.ndarray, np.ndarray, np.ndarray, float, np.ndarray], None],
) -> object:
    """Run the rounds; ``on_round(r, model, chosen, labels, scores, seconds, asked)`` after
    each (``asked``: which chosen rows the oracle labeled).

    ``oracle(pool_indices)`` returns true labels; it is called only for oracle strategies,
    and only with the picks they send to it (all of them unless ``Selection.ask`` says
    otherwise).
    """
    X_train, y_train = X_labeled, y_labeled
    trusted = np.ones(len(y_train), dtype=bool)  # rows whose label is ground truth
    remaining = np.arange(X_pool.shape[0])
    # The strategies see the remaining rows in their original order: the caller's array
    # in round 1, then a contiguous prefix of one private copy, compacted in place.
    pool, owned = X_pool, False
    n_left = pool.shape[0]
    model.fit(X_train, y_train)
    on_round(0, model, remaining[:0], y_train[:0], np.zeros(0), 0.0, np.zeros(0, bool))
    for r in range(1, rounds + 1):
        t0 = time.perf_counter()
        sel = strategy.select(
            model,
            X_train,
            y_train,
            pool[:n_left],
            budget,
            X_val=X_val,
            y_val=y_val,
            trusted=trusted,
            rng=rng,
        )
        idx = np.asarray(sel.indices, dtype=np.intp)
        if len(np.unique(idx)) != len(idx):
            raise RuntimeError(f"strategy {strategy.name!r} picked a sample twice")
        chosen = remaining[idx]
        ask = _asked(strategy, sel, len(idx))
        if sel.ask is None:
            labels = np.asarray(oracle(chosen) if strategy.requires_oracle else sel.labels)
        elif not ask.any():
            labels = np.asarray(sel.labels)
        elif ask.all():
            labels = np.asarray(oracle(chosen))
        else:  # mixed: the oracle sees only the picks the strategy asks about
            labels = np.asarray(sel.labels).astype(y_train.dtype, copy=True)
            labels[ask] = np.asarray(oracle(chosen[ask]))
        X_train = np.vstack([X_train, X_pool[chosen]])
        y_train = np.concatenate([y_train, labels.astype(y_train.dtype, copy=False)])
        trusted = np.concatenate([trusted, ask])
        remaining = np.delete(remaining, idx)
        if owned:
            _drop_rows(pool, n_left, idx)
        else:
            pool, owned = _private_copy_without(pool, idx), True
        n_left -= len(idx)
        model.fit(X_train, y_train)
        seconds = time.perf_counter() - t0
        on_round(r, model, chosen, labels, np.asarray(sel.scores), seconds, ask)
    return model


def run_active_learning(
    X_labeled: np.ndarray,
    y_labeled: np.ndarray,
    X_pool: np.ndarray,
    X_val: np.ndarray,
    y_val: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    *,
    strategy: str | Strategy = "salutary",
    budget: int = 10,
    rounds: int = 10,
    seed: int = 0,
    y_pool: np.ndarray | None = None,
    model: object | None = None,
    callback: Callable[[int, ActiveLearningResult], None] | None = None,
) -> ActiveLearningResult:
    """Grow a labeled set for ``rounds`` rounds of ``budget`` samples and track test accuracy.

    Arrays are used as given (no scaling inside: standardize beforehand, or put the
    scaler in front of the data).

    Parameters
    ----------
    X_labeled, y_labeled : array-like
        Initial labeled set.
    X_pool : array-like of shape (n_pool, n_features)
        Unlabeled pool.
    X_val, y_val : array-like
        Labeled validation set (used by influence-based strategies).
    X_test, y_test : array-like
        Held-out test set for the accuracy curve.
    strategy : str or Strategy, default="salutary"
        One of ``salutary``, ``salutary-oracle``, ``random``, ``entropy``, ``margin``,
        ``least-confidence``, or a :class:`~salutary.strategies.Strategy` instance.
    budget : int, default=10
        Samples added per round.
    rounds : int, default=10
    seed : int, default=0
        Seeds every random choice; the same seed gives the same result.
    y_pool : array-like of shape (n_pool,), default=None
        Ground truth of the pool. Required by oracle strategies; for oracle-free ones it
        is only used afterwards to report how often the assigned labels were right.
    model : estimator, default=None
        Classifier to refit each round (cloned); ``LogisticModel(l2=50)`` by default.
        Influence-based strategies need an L2 logistic model.
    callback : callable, default=None
        Called as ``callback(round, result)`` after the initial fit and every round.

    Returns
    -------
    ActiveLearningResult
    """
    strat = get_strategy(strategy)
    X_labeled, y_labeled = _check_xy("X_labeled", X_labeled, y_labeled, None)
    d = X_labeled.shape[1]
    X_pool, y_pool = _check_xy("X_pool", X_pool, y_pool, d)
    X_val, y_val = _check_xy("X_val", X_val, y_val, d)
    X_test, y_test = _check_xy("X_test", X_test, y_test, d)
    check_classification_targets(y_labeled)
    classes = np.unique(y_labeled)
    if len(classes) < 2:
        raise ValueError(f"the labeled set has a single class ({classes[0]!r}); need two")
    if budget < 1 or rounds < 0:
        raise ValueError(f"budget must be >= 1 and rounds >= 0, got {budget} and {rounds}")
    if budget * rounds > X_pool.shape[0]:
        raise ValueError(
            f"budget x rounds = {budget} x {rounds} = {budget * rounds} exceeds the pool "
            f"of {X_pool.shape[0]} samples"
        )
    if strat.requires_oracle and y_pool is None:
        raise ValueError(f"strategy {strat.name!r} asks an oracle: pass y_pool (true labels)")
    if strat.uses_validation:
        unseen = np.setdiff1d(y_val, classes)
        if len(unseen):
            raise ValueError(f"y_val has labels never seen in y_labeled: {unseen[:5].tolist()}")

    model = clone(default_model() if model is None else model)
    rng = np.random.default_rng(seed)
    # A spec ("name:param=value") names the run as given: variants stay apart.
    label = strategy if isinstance(strategy, str) else strat.name or type(strat).__name__
    result = ActiveLearningResult(strategy=label, seed=seed)

    def on_round(r, fitted, chosen, labels, scores, seconds, asked):
        result.accuracy.append(float(np.mean(fitted.predict(X_test) == y_test)))
        result.validation_loss.append(_validation_loss(fitted, X_val, y_val))
        result.n_labeled.append(len(y_labeled) + sum(len(s) for s in result.selected) + len(chosen))
        result.n_true.append((result.n_true[-1] if result.n_true else 0) + int(asked.sum()))
        if r > 0:
            result.selected.append(chosen)
            result.labels.append(labels)
            result.asked.append(asked)
            result.scores.append(scores)
            result.seconds.append(seconds)
            result.agreement.append(
                float(np.mean(labels == y_pool[chosen]))
                if y_pool is not None and len(chosen)
                else np.nan
            )
        if callback is not None:
            callback(r, result)

    oracle = (lambda idx: y_pool[idx]) if strat.requires_oracle else None
    result.model = _label_loop(
        model, strat, X_labeled, y_labeled, X_pool, X_val, y_val,
        budget=budget, rounds=rounds, rng=rng, oracle=oracle, on_round=on_round,
    )  # fmt: skip
    return result


#: Below this many validation rows salutary labeling is not safe (README, "Benchmark").
SMALL_VALIDATION = 150


def warn_small_validation(n_val: int) -> None:
    """Warn when the validation set is too small for salutary labeling to be safe.

    In the benchmark (protocol ``val1``, 10 seeds) ``salutary-newton`` was significantly
    worse than random selection with true labels on the three datasets whose validation
    set had 8 to 100 rows, and never on those with 191 rows or more.
    """
    if n_val < SMALL_VALIDATION:
        warnings.warn(
            f"the validation set has {n_val} rows; with fewer than {SMALL_VALIDATION} "
            "salutary labeling was worse than random selection in our benchmark "
            "(README, 'Benchmark'); label more validation rows if you can",
            UserWarning,
            stacklevel=3,
        )


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
        strategy: str | Strategy = "salutary-newton",
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
        strat = get_strategy(self.strategy)
        if strat.requires_oracle:
            raise ValueError(
                f"strategy {strat.name!r} needs an oracle; use run_active_learning with y_pool"
            )
        self.embedder_ = None
        if self.encoder is not None:
            self.__dict__.pop("n_features_in_", None)  # from an earlier fit without encoder
            from salutary.embeddings import Embedder

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
        X_val, y_val = _check_xy("X_val", X_val, y_val, X.shape[1])
        warn_small_validation(len(y_val))
        unlabeled = y == -1
        labeled = ~unlabeled
        if len(np.unique(y[labeled])) < 2:
            raise ValueError("need labeled samples (y != -1) of at least two classes")
        unseen = np.setdiff1d(y_val, y[labeled])
        if len(unseen):
            raise ValueError(f"y_val has labels never seen in y: {unseen[:5].tolist()}")
        pool_rows = np.flatnonzero(unlabeled)
        rounds = min(self.rounds, len(pool_rows) // self.budget)
        rng = check_random_state(self.random_state)
        rng = np.random.default_rng(rng.randint(np.iinfo(np.int32).max))

        self.transduction_ = y.copy()
        self.labeled_iter_ = np.where(labeled, 0, -1)
        self.salutary_score_ = np.full(X.shape[0], np.nan)
        self.validation_loss_ = []

        def on_round(r, fitted, chosen, labels, scores, seconds, asked):
            rows = pool_rows[chosen]
            self.transduction_[rows] = labels
            self.labeled_iter_[rows] = r
            self.salutary_score_[rows] = scores
            self.validation_loss_.append(_validation_loss(fitted, X_val, y_val))
            if self.callback is not None:
                self.callback(r, self)

        model = clone(default_model() if self.estimator is None else self.estimator)
        self.estimator_ = _label_loop(
            model, strat, X[labeled], y[labeled], X[pool_rows], X_val, y_val,
            budget=self.budget, rounds=rounds, rng=rng, oracle=None, on_round=on_round,
        )  # fmt: skip
        self.classes_ = self.estimator_.classes_
        if self.embedder_ is None:
            self.n_features_in_ = X.shape[1]
        return self

    def _features(self, X: object) -> np.ndarray:
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
