"""The labeling loop: rounds of select, label, refit. One loop for every engine.

:func:`run_rounds` is the loop; the pool sits behind :class:`salutary.pool.Pool`, so the
same rounds run on an in-memory array (:class:`~salutary.pool.ArrayPool`) or on a Dask
cluster (``salutary.distributed.DaskPool``). :func:`run_active_learning` runs it with an
oracle and a test set for the benchmark; :class:`salutary.SalutaryLabeler` and
``salutary label`` run it without an oracle.
"""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_random_state

from salutary._sparse import vstack
from salutary.model import LogisticModel
from salutary.pool import ArrayPool, Pool
from salutary.strategies import (
    DEFAULT_STRATEGY,
    Selection,
    Strategy,
    get_strategy,
    loop_options,
)

__all__ = [
    "CHECK_FRACTION",
    "PAPER_L2",
    "SMALL_VALIDATION",
    "ActiveLearningResult",
    "LabelRound",
    "check_x",
    "check_seed",
    "check_xy",
    "held_out_check",
    "default_model",
    "label_pool",
    "oracle_free_strategy",
    "round_rng",
    "run_active_learning",
    "run_rounds",
    "stratified_split",
    "termination",
    "validation_loss",
    "warn_small_validation",
]

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
    margins : list of ndarray
        Per round, how much better each chosen row's label is predicted to be than its
        best other label (``Selection.margins``; see :class:`LabelRound`); NaN for rows
        labeled by the oracle and for strategies that give no margin.
    agrees : list of ndarray of bool
        Per round, whether each chosen row's label equals the prediction of the model
        that chose it (the model before the round's refit).
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
    held_out_loss : list of float
        With a held-out check (``check_fraction``): summed cross-entropy on the held-out
        rows of the model kept after each round (``rounds + 1``); empty without one.
    stopped : int or None
        The round the held-out check dropped (the rounds stopped there); None when it
        dropped none. The per-round lists still hold ``rounds`` rounds: from that round
        on they repeat the model kept, with nothing added.
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
    margins: list[np.ndarray] = field(default_factory=list)
    agrees: list[np.ndarray] = field(default_factory=list)
    agreement: list[float] = field(default_factory=list)
    validation_loss: list[float] = field(default_factory=list)
    n_labeled: list[int] = field(default_factory=list)
    n_true: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    held_out_loss: list[float] = field(default_factory=list)
    stopped: int | None = None
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


def validation_loss(model: Any, X_val: np.ndarray | None, y_val: np.ndarray | None) -> float:
    """Summed validation cross-entropy of a fitted model (NaN without a validation set,
    or when it holds a class the model does not know)."""
    if X_val is None or y_val is None or not np.all(np.isin(y_val, model.classes_)):
        return float("nan")
    return float(log_loss(y_val, model.predict_proba(X_val), labels=model.classes_) * len(y_val))


def check_x(name: str, X: Any, n_features: int | None) -> np.ndarray:
    """``X`` as a finite float array with ``n_features`` columns; ValueError naming
    ``name`` otherwise."""
    X = check_array(
        X,
        accept_sparse="csr",
        dtype=(np.float64, np.float32),
        ensure_all_finite=True,
        input_name=name,
    )
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(f"{name} has {X.shape[1]} features, X_labeled has {n_features}")
    return X


def check_xy(name: str, X: Any, y: Any, n_features: int | None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`check_x`, and ``y`` as a 1-D array of as many labels."""
    X = check_x(name, X, n_features)
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != X.shape[0]:
        raise ValueError(f"{name} has {X.shape[0]} rows but its labels have shape {y.shape}")
    return X, y


def round_rng(
    random_state: int | np.random.Generator | np.random.RandomState | None,
) -> np.random.Generator:
    """The Generator of the rounds of :class:`salutary.SalutaryLabeler` and of
    ``salutary label``, derived from a ``random_state`` scikit-learn style (a Generator
    is used as it is)."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    state = check_random_state(random_state)
    return np.random.default_rng(state.randint(np.iinfo(np.int32).max))


@dataclass
class LabelRound:
    """One round of :func:`run_rounds` (round 0: the initial fit, nothing added).

    Attributes
    ----------
    round : int
    rows : ndarray of int
        The rows added, as positions in the original pool.
    labels : ndarray
        The labels they were added with.
    scores : ndarray
        The strategy's scores of them.
    asked : ndarray of bool
        Which of them the oracle labeled.
    seconds : float
        Wall-clock seconds of the round (selection and refit).
    model : estimator or None
        The model fitted after the round (the loop's own object: do not keep it).
    margins : ndarray of float
        How much better each row's label is predicted to be than its best other label,
        as the strategy measured it (``Selection.margins``: for the influence-based
        strategies, the first-order influence of the label minus that of the runner-up,
        with the round's model). Small or negative: a doubtful label. NaN for rows the
        oracle labeled and for strategies that give no margin.
    agrees : ndarray of bool
        Whether each row's label equals the prediction of the model that chose it (the
        model before this round's refit).
    held_out_loss, held_out_accuracy : float
        With a held-out check (:func:`run_rounds`'s ``X_check``): summed cross-entropy
        and accuracy on the held-out rows of the model fitted after this round (after
        the initial fit at round 0). NaN without a check.
    held_out_loss_before, held_out_accuracy_before : float
        The same for the model this round started from (NaN at round 0).
    kept : bool
        False for the round the held-out check dropped: its fit did not lower the
        held-out loss, so its rows were not added, ``model`` is the model it started
        from, and the rounds stopped there.
    """

    round: int
    rows: np.ndarray
    labels: np.ndarray
    scores: np.ndarray
    asked: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    seconds: float = 0.0
    model: Any = None
    margins: np.ndarray = field(default_factory=lambda: np.zeros(0))
    agrees: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    held_out_loss: float = float("nan")
    held_out_accuracy: float = float("nan")
    held_out_loss_before: float = float("nan")
    held_out_accuracy_before: float = float("nan")
    kept: bool = True


#: Share of the validation set held out from the selection by default, to check every
#: round and stop the rounds (:func:`held_out_check`; chosen in BENCHMARKS.md,
#: "The held-out check").
CHECK_FRACTION = 0.3


def stratified_split(X: Any, y: np.ndarray, size: float | int, seed: int) -> list:
    """``train_test_split`` stratified on ``y``, plain where a class is too rare for it."""
    try:
        return train_test_split(X, y, test_size=size, random_state=seed, stratify=y)
    except ValueError:  # a class too rare to stratify on
        return train_test_split(X, y, test_size=size, random_state=seed)


def held_out_check(
    X_val: Any, y_val: np.ndarray, fraction: float, seed: int
) -> tuple[Any, np.ndarray, Any, np.ndarray]:
    """Split the validation set into the part that steers the selection and the part
    held out to check each round (a stratified ``fraction``, drawn with ``seed``).

    Returns
    -------
    X_steer, y_steer, X_check, y_check
        Rows of ``X_val`` and ``y_val``, each part in the original order.

    Raises
    ------
    ValueError
        When a part would be empty: too few validation rows to hold any out.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"the held-out check fraction must be in (0, 1), got {fraction}")
    rows = np.arange(len(y_val))
    n_check = round(fraction * len(rows))
    if n_check < 1 or n_check >= len(rows):
        raise ValueError(
            f"a validation set of {len(rows)} rows is too small to hold out "
            f"{fraction:g} of it for the held-out check; label more rows, or turn the "
            "check off"
        )
    steer, check, _, _ = stratified_split(rows, y_val, n_check, seed)
    steer, check = np.sort(steer), np.sort(check)
    return X_val[steer], y_val[steer], X_val[check], y_val[check]


def check_seed(random_state: int | np.random.RandomState | None) -> int:
    """The seed of :func:`held_out_check` for a ``random_state``, as
    :class:`salutary.SalutaryLabeler` and ``salutary label --seed`` derive it (apart
    from the draws of the rounds and of the validation hold-out)."""
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max)) + 1


def _check(model: Any, X_check: Any, y_check: np.ndarray | None) -> tuple[float, float]:
    """Held-out loss and accuracy of ``model`` (NaN without a check)."""
    if X_check is None or y_check is None:
        return float("nan"), float("nan")
    accuracy = float(np.mean(model.predict(X_check) == y_check))
    return validation_loss(model, X_check, y_check), accuracy


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


def _margins(strategy: Strategy, sel: Selection, ask: np.ndarray) -> np.ndarray:
    """The margins of the picks' labels, checked; NaN where the oracle answered (the
    margin was of a label not kept) or where the strategy gives none."""
    n = len(ask)
    if sel.margins is None:
        return np.full(n, np.nan)
    margins = np.asarray(sel.margins, dtype=np.float64)
    if margins.shape != (n,):
        raise RuntimeError(
            f"strategy {strategy.name!r} returned margins of shape {margins.shape} for "
            f"{n} picks; expected ({n},)"
        )
    return np.where(ask, np.nan, margins)


def run_rounds(
    model: Any,
    strategy: Strategy,
    X_labeled: np.ndarray,
    y_labeled: np.ndarray,
    pool: Pool,
    X_val: np.ndarray | None,
    y_val: np.ndarray | None,
    *,
    budget: int,
    rounds: int,
    rng: np.random.Generator,
    oracle: Callable[[np.ndarray], np.ndarray] | None = None,
    on_round: Callable[[LabelRound], None] | None = None,
    sample_weight: np.ndarray | None = None,
    pool_weight: np.ndarray | None = None,
    stop_when_empty: bool = False,
    X_check: Any = None,
    y_check: np.ndarray | None = None,
) -> Any:
    """Fit ``model`` on the labeled rows, then ``rounds`` rounds of select, label, refit.

    The rounds end early when the pool is empty, and, with ``stop_when_empty``, after a
    round that added nothing (a strategy that abstains: the next round would see the
    same model). With a held-out check (``X_check``, ``y_check``: labeled rows the
    strategy never sees), the rounds also end at the first round whose refit does not
    lower the summed cross-entropy on them; that round is dropped (reported with
    ``kept=False``) and the model it started from is returned.

    Parameters
    ----------
    model : estimator
        Fitted in place (clone it first to keep the original).
    strategy : Strategy
    X_labeled, y_labeled : ndarray
        The initial training set.
    pool : Pool
        The unlabeled rows; the rows picked are removed from it as the rounds go.
    X_val, y_val : ndarray or None
        The labeled validation set (strategies that read it need it).
    budget, rounds : int
        Rows picked per round, and rounds.
    rng : numpy.random.Generator
        Every random choice of the strategy.
    oracle : callable, optional
        ``oracle(rows)`` returns the true labels of pool rows (positions in the
        original pool). Called only for oracle strategies, and only with the picks
        they send to it (all of them unless ``Selection.ask`` says otherwise).
    on_round : callable, optional
        Called with a :class:`LabelRound` after the initial fit and after each round.
    sample_weight : ndarray of shape (n_labeled,), optional
        Training weights of the labeled rows.
    pool_weight : ndarray of shape (n_pool,), optional
        Training weights the pool rows take once labeled (default 1, or none at all
        when neither weight is given).
    stop_when_empty : bool, default=False
        Stop after a round that added no row.
    X_check, y_check : ndarray, optional
        The held-out check (see :func:`held_out_check`); none by default.

    Returns
    -------
    estimator
        The model fitted on the labeled rows plus every row kept (``model`` itself
        unless the check dropped a round).
    """
    X_train, y_train = X_labeled, y_labeled
    weighted = sample_weight is not None or pool_weight is not None
    w_train = np.ones(len(y_train)) if sample_weight is None else np.asarray(sample_weight, float)
    w_pool = np.ones(pool.n_rows) if pool_weight is None else np.asarray(pool_weight, float)
    trusted = np.ones(len(y_train), dtype=bool)  # rows whose label is ground truth
    remaining = np.arange(pool.n_rows)  # original positions of the rows still in the pool
    report = on_round if on_round is not None else (lambda _: None)

    def fit() -> None:
        # Without weights, fit without the argument: the unweighted fits stay bit for bit.
        model.fit(X_train, y_train, sample_weight=w_train) if weighted else model.fit(
            X_train, y_train
        )

    checking = X_check is not None and y_check is not None
    fit()
    loss, accuracy = _check(model, X_check, y_check)
    if checking and not np.isfinite(loss):
        raise ValueError("the held-out check has a class the labeled rows do not have")
    report(LabelRound(0, remaining[:0], y_train[:0], np.zeros(0), model=model,
                      held_out_loss=loss, held_out_accuracy=accuracy))  # fmt: skip
    for r in range(1, rounds + 1):
        if pool.n_rows == 0:
            break
        t0 = time.perf_counter()
        sel = strategy.select(
            model, X_train, y_train, pool, budget, X_val=X_val, y_val=y_val,
            sample_weight=w_train if weighted else None, trusted=trusted, rng=rng,
        )  # fmt: skip
        idx = np.asarray(sel.indices, dtype=np.intp)
        if len(np.unique(idx)) != len(idx):
            raise RuntimeError(f"strategy {strategy.name!r} picked a sample twice")
        chosen = remaining[idx]
        ask = _asked(strategy, sel, len(idx))
        if not len(idx):
            labels = y_train[:0]
        elif not ask.any():
            labels = np.asarray(sel.labels)
        elif oracle is None:
            raise ValueError(f"strategy {strategy.name!r} asks an oracle, but there is none")
        elif ask.all():
            labels = np.asarray(oracle(chosen))
        else:  # mixed: the oracle sees only the picks the strategy asks about
            labels = np.asarray(sel.labels).astype(y_train.dtype, copy=True)
            labels[ask] = np.asarray(oracle(chosen[ask]))
        X_new = pool.take(idx)
        # Does the label say what the model that chose it predicts? (before the refit)
        agrees = np.zeros(0, bool) if not len(idx) else np.asarray(model.predict(X_new) == labels)
        X_train = vstack([X_train, X_new])
        y_train = np.concatenate([y_train, labels.astype(y_train.dtype, copy=False)])
        w_train = np.concatenate([w_train, w_pool[chosen]])
        trusted = np.concatenate([trusted, ask])
        remaining = np.delete(remaining, idx)
        pool.remove(idx)
        # The model this round starts from, to go back to if the check drops the round
        # (a copy, not a refit: the same weights, bit for bit).
        before = copy.deepcopy(model) if checking else None
        fit()
        seconds = time.perf_counter() - t0
        margins = _margins(strategy, sel, ask)
        scores = np.asarray(sel.scores)
        loss_before, accuracy_before = loss, accuracy
        loss, accuracy = _check(model, X_check, y_check)
        kept = not checking or not len(idx) or loss < loss_before
        if not kept:
            model = before
        report(LabelRound(r, chosen, labels, scores, ask, seconds, model, margins, agrees,
                          loss, accuracy, loss_before, accuracy_before, kept))  # fmt: skip
        if not kept or (stop_when_empty and not len(idx)):
            break
    return model


def oracle_free_strategy(strategy: str | Strategy) -> Strategy:
    """The strategy of a name, spec or instance, checked; ValueError if it needs an oracle."""
    strat = get_strategy(strategy)
    strat.validate()
    if strat.requires_oracle:
        raise ValueError(
            f"strategy {strat.name!r} needs an oracle; use run_active_learning with y_pool"
        )
    return strat


def label_pool(
    model: Any,
    X_labeled: np.ndarray,
    y_labeled: np.ndarray,
    pool: Pool,
    X_val: np.ndarray,
    y_val: np.ndarray,
    *,
    strategy: str | Strategy = DEFAULT_STRATEGY,
    budget: int,
    rounds: int,
    random_state: int | np.random.Generator | None = None,
    callback: Callable[[LabelRound], None] | None = None,
    sample_weight: np.ndarray | None = None,
    pool_weight: np.ndarray | None = None,
    oracle: Callable[[np.ndarray], np.ndarray] | None = None,
    X_check: Any = None,
    y_check: np.ndarray | None = None,
) -> tuple[list[LabelRound], Any]:
    """Label rows of a pool without an oracle, on any engine.

    What :class:`salutary.SalutaryLabeler` and ``salutary label`` run: ``model``
    (cloned) is fit on the labeled rows, then each of ``rounds`` rounds adds ``budget``
    pool rows with the labels an oracle-free ``strategy`` gives them. The pool is an
    :class:`~salutary.pool.ArrayPool` or a ``salutary.distributed.DaskPool``; the same
    arguments give the same rows, labels and scores on both.

    Parameters
    ----------
    model : estimator
        An L2 logistic model (cloned, not changed).
    X_labeled, y_labeled : ndarray
        The labeled rows.
    pool : Pool
        The unlabeled rows (the rows picked are removed from it).
    X_val, y_val : ndarray
        The labeled validation set.
    strategy : str or Strategy, default="salutary-newton"
        An oracle-free strategy, or its name or spec.
    budget, rounds : int
        Rows added per round, and rounds.
    random_state : int, Generator or None
        Seeds every random choice (:func:`round_rng`).
    callback : callable, optional
        Called with a :class:`LabelRound` (with the model fitted after it) after the
        initial fit and after every round, e.g. for a progress bar.
    sample_weight, pool_weight : ndarray, optional
        Training weights of the labeled rows and of the pool rows (see
        :func:`run_rounds`).
    oracle : callable, optional
        For a strategy that sends part of its picks to a person
        (:class:`salutary.review.ReviewStrategy`): ``oracle(rows)`` gives their labels
        (see :func:`run_rounds`). Without it the strategy must be oracle-free.
    X_check, y_check : ndarray, optional
        A held-out check the strategy never sees (:func:`held_out_check`): the rounds
        stop at the first one that does not lower its loss, and that round is dropped.

    Returns
    -------
    rounds : list of LabelRound
        Rounds 1..R as they ran: the rows picked (positions in the pool), their labels
        and scores. Fewer than ``rounds`` when the pool runs out, a round adds nothing
        or the check stops the rounds (see :func:`termination`); in the last case the
        last round has ``kept=False``: its rows were not added.
    model : estimator
        Fitted on the labeled rows plus every row kept.
    """
    if oracle is None:
        strat = oracle_free_strategy(strategy)
    else:
        strat = get_strategy(strategy)
        strat.validate()
    # The whole validation set the user gave, the held-out part included.
    warn_small_validation(len(y_val) + (0 if y_check is None else len(y_check)))
    done: list[LabelRound] = []

    def on_round(r: LabelRound) -> None:
        if r.round > 0:
            done.append(replace(r, model=None))
        if callback is not None:
            callback(r)

    fitted = run_rounds(
        clone(model), strat, X_labeled, y_labeled, pool, X_val, y_val, budget=budget,
        rounds=rounds, rng=round_rng(random_state), on_round=on_round,
        sample_weight=sample_weight, pool_weight=pool_weight, stop_when_empty=True,
        oracle=oracle, X_check=X_check, y_check=y_check,
    )  # fmt: skip
    return done, fitted


def termination(done: list[LabelRound], rounds: int, pool: Pool) -> str:
    """Why :func:`label_pool` stopped, as scikit-learn's ``SelfTrainingClassifier`` says it.

    ``"held_out_loss"``: the held-out check dropped the last round (its refit did not
    lower the held-out loss); ``"no_change"``: the last round added nothing (the
    strategy abstained); ``"all_labeled"``: the pool ran out before ``rounds`` rounds;
    ``"max_iter"``: all ``rounds`` rounds ran.
    """
    if done and not done[-1].kept:
        return "held_out_loss"
    if done and not len(done[-1].rows):
        return "no_change"
    if len(done) < rounds and pool.n_rows == 0:
        return "all_labeled"
    return "max_iter"


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
    check_fraction: float | None = None,
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
        A registered strategy name or spec (``salutary.strategies.STRATEGIES``, e.g.
        ``"margin"`` or ``"salutary-newton:steps=1"``), or a
        :class:`~salutary.strategies.Strategy` instance.
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
    check_fraction : float or None, default=None
        Hold out this share of the validation set from the strategy (stratified, drawn
        with ``seed``) and stop the rounds at the first one that does not lower the loss
        on it, dropping that round (see :func:`run_rounds`); what
        :class:`salutary.SalutaryLabeler` does by default. A strategy spec's ``check=F``
        (``"salutary-newton:check=0.5"``) sets it too. None: no check, all rounds run.

    Returns
    -------
    ActiveLearningResult
    """
    if isinstance(strategy, str):
        check_fraction = loop_options(strategy).get("check", check_fraction)
    strat = get_strategy(strategy)
    X_labeled, y_labeled = check_xy("X_labeled", X_labeled, y_labeled, None)
    d = X_labeled.shape[1]
    if y_pool is None:
        X_pool = check_x("X_pool", X_pool, d)
    else:
        X_pool, y_pool = check_xy("X_pool", X_pool, y_pool, d)
    X_val, y_val = check_xy("X_val", X_val, y_val, d)
    X_test, y_test = check_xy("X_test", X_test, y_test, d)
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

    X_check = y_check = None
    X_steer, y_steer = X_val, y_val
    if check_fraction is not None:
        X_steer, y_steer, X_check, y_check = held_out_check(X_val, y_val, check_fraction, seed)

    model = clone(default_model() if model is None else model)
    rng = np.random.default_rng(seed)
    # A spec ("name:param=value") names the run as given: variants stay apart.
    label = strategy if isinstance(strategy, str) else strat.name or type(strat).__name__
    result = ActiveLearningResult(strategy=label, seed=seed)

    def on_round(done: LabelRound) -> None:
        spent = int(done.asked.sum())  # oracle labels are spent even in a dropped round
        if not done.kept:  # dropped by the check: the round keeps the model it started from
            result.stopped = done.round
            nothing = slice(0, 0)
            done = replace(done, rows=done.rows[nothing], labels=done.labels[nothing],
                           asked=done.asked[nothing], scores=done.scores[nothing],
                           margins=done.margins[nothing], agrees=done.agrees[nothing],
                           held_out_loss=done.held_out_loss_before)  # fmt: skip
        chosen, labels = done.rows, done.labels
        if X_check is not None:
            result.held_out_loss.append(done.held_out_loss)
        result.accuracy.append(float(np.mean(done.model.predict(X_test) == y_test)))
        result.validation_loss.append(validation_loss(done.model, X_val, y_val))
        result.n_labeled.append(len(y_labeled) + sum(len(s) for s in result.selected) + len(chosen))
        result.n_true.append((result.n_true[-1] if result.n_true else 0) + spent)
        if done.round > 0:
            result.selected.append(chosen)
            result.labels.append(labels)
            result.asked.append(done.asked)
            result.scores.append(done.scores)
            result.margins.append(done.margins)
            result.agrees.append(done.agrees)
            result.seconds.append(done.seconds)
            result.agreement.append(
                float(np.mean(labels == y_pool[chosen]))
                if y_pool is not None and len(chosen)
                else np.nan
            )
        if callback is not None:
            callback(done.round, result)

    truth = y_pool
    oracle = (lambda idx: truth[idx]) if truth is not None and strat.requires_oracle else None
    result.model = run_rounds(
        model, strat, X_labeled, y_labeled, ArrayPool(X_pool), X_steer, y_steer,
        budget=budget, rounds=rounds, rng=rng, oracle=oracle, on_round=on_round,
        X_check=X_check, y_check=y_check,
    )  # fmt: skip
    if result.stopped is not None:
        _hold(result, rounds)
    return result


def _hold(result: ActiveLearningResult, rounds: int) -> None:
    """Fill the rounds after the check's stop with the model kept: nothing added, the
    same accuracy, losses and counts (so every run of a grid has ``rounds`` rounds)."""
    for _ in range(len(result.accuracy), rounds + 1):  # after the dropped round
        for name in ("accuracy", "validation_loss", "n_labeled", "n_true", "held_out_loss"):
            values = getattr(result, name)
            values.append(values[-1])
        empty = np.zeros(0, dtype=np.intp)
        result.selected.append(empty)
        result.labels.append(result.labels[-1][:0] if result.labels else empty)
        result.asked.append(np.zeros(0, bool))
        result.scores.append(np.zeros(0))
        result.margins.append(np.zeros(0))
        result.agrees.append(np.zeros(0, bool))
        result.agreement.append(np.nan)
        result.seconds.append(0.0)


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
