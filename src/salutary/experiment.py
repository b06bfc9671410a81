"""The paper's experiment protocol: split, run strategies over seeds, summarize, plot."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from salutary._io import atomic_write
from salutary.loop import PAPER_L2, ActiveLearningResult, run_active_learning
from salutary.model import LogisticModel
from salutary.strategies import STRATEGIES, parse_strategy

__all__ = [
    "DEFAULT_STRATEGIES",
    "Split",
    "learning_curve_plot",
    "paper_split",
    "run_experiment",
    "run_split",
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


def _oracle_free(strategy: str) -> bool:
    """Whether a strategy name or spec labels its picks itself (unknown: no)."""
    try:
        return not parse_strategy(strategy)[0].requires_oracle
    except ValueError:
        return False


def _strategy_rank(strategy: str) -> tuple[int, str]:
    """Registry order; a spec (``name:param=value``) right after its base strategy."""
    order = list(STRATEGIES)
    base = strategy.split(":")[0]
    return (order.index(base) if base in order else len(order), strategy)


def _stratified(X, y, size, seed):
    try:
        return train_test_split(X, y, test_size=size, random_state=seed, stratify=y)
    except ValueError:  # a class too rare to stratify on
        return train_test_split(X, y, test_size=size, random_state=seed)


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
    X_rest, X_test, y_rest, y_test = _stratified(X, y, test_size, seed)
    val_frac = val_size / (1.0 - test_size)
    X_train, X_val, y_train, y_val = _stratified(X_rest, y_rest, val_frac, seed + 1)
    n_init = min(n_initial, len(y_train) // 4)
    # One sample of every class first, so the validation set has no class the model
    # cannot predict; the rest stratified.
    rng = np.random.default_rng(seed + 2)
    classes = np.unique(y_train)
    first = np.array([rng.choice(np.flatnonzero(y_train == c)) for c in classes])
    rest = np.setdiff1d(np.arange(len(y_train)), first)
    n_more = max(n_init - len(first), 0)
    if n_more:
        pool_idx, more, _, _ = _stratified(rest, y_train[rest], n_more, seed + 2)
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


def _one_run(X, y, strategy, seed, budget, rounds, l2, n_initial) -> pd.DataFrame:
    split = paper_split(X, y, seed=seed, n_initial=n_initial)
    return run_split(split, strategy, seed=seed, budget=budget, rounds=rounds, l2=l2).to_frame()


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
) -> pd.DataFrame:
    """Run every strategy on every seed's :func:`paper_split`; one row per round.

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

    Returns
    -------
    pandas.DataFrame
        Columns ``strategy, seed, round, n_labeled, accuracy, validation_loss,
        label_agreement, seconds``.
    """
    for s in strategies:
        parse_strategy(s)  # unknown names and parameters fail here, before any run
    jobs = [(s, int(seed)) for seed in seeds for s in strategies]
    frames: list[pd.DataFrame] = []
    if n_jobs == 1:
        for s, seed in jobs:
            frames.append(_one_run(X, y, s, seed, budget, rounds, l2, n_initial))
            if on_done is not None:
                on_done(s, seed)
    else:
        from joblib import Parallel, delayed

        parallel = Parallel(n_jobs=n_jobs, return_as="generator_unordered")
        tasks = (
            delayed(_one_run)(X, y, s, seed, budget, rounds, l2, n_initial) for s, seed in jobs
        )
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


def learning_curve_plot(
    results: pd.DataFrame, path: str | Path, *, title: str = "", budget: int | None = None
) -> Path:
    """Mean test accuracy per round with a band of one standard deviation; saves a PNG.

    Solid lines are strategies that use no oracle, dashed ones get true labels.

    Parameters
    ----------
    results : DataFrame
        Rounds of runs: columns ``strategy``, ``seed``, ``round``, ``accuracy``.
    path : str or Path
        The image, written atomically (its extension chooses the format).
    title : str, optional
    budget : int, optional
        Samples per round; the x axis then counts samples added instead of rounds.

    Returns
    -------
    Path
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = summarize(results)
    summary = summary.sort_values(
        ["strategy", "round"], key=lambda c: c.map(_strategy_rank) if c.name == "strategy" else c
    )
    n_strategies = summary["strategy"].nunique()
    colors = plt.get_cmap("tab10" if n_strategies <= 10 else "tab20").colors
    alpha = 0.12 if n_strategies <= 4 else 0.05  # many overlapping bands: keep lines legible
    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=120)
    for i, (strategy, part) in enumerate(summary.groupby("strategy", sort=False)):
        x = part["round"].to_numpy() * (budget or 1)
        m, s = part["mean"].to_numpy(), part["std"].to_numpy()
        free = _oracle_free(strategy)
        color = "black" if strategy == "salutary" else colors[i % len(colors)]
        width = 2.2 if strategy == "salutary" else 1.3
        style = "-" if free else "--"
        ax.plot(x, m, style, color=color, lw=width, marker="o", markersize=3, label=strategy)
        ax.fill_between(x, m - s, m + s, color=color, alpha=alpha)
    ax.set_xlabel("samples added" if budget else "round")
    ax.set_ylabel("test accuracy")
    n_seeds = results["seed"].nunique()
    ax.set_title(f"{title} (mean ± std over {n_seeds} seeds)" if title else "")
    ax.grid(alpha=0.3)
    ax.legend(
        fontsize=7,
        title="solid: no oracle\ndashed: true labels",
        title_fontsize=7,
        loc="center left",
        bbox_to_anchor=(1.0, 0.5),
    )
    fig.tight_layout()
    try:
        return atomic_write(path, fig.savefig)
    finally:
        plt.close(fig)
