"""Statistics across datasets: Holm's correction, the Friedman test, Nemenyi's critical
difference and its diagram (Demšar, 2006, "Statistical comparisons of classifiers over
multiple data sets", JMLR 7)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy.stats import chi2, rankdata, studentized_range

from salutary._io import atomic_write

__all__ = ["ALPHA", "Friedman", "cd_diagram", "critical_difference", "friedman", "holm"]

#: Significance level of the tests in the report.
ALPHA = 0.05


def holm(p: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values, controlling the family-wise error rate.

    With the ``m`` p-values that are not NaN sorted, ``p_(1) <= ... <= p_(m)``, the
    adjusted value of ``p_(i)`` is ``max_{j <= i} min(1, (m - j + 1) p_(j))``; rejecting
    where it is below ``alpha`` is Holm's procedure at level ``alpha``.

    Parameters
    ----------
    p : array-like of float
        One family of p-values; NaN (no test) stays NaN and does not count in ``m``.

    Returns
    -------
    ndarray
        The adjusted p-values, in the order given.
    """
    p = np.asarray(p, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    tested = np.flatnonzero(~np.isnan(p))
    m = len(tested)
    if m:
        order = tested[np.argsort(p[tested], kind="stable")]
        scaled = (m - np.arange(m)) * p[order]
        out[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return out


@dataclass
class Friedman:
    """Friedman test over datasets and the Nemenyi critical difference of its ranks.

    Attributes
    ----------
    statistic : float
        Friedman's chi-squared (with the correction for ties), ``k - 1`` degrees of
        freedom.
    p : float
    ranks : pandas.Series
        Average rank of each strategy over the datasets (1 = best), ascending.
    n_datasets : int
    cd : float
        Nemenyi critical difference of average ranks at level ``alpha``.
    alpha : float
    """

    statistic: float
    p: float
    ranks: pd.Series
    n_datasets: int
    cd: float
    alpha: float


def critical_difference(k: int, n: int, alpha: float = ALPHA) -> float:
    """Nemenyi critical difference ``q_alpha sqrt(k (k + 1) / (6 n))`` (Demšar, 2006).

    ``q_alpha`` is the studentized range quantile for ``k`` groups and infinite degrees
    of freedom divided by ``sqrt(2)``. Two of ``k`` strategies ranked over ``n`` datasets
    differ significantly when their average ranks differ by at least this much.
    """
    q = studentized_range.ppf(1.0 - alpha, k, np.inf) / np.sqrt(2.0)
    return float(q * np.sqrt(k * (k + 1) / (6.0 * n)))


def friedman(table: pd.DataFrame, alpha: float = ALPHA) -> Friedman:
    """Friedman test of the strategies (columns) over the datasets (rows) of ``table``.

    In each row the strategies are ranked, the highest value first (ties share their
    average rank); ``chi2 = (12 n / (k (k + 1)) sum_j R_j^2 - 3 n (k + 1)) / c`` with
    ``R_j`` the average ranks and ``c = 1 - sum(t^3 - t) / (n (k^3 - k))`` over the
    groups of ``t`` tied values.

    Parameters
    ----------
    table : DataFrame
        Datasets x strategies, no missing value (:func:`rank_table`); higher is better.
    alpha : float, default=ALPHA
        Level of the critical difference.

    Returns
    -------
    Friedman
    """
    values = table.to_numpy(np.float64)
    n, k = values.shape
    if n < 2 or k < 2:
        raise ValueError(f"the Friedman test needs 2 datasets and 2 strategies, got {n} x {k}")
    ranks = np.vstack([rankdata(-row) for row in values])
    mean = ranks.mean(axis=0)
    ties = sum(float(np.sum(t**3 - t)) for t in (np.unique(row, return_counts=True)[1]
                                                  for row in ranks))  # fmt: skip
    c = 1.0 - ties / (n * (k**3 - k))
    if c <= 0:  # every dataset ties every strategy: nothing to test
        stat, p = np.nan, np.nan
    else:
        stat = (12.0 * n / (k * (k + 1)) * np.sum(mean**2) - 3.0 * n * (k + 1)) / c
        p = float(chi2.sf(stat, k - 1))
    order = pd.Series(mean, index=table.columns, name="rank").sort_values(kind="stable")
    return Friedman(float(stat), p, order, n, critical_difference(k, n, alpha), alpha)


def _cliques(ranks: np.ndarray, cd: float) -> list[tuple[int, int]]:
    """Maximal runs ``(i, j)`` of sorted ranks with ``ranks[j] - ranks[i] < cd``."""
    out: list[tuple[int, int]] = []
    for i in range(len(ranks)):
        j = i
        while j + 1 < len(ranks) and ranks[j + 1] - ranks[i] < cd:
            j += 1
        if j > i and not any(a <= i and j <= b for a, b in out):
            out.append((i, j))
    return out


def cd_diagram(result: Friedman, path: str | Path, *, title: str = "") -> Path:
    """Critical-difference diagram (Demšar, 2006) of a :func:`friedman` result; saves a PNG.

    The strategies sit on an axis of average rank (1 = best, on the left); a bar joins
    strategies whose average ranks differ by less than the critical difference, drawn
    to scale above the axis.

    Parameters
    ----------
    result : Friedman
    path : str or Path
        The image, written atomically.
    title : str, optional

    Returns
    -------
    Path
    """
    ranks = result.ranks.to_numpy()
    names = [str(s) for s in result.ranks.index]
    k = len(ranks)
    cliques = _cliques(ranks, result.cd)
    left = (k + 1) // 2  # the better half is labeled on the left
    step = 0.5
    first = 0.6 + 0.25 * len(cliques)  # label rows start below the clique bars
    bottom = first + step * max(left, k - left)
    fig = Figure(figsize=(10, 1.4 + 0.3 * (bottom + 1.5)), dpi=120)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_axis_off()
    ax.set_xlim(0, 1)
    ax.set_ylim(-bottom - 0.3, 2.0)
    lo, hi = 1.0, float(max(k, 2))

    def x(rank: float) -> float:
        return 0.3 + 0.4 * (rank - lo) / (hi - lo)

    ax.plot([x(lo), x(hi)], [0, 0], color="black", lw=1)
    for r in range(1, int(hi) + 1):
        ax.plot([x(r), x(r)], [0, 0.12], color="black", lw=1)
        ax.text(x(r), 0.2, str(r), ha="center", va="bottom", fontsize=8)
    ax.plot([x(lo), x(lo + result.cd)], [1.1, 1.1], color="black", lw=1.5)
    ax.text(x(lo), 1.25, f"CD = {result.cd:.2f} (α = {result.alpha:g})", fontsize=8,
            va="bottom")  # fmt: skip
    for i, (r, name) in enumerate(zip(ranks, names, strict=True)):
        row = i if i < left else k - 1 - i
        y = -(first + step * row)
        end = 0.27 if i < left else 0.73
        ax.plot([x(r), x(r), end], [0, y, y], color="black", lw=0.8)
        ax.text(end - 0.005 if i < left else end + 0.005, y, f"{name} ({r:.2f})",
                ha="right" if i < left else "left", va="center", fontsize=8)  # fmt: skip
    for m, (i, j) in enumerate(cliques):
        y = -(0.35 + 0.25 * m)
        ax.plot([x(ranks[i]) - 0.004, x(ranks[j]) + 0.004], [y, y], color="black", lw=3)
    if title:
        ax.text(0.5, 1.75, title, ha="center", va="center", fontsize=10)
    return atomic_write(path, fig.savefig)
