"""Learning-curve plots."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import matplotlib
import pandas as pd
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from salutary._io import atomic_write
from salutary.experiment import summarize
from salutary.strategies import SalutaryLabeling, is_oracle_free, strategy_sort_key

__all__ = ["learning_curve_plot"]

#: The paper's method, drawn in a thick black line.
METHOD = SalutaryLabeling.name


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
    summary = summarize(results)
    summary = summary.sort_values(
        ["strategy", "round"],
        key=lambda c: c.map(strategy_sort_key) if c.name == "strategy" else c,
    )
    n_strategies = summary["strategy"].nunique()
    cmap = matplotlib.colormaps["tab10" if n_strategies <= 10 else "tab20"]
    colors = cast("Sequence[Any]", cmap.colors if isinstance(cmap, ListedColormap) else [cmap(0.5)])
    alpha = 0.12 if n_strategies <= 4 else 0.05  # many overlapping bands: keep lines legible
    # A Figure without pyplot: no global state and no backend to choose (Agg draws it).
    fig = Figure(figsize=(7.5, 4.8), dpi=120)
    ax = fig.subplots()
    for i, (strategy, part) in enumerate(summary.groupby("strategy", sort=False)):
        x = part["round"].to_numpy() * (budget or 1)
        m, s = part["mean"].to_numpy(), part["std"].to_numpy()
        free = is_oracle_free(str(strategy))
        color = "black" if strategy == METHOD else colors[i % len(colors)]
        width = 2.2 if strategy == METHOD else 1.3
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
    return atomic_write(path, fig.savefig)
