"""The practitioner's protocol: a fixed total of true labels, spent however each method
wants, and the test accuracy of the model each method ends with.

A user has ``T`` true labels and an unlabeled pool. Should they train on the ``T``
labels, add standard semi-supervised learning, hold part of them out as validation for
salutary labeling (then train on everything), or spend part of them on margin sampling?
:func:`practitioner_split` draws, per seed, a 20% test set, the ``T`` true labels and the
pool (with its hidden truth); every method below starts from the same split and returns
the final test accuracy and the number of true labels it trained on or used.

Methods (:data:`METHODS`):

* ``all-labeled``: ``LogisticModel(l2)`` on the ``T`` labels (``l2`` = 50, the paper's).
* ``all-labeled-cv``: the same with the penalty chosen by cross-validation on the
  ``T`` labels (:func:`choose_l2`): what a practitioner would tune.
* ``self-training``: the project's ``self-training`` strategy on top of the ``T`` labels
  (``rounds`` rounds of ``budget`` pseudo-labels).
* ``label-spreading``: scikit-learn's ``LabelSpreading`` (kNN kernel) on the ``T``
  labels and at most ``spreading_pool`` pool rows; its own predictions on the test set.
* ``salutary-newton:holdout=f`` and ``salutary:holdout=f``: a share ``f`` of the ``T``
  labels is the validation set, the rest the initial labeled set; ``rounds`` rounds of
  ``budget`` machine labels; the final model is fit on the initial, validation and
  machine-labeled rows.
* ``salutary-crossfit``: all ``T`` labels train and, out of fold, validate; the final
  model is the loop's own (``T`` labels plus the machine labels).
* ``margin``: margin sampling with the pool's hidden truth as the oracle, from
  ``T // 2`` labels, spending the other ``T - T // 2`` in ``rounds`` rounds; the final
  model is fit on the ``T`` true labels.
* ``salutary-newton:holdout=f,l2=cv`` and ``margin:l2=cv``: as above, with the penalty
  chosen by :func:`choose_l2` (on the ``T`` labels; for margin, on its ``T // 2``
  starting labels).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from scipy.stats import wilcoxon
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler
from sklearn.semi_supervised import LabelSpreading
from threadpoolctl import threadpool_limits

from salutary.benchmark.stats import holm
from salutary.datasets import Dataset, load_dataset
from salutary.experiment import stratified_split
from salutary.loop import PAPER_L2, run_active_learning
from salutary.model import LogisticModel

__all__ = [
    "DEFAULT_HOLDOUTS",
    "METHODS",
    "MethodResult",
    "PractitionerSplit",
    "CV_L2",
    "all_labeled",
    "all_labeled_cv",
    "choose_l2",
    "label_spreading",
    "markdown_practitioner",
    "margin_sampling",
    "practitioner_split",
    "run_practitioner",
    "salutary_crossfit",
    "salutary_holdout",
    "self_training",
    "summarize_practitioner",
    "write_atomic",
]

#: Shares of the true labels the salutary strategies hold out as validation.
DEFAULT_HOLDOUTS: tuple[float, ...] = (0.25, 0.5)


@dataclass
class PractitionerSplit:
    """One seed's split: ``T`` true labels, the pool with its hidden truth, a test set.

    Features are standardized by the mean and standard deviation of the non-test rows
    (labeled and pool, no labels), as :func:`salutary.experiment.paper_split` does.
    """

    X_true: np.ndarray
    y_true: np.ndarray
    X_pool: np.ndarray
    y_pool: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    seed: int


@dataclass
class MethodResult:
    """What one method did on one split.

    Attributes
    ----------
    accuracy : float
        Test accuracy of the final model.
    n_true : int
        True labels the method used (for training, validation or from the oracle).
    n_train : int
        Rows the final model was trained on (true and machine labels); for
        ``label-spreading``, the labeled rows plus the pool rows it spread to.
    agreement : float
        Share of machine labels equal to the hidden truth (NaN if none were given).
    """

    accuracy: float
    n_true: int
    n_train: int
    agreement: float = float("nan")


def practitioner_split(
    X: np.ndarray,
    y: np.ndarray,
    total: int,
    *,
    seed: int,
    test_size: float = 0.2,
    standardize: bool = True,
) -> PractitionerSplit:
    """Split a dataset into a test set, ``total`` true labels and a pool.

    The test set (``test_size``, stratified) is drawn first with ``seed``, so it is the
    same for every ``total``; the ``total`` true labels are then drawn stratified from
    the rest with ``seed + 1``; the remaining rows are the pool (truth hidden).

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
    y : array of shape (n_samples,)
    total : int
        True labels, at most half of the non-test rows.
    seed : int
        Seeds every random choice; the same seed gives the same split.
    test_size : float, default=0.2
    standardize : bool, default=True

    Returns
    -------
    PractitionerSplit
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    X_rest, X_test, y_rest, y_test = stratified_split(X, y, test_size, seed)
    if not 2 <= total <= len(y_rest) // 2:
        raise ValueError(
            f"total must be between 2 and half of the {len(y_rest)} non-test rows, got {total}"
        )
    X_pool, X_true, y_pool, y_true = stratified_split(X_rest, y_rest, total, seed + 1)
    if standardize:
        scaler = StandardScaler().fit(X_rest)
        X_true, X_pool, X_test = (scaler.transform(a) for a in (X_true, X_pool, X_test))
    return PractitionerSplit(X_true, y_true, X_pool, y_pool, X_test, y_test, seed)


