"""The paper's experiment protocol: split, run strategies over seeds, summarize."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from salutary.loop import PAPER_L2, ActiveLearningResult, run_active_learning, stratified_split
from salutary.model import LogisticModel
from salutary.strategies import STRATEGIES, parse_strategy

__all__ = [
    "DEFAULT_STRATEGIES",
    "SPLITS",
    "Split",
    "authors_split",
    "paper_split",
    "run_experiment",
    "run_split",
    "stratified_split",
    "summarize",
]

#: Every strategy of the core, oracle-free first.
DEFAULT_STRATEGIES: tuple[str, ...] = tuple(STRATEGIES)


@dataclass
class Split:
    """One seed's data split (features already standardized)."""

    X_labeled: np.ndarray
    y_labeled: np.ndarray
    X_pool: np.ndarray
    y_pool: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


def paper_split(
    X: np.ndarray,
    y: np.ndarray,
    *,
    seed: int,
    n_initial: int = 300,
    test_size: float = 0.2,
    val_size: float = 0.2,
    standardize: bool = True,
) -> Split:
    """Split as in the paper: 20% test, 20% labeled validation, the rest a training pool
    from which ``n_initial`` labeled samples are drawn (stratified).

    The initial set holds at least one sample of every class in the pool; validation
    samples of a class absent from the pool are dropped. ``n_initial`` is capped at a
    quarter of the pool for small datasets.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
    y : array of shape (n_samples,)
    seed : int
        Seeds every random choice of the split; the same seed gives the same split.
    n_initial : int, default=300
        Initial labeled samples.
    test_size, val_size : float, default=0.2
        Fractions of the whole dataset held out for testing and labeled validation.
    standardize : bool, default=True
        Scale the features by mean and standard deviation of the training pool
        (labeled + unlabeled features, no labels), then apply that to all parts.

    Returns
    -------
    Split
        Labeled, pool (with its hidden labels), validation and test parts.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    X_rest, X_test, y_rest, y_test = stratified_split(X, y, test_size, seed)
    val_frac = val_size / (1.0 - test_size)
    X_train, X_val, y_train, y_val = stratified_split(X_rest, y_rest, val_frac, seed + 1)
    n_init = min(n_initial, len(y_train) // 4)
    # One sample of every class first, so the validation set has no class the model
    # cannot predict; the rest stratified.
    rng = np.random.default_rng(seed + 2)
    classes = np.unique(y_train)
    first = np.array([rng.choice(np.flatnonzero(y_train == c)) for c in classes])
    rest = np.setdiff1d(np.arange(len(y_train)), first)
    n_more = max(n_init - len(first), 0)
    if n_more:
        pool_idx, more, _, _ = stratified_split(rest, y_train[rest], n_more, seed + 2)
    else:
        pool_idx, more = rest, rest[:0]
    lab_idx = np.concatenate([first, more])
    X_lab, y_lab = X_train[lab_idx], y_train[lab_idx]
    X_pool, y_pool = X_train[pool_idx], y_train[pool_idx]
    # A class seen only in validation/test cannot be learned: drop it from validation.
    keep = np.isin(y_val, classes)
    X_val, y_val = X_val[keep], y_val[keep]
    if standardize:
        scaler = StandardScaler().fit(np.vstack([X_lab, X_pool]))
        X_lab, X_pool, X_val, X_test = (scaler.transform(a) for a in (X_lab, X_pool, X_val, X_test))
    return Split(X_lab, y_lab, X_pool, y_pool, X_val, y_val, X_test, y_test)


#: Rows of a class with fewer rows than this are dealt out by :func:`authors_split`
#: instead of stratified (Wine Quality's five quality-9 wines).
RARE_CLASS_ROWS = 10

#: Where :func:`authors_split` deals a rare class's rows, in turn.
_RARE_DEAL = ("pool", "pool", "initial", "validation", "test")


def authors_split(
    X: np.ndarray,
    y: np.ndarray,
    *,
    seed: int = 1,
    n_initial: int = 300,
    test_size: float = 0.2,
    val_size: float = 0.2,
) -> Split:
    """Split as the authors' Wine Quality notebook does: three stratified splits, raw
    features.

    Rows of classes with fewer than :data:`RARE_CLASS_ROWS` rows are set aside first.
    The rest is split, each time stratified with ``random_state=seed``: ``test_size``
    of it for testing, then ``val_size`` of the whole (``val_size / (1 - test_size)``
    of the remainder) for validation, then ``n_initial`` initial labels, the rest
    being the pool. The rare rows, shuffled, are then appended in turn to the pool,
    the pool, the initial set, validation and test (Wine Quality's five quality-9 rows:
    two to the pool, one to each other part). Nothing is scaled.

    ``seed=1`` is the notebook's split: its splits use ``random_state=1`` and it
    shuffles the rare rows with NumPy's global generator seeded 0. Seed ``s`` uses
    ``random_state=s`` and shuffles with a legacy ``RandomState((s - 1) mod 2**32)``.
    ``n_initial`` is capped at a quarter of the training part (small datasets).

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
    y : array of shape (n_samples,)
    seed : int, default=1
    n_initial : int, default=300
    test_size, val_size : float, default=0.2

    Returns
    -------
    Split
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    classes, counts = np.unique(y, return_counts=True)
    rare_mask = np.isin(y, classes[counts < RARE_CLASS_ROWS])
    rare = np.flatnonzero(rare_mask)
    # The notebook shuffles in place with the legacy global generator seeded 0.
    np.random.RandomState((seed - 1) % 2**32).shuffle(rare)
    Xc, yc = X[~rare_mask], y[~rare_mask]
    X_rest, X_test, y_rest, y_test = train_test_split(
        Xc, yc, test_size=test_size, random_state=seed, stratify=yc
    )
    X_train, X_val, y_train, y_val = train_test_split(
        X_rest, y_rest, test_size=val_size / (1.0 - test_size), random_state=seed,
        stratify=y_rest,
    )  # fmt: skip
    n_init = min(n_initial, len(y_train) // 4)
    X_pool, X_lab, y_pool, y_lab = train_test_split(
        X_train, y_train, test_size=n_init, random_state=seed, stratify=y_train
    )
    parts = {
        "pool": [(X_pool, y_pool)],
        "initial": [(X_lab, y_lab)],
        "validation": [(X_val, y_val)],
        "test": [(X_test, y_test)],
    }
    for i, row in enumerate(rare):
        parts[_RARE_DEAL[i % len(_RARE_DEAL)]].append((X[row : row + 1], y[row : row + 1]))
    (X_pool, y_pool), (X_lab, y_lab), (X_val, y_val), (X_test, y_test) = (
        (np.vstack([a for a, _ in v]), np.concatenate([b for _, b in v])) for v in parts.values()
    )
    return Split(X_lab, y_lab, X_pool, y_pool, X_val, y_val, X_test, y_test)


def run_split(
    split: Split,
    strategy: str,
    *,
    seed: int,
    budget: int,
    rounds: int,
    l2: float = PAPER_L2,
    train_on_validation: bool = False,
    model: object | None = None,
) -> ActiveLearningResult:
    """Run one strategy on one split with a warm-started ``LogisticModel(l2)``.

    Parameters
    ----------
    split : Split
        From :func:`paper_split`.
    strategy : str
        A strategy name or spec (``name:param=value``); oracle strategies are given
        the true labels of their picks only.
    seed : int
        Seeds the strategy's random choices.
    budget : int
        Samples added per round.
    rounds : int
    l2 : float, default=50
        Penalty of the default model.
    train_on_validation : bool, default=False
        The ``fair`` protocol: the initial labeled set is L ∪ V; influence-based
        strategies still measure influence on V.
    model : estimator, optional
        Replaces the default model (``l2`` is then ignored).

    Returns
    -------
    ActiveLearningResult
        Test accuracy per round (R + 1 values), the picks and the labels given.
    """
    X_lab, y_lab = split.X_labeled, split.y_labeled
    if train_on_validation:
        X_lab = np.vstack([X_lab, split.X_val])
        y_lab = np.concatenate([y_lab, split.y_val])
    return run_active_learning(
        X_lab,
        y_lab,
        split.X_pool,
        split.X_val,
        split.y_val,
        split.X_test,
        split.y_test,
        strategy=strategy,
        budget=budget,
        rounds=rounds,
        seed=seed,
        y_pool=split.y_pool,
        model=LogisticModel(l2=l2, warm_start=True) if model is None else model,
    )


#: The splits :func:`run_experiment` can make, by name.
SPLITS: dict[str, Callable[..., Split]] = {"paper": paper_split, "authors": authors_split}


def _one_run(X, y, strategy, seed, budget, rounds, l2, n_initial, split, fit_intercept):
    part = SPLITS[split](X, y, seed=seed, n_initial=n_initial)
    model = LogisticModel(l2=l2, fit_intercept=fit_intercept, warm_start=True)
    result = run_split(part, strategy, seed=seed, budget=budget, rounds=rounds, model=model)
    return result.to_frame()


def run_experiment(
    X: np.ndarray,
    y: np.ndarray,
    *,
    strategies: Sequence[str] = DEFAULT_STRATEGIES,
    seeds: Sequence[int] = range(5),
    budget: int = 10,
    rounds: int = 10,
    l2: float = PAPER_L2,
    n_initial: int = 300,
    n_jobs: int = 1,
    on_done: Callable[[str, int], None] | None = None,
    split: str = "paper",
    fit_intercept: bool = True,
) -> pd.DataFrame:
    """Run every strategy on every seed's split; one row per round.

    Every strategy sees the same split and initial labeled set for a given seed, so
    results are paired across strategies.

    Parameters
    ----------
    X, y : array-like
        The whole dataset.
    strategies : sequence of str
    seeds : sequence of int
    budget, rounds : int
    l2 : float
        Penalty of the :class:`LogisticModel`.
    n_initial : int
        Initial labeled samples.
    n_jobs : int
        Worker processes (joblib); 1 runs in this process.
    on_done : callable
        Called as ``on_done(strategy, seed)`` when a run finishes (progress bars).
    split : {"paper", "authors"}, default="paper"
        :func:`paper_split` (standardized features) or :func:`authors_split` (the
        authors' notebook, raw features).
    fit_intercept : bool, default=True
        Whether the :class:`LogisticModel` has an intercept (the authors' has none).

    Returns
    -------
    pandas.DataFrame
        Columns ``strategy, seed, round, n_labeled, accuracy, validation_loss,
        label_agreement, seconds``.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
    for s in strategies:
        parse_strategy(s)  # unknown names and parameters fail here, before any run
    jobs = [(s, int(seed)) for seed in seeds for s in strategies]
    settings = (budget, rounds, l2, n_initial, split, fit_intercept)
    frames: list[pd.DataFrame] = []
    if n_jobs == 1:
        for s, seed in jobs:
            frames.append(_one_run(X, y, s, seed, *settings))
            if on_done is not None:
                on_done(s, seed)
    else:
        parallel = Parallel(n_jobs=n_jobs, return_as="generator_unordered")
        tasks = (delayed(_one_run)(X, y, s, seed, *settings) for s, seed in jobs)
        for frame in parallel(tasks):
            frames.append(frame)
            if on_done is not None:
                on_done(str(frame["strategy"].iloc[0]), int(frame["seed"].iloc[0]))
    out = pd.concat(frames, ignore_index=True)
    order = {s: i for i, s in enumerate(strategies)}
    out = out.sort_values(
        ["strategy", "seed", "round"], key=lambda c: c.map(order) if c.name == "strategy" else c
    )
    return out.reset_index(drop=True)


def summarize(results: pd.DataFrame, value: str = "accuracy") -> pd.DataFrame:
    """Mean and standard deviation over seeds, one row per strategy and round.

    Parameters
    ----------
    results : DataFrame
        Rounds of runs: columns ``strategy``, ``round`` and ``value``.
    value : str, default="accuracy"

    Returns
    -------
    DataFrame
        Columns ``strategy``, ``round``, ``mean``, ``std`` (0 for a single seed),
        ``count``.
    """
    g = results.groupby(["strategy", "round"], sort=False)[value]
    out = g.agg(["mean", "std", "count"]).reset_index()
    out["std"] = out["std"].fillna(0.0)
    return out