def _model(l2: float, warm_start: bool = False) -> LogisticModel:
    return LogisticModel(l2=l2, warm_start=warm_start)


def _share(y: np.ndarray, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions of ``y`` split into a kept part and a ``share`` part, stratified; every
    class of ``y`` has a row in the kept part."""
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    first = np.array([rng.choice(np.flatnonzero(y == c)) for c in classes])
    rest = np.setdiff1d(np.arange(len(y)), first)
    n_out = round(share * len(y))
    if n_out > len(rest):
        raise ValueError(f"cannot hold out {n_out} of {len(y)} labels with {len(classes)} classes")
    keep, out, _, _ = stratified_split(rest, y[rest], n_out, seed)
    return np.sort(np.concatenate([first, keep])), np.sort(out)


def all_labeled(split: PractitionerSplit, *, l2: float = PAPER_L2) -> MethodResult:
    """``LogisticModel(l2)`` trained on the ``T`` true labels."""
    model = _model(l2).fit(split.X_true, split.y_true)
    n = len(split.y_true)
    return MethodResult(float(model.score(split.X_test, split.y_test)), n, n)


#: Penalties :func:`all_labeled_cv` chooses from (the paper's 50 among them).
CV_L2: tuple[float, ...] = (0.5, 2.0, 10.0, 50.0, 200.0)


def choose_l2(
    split: PractitionerSplit, *, grid: Sequence[float] = CV_L2, n_folds: int = 5
) -> float:
    """The penalty of ``grid`` with the best stratified ``n_folds``-fold
    cross-validation accuracy of ``LogisticModel`` on the ``T`` labels (ties go to the
    larger penalty; folds seeded by the split's seed).

    The penalty multiplies a summed loss, so a fold fit on a share ``s`` of the rows
    uses ``s`` times it: the per-row strength the final fit has.
    """
    X, y = split.X_true, split.y_true
    k = max(2, min(n_folds, int(np.unique(y, return_counts=True)[1].max())))
    folds = StratifiedKFold(n_splits=k, shuffle=True, random_state=split.seed)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The least populated class")
        parts = list(folds.split(X, y))
    scores = []
    for l2 in grid:
        correct = 0
        for train, test in parts:
            m = _model(l2 * len(train) / len(y)).fit(X[train], y[train])
            correct += int(np.sum(m.predict(X[test]) == y[test]))
        scores.append(correct)
    return float(grid[max(range(len(grid)), key=lambda i: (scores[i], grid[i]))])


def _l2(split: PractitionerSplit, l2: float | str) -> float:
    return choose_l2(split) if l2 == "cv" else float(l2)


def all_labeled_cv(split: PractitionerSplit) -> MethodResult:
    """``LogisticModel`` on the ``T`` labels with the penalty of :func:`choose_l2`."""
    return all_labeled(split, l2=choose_l2(split))


def _loop(split, X_lab, y_lab, X_val, y_val, strategy, *, budget, rounds, l2, oracle):
    return run_active_learning(
        X_lab, y_lab, split.X_pool, X_val, y_val, split.X_test, split.y_test,
        strategy=strategy, budget=budget, rounds=rounds, seed=split.seed,
        y_pool=split.y_pool if oracle else None, model=_model(l2, warm_start=True),
    )  # fmt: skip


def _agreement(split: PractitionerSplit, result) -> float:
    rows = np.concatenate(result.selected) if result.selected else np.array([], int)
    labels = np.concatenate(result.labels) if result.labels else np.array([])
    return float(np.mean(labels == split.y_pool[rows])) if len(rows) else float("nan")


def self_training(
    split: PractitionerSplit, *, l2: float = PAPER_L2, budget: int = 10, rounds: int = 10
) -> MethodResult:
    """The ``self-training`` strategy on top of the ``T`` labels; its final model."""
    res = _loop(
        split, split.X_true, split.y_true, split.X_true, split.y_true, "self-training",
        budget=budget, rounds=rounds, l2=l2, oracle=False,
    )  # fmt: skip
    n = len(split.y_true)
    return MethodResult(res.accuracy[-1], n, res.n_labeled[-1], _agreement(split, res))


def label_spreading(
    split: PractitionerSplit,
    *,
    spreading_pool: int = 5000,
    n_neighbors: int = 7,
    alpha: float = 0.2,
) -> MethodResult:
    """``LabelSpreading(kernel="knn")`` on the ``T`` labels and at most
    ``spreading_pool`` pool rows (drawn with the split's seed); test accuracy of its
    own predictions."""
    rng = np.random.default_rng(split.seed)
    n_pool = len(split.y_pool)
    rows = np.sort(rng.choice(n_pool, min(spreading_pool, n_pool), replace=False))
    classes, y_index = np.unique(split.y_true, return_inverse=True)
    X = np.vstack([split.X_true, split.X_pool[rows]])
    y = np.concatenate([y_index, np.full(len(rows), -1)])
    ls = LabelSpreading(kernel="knn", n_neighbors=n_neighbors, alpha=alpha, max_iter=100)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter reached: the estimate is still usable
        ls.fit(X, y)
    pred = classes[ls.predict(split.X_test)]
    spread = classes[ls.transduction_[len(split.y_true) :]]
    agree = float(np.mean(spread == split.y_pool[rows]))
    return MethodResult(float(np.mean(pred == split.y_test)), len(split.y_true), len(y), agree)


def salutary_holdout(
    split: PractitionerSplit,
    *,
    strategy: str = "salutary-newton",
    holdout: float = 0.25,
    l2: float | str = PAPER_L2,
    budget: int = 10,
    rounds: int = 10,
    final_model: Callable[[np.ndarray, np.ndarray], object] | None = None,
) -> MethodResult:
    """Hold out ``holdout`` of the ``T`` labels as validation, run an oracle-free
    ``strategy`` for ``rounds`` rounds of ``budget`` machine labels, then fit
    ``LogisticModel(l2)`` on the initial, validation and machine-labeled rows.

    ``final_model(X, y)``, if given, is called with those rows instead (tests use it to
    see them). ``l2="cv"``: the loop's and the final model's penalty is
    :func:`choose_l2`'s, chosen on all ``T`` labels.
    """
    l2 = _l2(split, l2)
    keep, val = _share(split.y_true, holdout, split.seed + 2)
    X_lab, y_lab = split.X_true[keep], split.y_true[keep]
    X_val, y_val = split.X_true[val], split.y_true[val]
    res = _loop(
        split, X_lab, y_lab, X_val, y_val, strategy,
        budget=budget, rounds=rounds, l2=l2, oracle=False,
    )  # fmt: skip
    rows = np.concatenate(res.selected)
    X = np.vstack([X_lab, X_val, split.X_pool[rows]])
    y = np.concatenate([y_lab, y_val, np.concatenate(res.labels).astype(y_lab.dtype)])
    if final_model is not None:
        final_model(X, y)
    model = _model(l2).fit(X, y)
    acc = float(model.score(split.X_test, split.y_test))
    return MethodResult(acc, len(split.y_true), len(y), _agreement(split, res))


def salutary_crossfit(
    split: PractitionerSplit,
    *,
    l2: float = PAPER_L2,
    budget: int = 10,
    rounds: int = 10,
    n_folds: int = 5,
) -> MethodResult:
    """``salutary-crossfit``: every one of the ``T`` labels trains and, out of fold,
    validates; the final model is the loop's (``T`` labels plus machine labels).
    ``n_folds`` is capped at the row count of the largest class."""
    # At most as many folds as the largest class has rows (26 letters in 100 labels).
    folds = min(n_folds, int(np.unique(split.y_true, return_counts=True)[1].max()))
    res = _loop(
        split, split.X_true, split.y_true, split.X_true, split.y_true,
        f"salutary-crossfit:n_folds={folds}", budget=budget, rounds=rounds, l2=l2, oracle=False,
    )  # fmt: skip
    n = len(split.y_true)
    return MethodResult(res.accuracy[-1], n, res.n_labeled[-1], _agreement(split, res))


def margin_sampling(
    split: PractitionerSplit,
    *,
    l2: float | str = PAPER_L2,
    rounds: int = 10,
    oracle_calls: list[int] | None = None,
) -> MethodResult:
    """Margin sampling that spends the same ``T`` true labels: ``T // 2`` at the start,
    the rest from the pool's hidden truth in ``rounds`` rounds (the last rounds take
    one label more when ``T - T // 2`` is not a multiple of ``rounds``, so exactly ``T``
    are spent); the final model is fit on the ``T`` true labels.

    ``oracle_calls``, if given, receives the number of truths each oracle call returned.
    ``l2="cv"``: the penalty of :func:`choose_l2` on the ``T // 2`` starting labels
    (the only ones there are when it must be chosen).
    """
    total = len(split.y_true)
    start, _ = _share(split.y_true, 1 - (total // 2) / total, split.seed + 2)
    X_lab, y_lab = split.X_true[start], split.y_true[start]
    if l2 == "cv":
        l2 = choose_l2(dataclasses.replace(split, X_true=X_lab, y_true=y_lab))
    l2 = float(l2)
    spend = total - len(start)
    sizes = [spend // rounds + (r >= rounds - spend % rounds) for r in range(rounds)]
    sizes = [s for s in sizes if s > 0]
    # Rounds of unequal size: one loop per distinct size, each from the last one's labels.
    asked: list[int] = []
    X_cur, y_cur = X_lab, y_lab
    taken = np.zeros(len(split.y_pool), bool)
    for size in sorted(set(sizes)):
        n_rounds = sizes.count(size)
        pool_idx = np.flatnonzero(~taken)
        sub = PractitionerSplit(
            X_cur, y_cur, split.X_pool[pool_idx], split.y_pool[pool_idx],
            split.X_test, split.y_test, split.seed,
        )  # fmt: skip
        res = _loop(
            sub, X_cur, y_cur, X_lab, y_lab, "margin",
            budget=size, rounds=n_rounds, l2=l2, oracle=True,
        )  # fmt: skip
        rows = pool_idx[np.concatenate(res.selected)]
        asked.extend(int(a.sum()) for a in res.asked)
        taken[rows] = True
        X_cur = np.vstack([X_cur, split.X_pool[rows]])
        y_cur = np.concatenate([y_cur, split.y_pool[rows]])
    if oracle_calls is not None:
        oracle_calls.extend(asked)
    model = _model(l2).fit(X_cur, y_cur)
    n_true = len(y_lab) + sum(asked)
    return MethodResult(float(model.score(split.X_test, split.y_test)), n_true, len(y_cur))


def _methods(holdouts: Sequence[float]) -> dict[str, Callable[..., MethodResult]]:
    out: dict[str, Callable[..., MethodResult]] = {
        "all-labeled": all_labeled,
        "all-labeled-cv": all_labeled_cv,
        "self-training": self_training,
        "label-spreading": label_spreading,
    }
    for strategy in ("salutary-newton", "salutary"):
        for f in holdouts:
            out[f"{strategy}:holdout={f:g}"] = functools.partial(
                salutary_holdout, strategy=strategy, holdout=f
            )
    out["salutary-crossfit"] = salutary_crossfit
    out["margin"] = margin_sampling
    # The same with the penalty chosen by cross-validation on the true labels.
    for f in holdouts:
        out[f"salutary-newton:holdout={f:g},l2=cv"] = functools.partial(
            salutary_holdout, strategy="salutary-newton", holdout=f, l2="cv"
        )
    out["margin:l2=cv"] = functools.partial(margin_sampling, l2="cv")
    return out


#: Every method of the protocol by name, with the default holdout shares.
METHODS: dict[str, Callable[..., MethodResult]] = _methods(DEFAULT_HOLDOUTS)


@functools.lru_cache(maxsize=2)
def _dataset(name: str) -> Dataset:
    return load_dataset(name)


def _one(dataset: str, total: int, seed: int, methods: Sequence[str]) -> list[dict]:
    data = _dataset(dataset)
    rows = []
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        split = practitioner_split(data.X, data.y, total, seed=seed)
        for name in methods:
            t0 = time.perf_counter()
            row = {"dataset": dataset, "total": total, "seed": seed, "method": name}
            try:
                r = METHODS[name](split)
            except Exception as exc:  # recorded; the other methods and tasks go on
                row |= {"accuracy": np.nan, "error": f"{type(exc).__name__}: {exc}"}
            else:
                row |= {"accuracy": r.accuracy, "n_true": r.n_true, "n_train": r.n_train,
                        "agreement": r.agreement, "error": ""}  # fmt: skip
            rows.append(row | {"seconds": time.perf_counter() - t0})
    return rows


def write_atomic(frame: pd.DataFrame, path: str | Path) -> None:
    """Write ``frame`` to ``path`` (Parquet if it ends in ``.parquet``, else CSV) through
    a temporary file in the same folder, renamed into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp's file is private; the result is not
    try:
        if path.suffix == ".parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


def run_practitioner(
    datasets: Sequence[str],
    totals: Sequence[int],
    seeds: Sequence[int],
    *,
    methods: Sequence[str] | None = None,
    n_jobs: int = 1,
    output: str | Path | None = None,
    resume: bool = False,
    on_done: Callable[[str, int, int], None] | None = None,
) -> pd.DataFrame:
    """Run every method on every (dataset, total, seed); one row per method.

    A ``total`` larger than half of a dataset's non-test rows is skipped. Each task
    runs with one BLAS thread; with ``output``, the rows so far are rewritten
    atomically after every task.

    Parameters
    ----------
    datasets : sequence of str
        Names for :func:`salutary.datasets.load_dataset`.
    totals : sequence of int
        Numbers of true labels ``T``.
    seeds : sequence of int
    methods : sequence of str, optional
        Names in :data:`METHODS`; all by default.
    n_jobs : int, default=1
        Worker processes (joblib).
    output : str or Path, optional
        CSV or Parquet file for the results.
    resume : bool, default=False
        Keep the rows ``output`` already holds (those with an accuracy) and run only
        the missing (dataset, total, seed, method).
    on_done : callable, optional
        ``on_done(dataset, total, seed)`` after each task.

    Returns
    -------
    pandas.DataFrame
        Columns ``dataset, total, seed, method, accuracy, n_true, n_train, agreement,
        seconds, error`` (a method that raised has NaN accuracy and its error).
    """
    methods = list(METHODS) if methods is None else list(methods)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown methods {unknown}; choose from {', '.join(METHODS)}")
    rows: list[dict] = []
    done: set[tuple[str, int, int, str]] = set()
    if resume and output is not None and Path(output).exists():
        old = _read(output)
        old = old[old["accuracy"].notna()]
        rows = old.to_dict("records")
        done = set(zip(old["dataset"], old["total"], old["seed"], old["method"], strict=True))
    tasks: list[tuple[str, int, int, list[str]]] = []
    for d in datasets:
        n = len(_dataset(d).y)
        n_rest = n - int(np.ceil(0.2 * n))
        for t in totals:
            for s in seeds:
                todo = [m for m in methods if (d, t, s, m) not in done]
                if t <= n_rest // 2 and todo:
                    tasks.append((d, t, s, todo))
    columns = ["dataset", "total", "seed", "method", "accuracy", "n_true", "n_train",
               "agreement", "seconds", "error"]  # fmt: skip
    parallel = Parallel(n_jobs=n_jobs, return_as="generator_unordered")
    for part in parallel(delayed(_one)(d, t, s, todo) for d, t, s, todo in tasks):
        rows.extend(part)
        if output is not None:
            write_atomic(pd.DataFrame(rows, columns=columns), output)
        if on_done is not None:
            on_done(part[0]["dataset"], part[0]["total"], part[0]["seed"])
    out = pd.DataFrame(rows, columns=columns)
    out = out.sort_values(["dataset", "total", "seed", "method"]).reset_index(drop=True)
    if output is not None:
        write_atomic(out, output)
    return out


def summarize_practitioner(results: pd.DataFrame, baseline: str = "all-labeled") -> pd.DataFrame:
    """Mean final accuracy per (dataset, total, method) and a paired test against
    ``baseline``.

    The test is Wilcoxon's signed-rank test over seeds (two-sided; NaN when all
    differences are zero or fewer than two seeds are paired), its p-values
    Holm-corrected across datasets for each (total, method).

    Returns
    -------
    pandas.DataFrame
        Columns ``dataset, total, method, mean, diff, wins, n, p, p_holm``: ``diff``
        is the mean of ``accuracy - baseline`` over paired seeds, ``wins`` the seeds
        where the method beat the baseline.
    """
    out = []
    for (d, t), part in results.groupby(["dataset", "total"], sort=True):
        wide = part.pivot_table(index="seed", columns="method", values="accuracy")
        for m in wide.columns:
            diff = (wide[m] - wide[baseline]).dropna()
            p = float("nan")
            if m != baseline and len(diff) >= 2 and np.any(diff != 0):
                p = float(wilcoxon(diff).pvalue)
            out.append(
                {"dataset": d, "total": t, "method": m, "mean": float(wide[m].mean()),
                 "diff": float(diff.mean()), "wins": int((diff > 0).sum()), "n": len(diff),
                 "p": p}
            )  # fmt: skip
    table = pd.DataFrame(out)
    table["p_holm"] = np.nan
    for _, idx in table.groupby(["total", "method"]).groups.items():
        table.loc[idx, "p_holm"] = holm(table.loc[idx, "p"].to_numpy())
    return table


def markdown_practitioner(
    table: pd.DataFrame, methods: Sequence[str] | None = None, alpha: float = 0.05
) -> str:
    """A Markdown table of :func:`summarize_practitioner`: one row per (dataset, total),
    one column per method, mean accuracy in percent and, for the other methods, the
    mean difference to the baseline in points, with ``▲``/``▼`` where the
    Holm-corrected p-value is below ``alpha``; then a row per method counting
    significant wins and losses and the mean difference over all rows."""
    methods = list(dict.fromkeys(table["method"])) if methods is None else list(methods)
    base = table[table["p"].isna() & (table["diff"] == 0)]["method"].mode()
    baseline = str(base.iloc[0]) if len(base) else methods[0]
    idx = table.set_index(["dataset", "total", "method"])
    lines = [
        "| dataset | T | " + " | ".join(f"`{m}`" for m in methods) + " |",
        "|---|---:|" + "---:|" * len(methods),
    ]
    for (d, t), _ in table.groupby(["dataset", "total"], sort=True):
        cells = []
        for m in methods:
            if (d, t, m) not in idx.index:
                cells.append("")
                continue
            r = idx.loc[(d, t, m)]
            cell = f"{100 * r['mean']:.2f}"
            if m != baseline:
                mark = ""
                if r["p_holm"] < alpha:
                    mark = " ▲" if r["diff"] > 0 else " ▼"
                cell += f" ({100 * r['diff']:+.2f}{mark})"
            cells.append(cell)
        lines.append(f"| {d} | {t} | " + " | ".join(cells) + " |")
    counts = []
    for m in methods:
        part = table[table["method"] == m]
        if m == baseline:
            counts.append("")
            continue
        win = int(((part["p_holm"] < alpha) & (part["diff"] > 0)).sum())
        loss = int(((part["p_holm"] < alpha) & (part["diff"] < 0)).sum())
        counts.append(f"{win} ▲ / {loss} ▼, {100 * part['diff'].mean():+.2f}")
    lines.append("| **all** | | " + " | ".join(counts) + " |")
    return "\n".join(lines)
