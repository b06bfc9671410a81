"""Turn a results store into tables, statistics and plots."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import ttest_rel

from salutary._io import atomic_write
from salutary.benchmark.protocols import PROTOCOLS
from salutary.benchmark.stats import ALPHA, cd_diagram, friedman, holm
from salutary.benchmark.store import oracle_kind, with_n_true
from salutary.plots import learning_curve_plot
from salutary.strategies import (
    DEFAULT_STRATEGY,
    STRATEGIES,
    SalutaryLabeling,
    loop_options,
    strategy_class,
    strategy_sort_key,
)

__all__ = [
    "ALPHA",
    "HYBRID",
    "METHOD",
    "VARIANTS",
    "ablation_table",
    "check_section",
    "checked_strategies",
    "compare",
    "complete_groups",
    "held_out_check_table",
    "markdown_table",
    "rank_table",
    "outcomes",
    "per_run",
    "per_true_label",
    "with_n_true",
    "write_report",
]

#: The paper's method; every strategy that is not a salutary variant is a baseline.
METHOD = SalutaryLabeling.name
#: The strategy that buys true labels for part of its picks (compared per true label).
HYBRID = next(name for name, cls in STRATEGIES.items() if cls.partial_oracle)
#: The oracle-free salutary variants, each compared with the baselines.
VARIANTS = tuple(n for n, c in STRATEGIES.items() if not (c.baseline or c.requires_oracle))


def _is_variant(strategy: str) -> bool:
    """Salutary strategies and their specs are not baselines; any other spec is."""
    try:
        return not strategy_class(strategy).baseline
    except ValueError:  # not registered
        return False


def _is_ablation(strategy: str) -> bool:
    """A spec (``name:param=value``) of a salutary strategy: shown in the ablation table."""
    return ":" in strategy and _is_variant(strategy)


def _columns(present: set[str]) -> list[str]:
    """Registered strategies and specs of baselines, each spec after its base strategy."""
    shown = [s for s in present if s in STRATEGIES or (":" in s and not _is_ablation(s))]
    return sorted(shown, key=strategy_sort_key)


def _aulc(acc: np.ndarray) -> float:
    """Area under the learning curve over rounds, normalized by its width (trapezoid)."""
    if len(acc) == 1:
        return float(acc[0])
    return float(np.trapezoid(acc) / (len(acc) - 1))


def per_run(results: pd.DataFrame) -> pd.DataFrame:
    """One row per (protocol, dataset, strategy, seed) with summary metrics, sorted by key.

    Columns: ``initial`` (accuracy before labeling), ``final``, ``aulc`` (normalized area
    under the accuracy curve over rounds), ``gain`` (final - initial), ``agreement``
    (mean fraction of assigned labels equal to the hidden truth), ``seconds`` (mean
    wall-clock seconds per round) and ``n_true`` (oracle labels spent by the end, see
    :func:`with_n_true`).
    """
    keys = ["protocol", "dataset", "strategy", "seed"]
    rows = []
    results = with_n_true(results)
    # A stable sort by key makes the rows (and every mean over them) independent of the
    # order the store's files were read in.
    ordered = results.sort_values([*keys, "round"], kind="stable")
    for key, run in ordered.groupby(keys, sort=False):
        acc = run["accuracy"].to_numpy()
        later = run[run["round"] > 0]
        rows.append(
            (
                *key,
                acc[0],
                acc[-1],
                _aulc(acc),
                acc[-1] - acc[0],
                later["label_agreement"].mean() if len(later) else np.nan,
                later["seconds"].mean() if len(later) else 0.0,
                run["n_true"].iloc[-1],
            )
        )
    cols = [*keys, "initial", "final", "aulc", "gain", "agreement", "seconds", "n_true"]
    return pd.DataFrame(rows, columns=cols)


def complete_groups(results: pd.DataFrame, min_seeds: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Keep the (protocol, dataset, strategy) groups that have at least ``min_seeds`` seeds.

    For reporting a grid that is still running: a strategy with a few seeds stored would
    enter the tables with a mean over other splits than its neighbours and a paired test
    over fewer seeds.

    Parameters
    ----------
    results : DataFrame
        Every round of every run, as :meth:`salutary.benchmark.ResultStore.load` returns.
    min_seeds : int
        Seeds a group needs to be kept.

    Returns
    -------
    kept : DataFrame
        The rows of ``results`` in complete groups.
    left_out : DataFrame
        One row per group left out: ``protocol``, ``dataset``, ``strategy``, ``seeds``.
    """
    keys = ["protocol", "dataset", "strategy"]
    seeds = results.groupby(keys)["seed"].nunique().rename("seeds")
    short = seeds[seeds < min_seeds].reset_index()
    if short.empty:
        return results, short
    drop = results.set_index(keys).index.isin(short.set_index(keys).index)
    return results[~drop].reset_index(drop=True), short


def compare(runs: pd.DataFrame, a: str, b: str, metric: str) -> tuple[float, float, int]:
    """Paired comparison of strategies ``a`` and ``b`` over their common seeds.

    Parameters
    ----------
    runs : DataFrame
        Per-run metrics (:func:`per_run`) of one dataset and protocol: columns
        ``seed``, ``strategy`` and ``metric``.
    a, b : str
        The two strategies.
    metric : str
        Column compared, e.g. ``"final"`` or ``"aulc"``.

    Returns
    -------
    difference : float
        Mean of ``a - b`` over the seeds both have (NaN if none).
    p : float
        Two-sided paired t-test; NaN when fewer than two seeds are shared or every
        difference is zero, 0 when every difference is the same non-zero value.
    n_seeds : int
        Seeds both strategies have.
    """
    wide = runs.pivot_table(index="seed", columns="strategy", values=metric)
    if a not in wide or b not in wide:
        return np.nan, np.nan, 0
    pair = wide[[a, b]].dropna()
    diff = (pair[a] - pair[b]).to_numpy()
    if len(diff) < 2:
        return (float(diff.mean()) if len(diff) else np.nan), np.nan, len(diff)
    if np.all(diff == diff[0]):  # t undefined: no difference at all, or a constant one
        return float(diff[0]), (np.nan if diff[0] == 0 else 0.0), len(diff)
    return float(diff.mean()), float(ttest_rel(pair[a], pair[b]).pvalue), len(diff)


def rank_table(
    runs: pd.DataFrame, metric: str = "final", strategies: Sequence[str] | None = None
) -> pd.DataFrame:
    """Datasets x strategies, ``metric`` averaged over seeds, with no missing cell.

    The rank statistics need every strategy on every dataset: while a cell is missing,
    the dataset or strategy with the largest share of missing cells is dropped (a
    strategy on a tie).

    Parameters
    ----------
    runs : DataFrame
        Per-run metrics (:func:`per_run`) of one protocol.
    metric : str, default="final"
    strategies : sequence of str, optional
        Default: the strategies of :func:`markdown_table` (registered ones and specs of
        baselines; ablation specs stay out).

    Returns
    -------
    DataFrame
        Index ``dataset``, one column per strategy kept.
    """
    if strategies is None:
        strategies = _columns(set(runs["strategy"]))
    tab = runs[runs["strategy"].isin(strategies)].pivot_table(
        index="dataset", columns="strategy", values=metric, aggfunc="mean"
    )
    tab = tab.reindex(columns=[s for s in strategies if s in tab.columns])
    while tab.size and tab.isna().to_numpy().any():
        rows, cols = tab.isna().mean(axis=1), tab.isna().mean(axis=0)
        if cols.max() >= rows.max():
            tab = tab.drop(columns=cols.idxmax())
        else:
            tab = tab.drop(index=rows.idxmax())
    return tab


def _fmt(mean: float, std: float) -> str:
    return f"{mean:.3f} ± {std:.3f}"


def markdown_table(runs: pd.DataFrame, metric: str, strategies: Sequence[str] | None = None) -> str:
    """Datasets × strategies, ``mean ± std`` over seeds of ``metric`` for one protocol.

    The best mean per row is bold; a cell marked ``*`` is significantly below the
    row's best (paired t-test across seeds, p < :data:`ALPHA`).

    Parameters
    ----------
    runs : DataFrame
        Per-run metrics (:func:`per_run`) of one protocol.
    metric : str
        Column shown, e.g. ``"final"`` or ``"aulc"``.
    strategies : sequence of str, optional
        Columns, in order; default: every strategy present, in the registry's order.
        A dataset without a strategy shows ``–``.

    Returns
    -------
    str
        A Markdown table, one row per dataset.
    """
    if strategies is None:
        strategies = _columns(set(runs["strategy"]))
    header = "| dataset | " + " | ".join(strategies) + " |"
    lines = [header, "|---|" + "---:|" * len(strategies)]
    for dataset, part in runs.groupby("dataset", sort=True):
        stats = part.groupby("strategy")[metric].agg(["mean", "std"]).fillna(0.0)
        present = [s for s in strategies if s in stats.index]
        best = max(present, key=lambda s: stats.loc[s, "mean"])
        cells = []
        for s in strategies:
            if s not in stats.index:
                cells.append("–")
                continue
            text = _fmt(stats.loc[s, "mean"], stats.loc[s, "std"])
            if stats.loc[s, "mean"] == stats.loc[best, "mean"]:
                text = f"**{text}**"
            else:
                _, p, _ = compare(part, s, best, metric)
                if p == p and p < ALPHA:
                    text += " *"
            cells.append(text)
        lines.append(f"| {dataset} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def outcomes(runs: pd.DataFrame, metric: str = "final", method: str = METHOD) -> pd.DataFrame:
    """Method against its best baseline, per dataset, for one protocol.

    The best baseline is the strategy (other than any ``salutary*`` variant) with the
    highest mean. ``win``/``loss``: the paired t-test across seeds is significant after
    Holm's correction over the datasets (:func:`holm`; ``p_holm`` below ``ALPHA``) and
    the method is above/below; otherwise ``tie``. The same comparison against ``random``
    (its own family) is in ``vs_random``/``p_random``/``p_random_holm``/``outcome_random``.

    Parameters
    ----------
    runs : DataFrame
        Per-run metrics (:func:`per_run`) of one protocol.
    metric : str, default="final"
        Column compared.
    method : str, default="salutary"
        The strategy judged; datasets without it are left out.

    Returns
    -------
    DataFrame
        One row per dataset: ``dataset``, ``method_mean``, ``best_baseline``,
        ``baseline_mean``, ``difference``, ``p``, ``p_holm``, ``seeds``, ``outcome``,
        ``vs_random``, ``p_random``, ``p_random_holm``, ``outcome_random``.
    """
    rows = []
    for dataset, part in runs.groupby("dataset", sort=True):
        means = part.groupby("strategy")[metric].mean()
        if method not in means:
            continue
        baselines = means[[s for s in means.index if not _is_variant(s)]]
        if baselines.empty:
            continue
        best = str(baselines.idxmax())
        diff, p, n = compare(part, method, best, metric)
        rdiff, rp, _ = compare(part, method, "random", metric)
        rows.append((dataset, means[method], best, baselines[best], diff, p, n, rdiff, rp))
    cols = ["dataset", "method_mean", "best_baseline", "baseline_mean", "difference", "p"]
    tab = pd.DataFrame(rows, columns=[*cols, "seeds", "vs_random", "p_random"])
    # One family per comparison: the method against its best baseline on every dataset.
    tab.insert(6, "p_holm", holm(tab["p"]))
    tab.insert(8, "outcome", [_verdict(d, p) for d, p in zip(tab["difference"], tab["p_holm"],
                                                              strict=True)])  # fmt: skip
    tab["p_random_holm"] = holm(tab["p_random"])
    tab["outcome_random"] = [
        _verdict(d, p) for d, p in zip(tab["vs_random"], tab["p_random_holm"], strict=True)
    ]
    return tab


def checked_strategies(strategies: Iterable[str]) -> list[str]:
    """The specs among ``strategies`` that run with the held-out check (``check=F``)."""
    return sorted(s for s in strategies if loop_options(s).get("check") is not None)


def held_out_check_table(runs: pd.DataFrame, checked: str) -> pd.DataFrame:
    """A strategy run with the held-out check against adding nothing and against random.

    Per dataset of one protocol: the final accuracy of ``checked`` against the initial
    model's (the same runs' round 0: adding nothing) and against ``random``'s, each a
    paired t-test over seeds with Holm's correction over the datasets; and the share of
    the gain of the strategy without the check (the spec before ``:check=``) that is kept.

    Parameters
    ----------
    runs : DataFrame
        Per-run metrics (:func:`per_run`) of one protocol.
    checked : str
        The spec with the check, e.g. ``"salutary-newton:check=0.3"``.

    Returns
    -------
    DataFrame
        One row per dataset: ``initial``, ``final``, ``vs_initial``, ``p_initial(_holm)``,
        ``outcome_initial``, the same ``_random``, ``unchecked_gain``, ``gain``, ``kept``
        (``gain / unchecked_gain`` where that is positive), ``seeds``.
    """
    unchecked = ":".join(i for i in checked.split(":") if not i.startswith("check="))
    rows = []
    for dataset, part in runs.groupby("dataset", sort=True):
        mine = part[part["strategy"] == checked].set_index("seed")
        if mine.empty:
            continue
        d0, p0, n = _paired(mine["final"].to_dict(), mine["initial"].to_dict())
        dr, pr, _ = compare(part, checked, "random", "final")
        base = part[part["strategy"] == unchecked]
        base_gain = float(base["gain"].mean()) if len(base) else np.nan
        gain = float(mine["gain"].mean())
        kept = gain / base_gain if base_gain > 0 else np.nan
        rows.append((dataset, mine["initial"].mean(), mine["final"].mean(), d0, p0, dr, pr,
                     base_gain, gain, kept, n))  # fmt: skip
    cols = ["dataset", "initial", "final", "vs_initial", "p_initial", "vs_random", "p_random",
            "unchecked_gain", "gain", "kept", "seeds"]  # fmt: skip
    tab = pd.DataFrame(rows, columns=cols)
    for family in ("initial", "random"):
        p_holm = holm(tab[f"p_{family}"])
        verdicts = [_verdict(d, p) for d, p in zip(tab[f"vs_{family}"], p_holm, strict=True)]
        at = tab.columns.get_loc(f"p_{family}") + 1
        tab.insert(at, f"p_{family}_holm", p_holm)
        tab.insert(at + 1, f"outcome_{family}", verdicts)
    return tab


def check_section(tab: pd.DataFrame, checked: str) -> list[str]:
    """Markdown lines: :func:`held_out_check_table`'s table and a one-line tally."""
    worse0 = int((tab["outcome_initial"] == "loss").sum())
    worser = int((tab["outcome_random"] == "loss").sum())
    kept = tab["kept"].dropna()
    lines = ["", f"### The held-out check: `{checked}` against adding nothing and random", ""]
    lines.append(
        f"Significantly below the initial model (nothing added) on {worse0} of {len(tab)} "
        f"datasets and below `random` on {worser} (paired t-test over seeds, Holm over "
        f"datasets, p < {ALPHA}). Of the gain without the check, "
        + (f"{kept.median():.0%} is kept (median over the {len(kept)} datasets where it "
           "gained)." if len(kept) else "nothing to keep: it gained on no dataset.")
    )  # fmt: skip
    head = "| dataset | initial | final | Δ initial | p (Holm) | Δ random | p (Holm) | gain "
    lines += ["", head + "without check | kept |", "|---|" + "---:|" * 8]
    for row in tab.to_dict("records"):
        v = {k: float(x) for k, x in row.items() if k not in ("dataset", "seeds")
             and not str(k).startswith("outcome")}  # fmt: skip
        kept_cell = "" if np.isnan(v["kept"]) else f"{v['kept']:.0%}"
        lines.append(
            f"| {row['dataset']} | {100 * v['initial']:.2f} | {100 * v['final']:.2f} | "
            f"{100 * v['vs_initial']:+.2f} | {_p(v['p_initial_holm'])} | "
            f"{100 * v['vs_random']:+.2f} | {_p(v['p_random_holm'])} | "
            f"{100 * v['unchecked_gain']:+.2f} | {kept_cell} |"
        )
    return lines


def _paired(a: dict, b: dict) -> tuple[float, float, int]:
    """:func:`compare` of two ``{seed: value}`` maps (NaN values left out)."""
    long = pd.DataFrame(
        [(seed, "a", v) for seed, v in a.items()] + [(seed, "b", v) for seed, v in b.items()],
        columns=["seed", "strategy", "value"],
    )
    return compare(long, "a", "b", "value")


def _mean_std(values: dict) -> tuple[float, float]:
    v = pd.Series(values, dtype=float).dropna()
    if v.empty:
        return np.nan, np.nan
    return float(v.mean()), float(v.std()) if len(v) > 1 else 0.0


def per_true_label(results: pd.DataFrame, method: str = HYBRID) -> pd.DataFrame:
    """``method``'s final accuracy against oracle baselines that spent as many true labels.

    For every dataset and seed, ``method``'s final accuracy and the true labels it
    spent (``n_true`` at its last round) are set against each oracle baseline's
    accuracy at that ``n_true``, read from the baseline's learning curve (accuracy
    against ``n_true``, one point per round) by linear interpolation, and against the
    baseline's final accuracy. NaN where the method spent more true labels than the
    baseline's curve reaches. Differences are paired over seeds (:func:`compare`).

    Parameters
    ----------
    results : pandas.DataFrame
        One protocol's rounds (``dataset, strategy, seed, round, accuracy`` and what
        :func:`with_n_true` needs).
    method : str, default=HYBRID

    Returns
    -------
    pandas.DataFrame
        One row per (dataset, baseline): ``n_true`` (mean over seeds), ``method_mean``,
        ``method_std``; at equal true labels ``equal_mean``, ``equal_std``,
        ``equal_diff`` (method - baseline), ``equal_p``; at the baseline's final round
        ``final_n_true``, ``final_mean``, ``final_std``, ``final_diff``, ``final_p``;
        ``seeds`` (paired at equal true labels); ``best`` (the baseline with the highest
        mean at equal true labels on that dataset). Baselines: registered oracle
        strategies other than the ``salutary*`` variants.
    """
    results = with_n_true(results)
    rows = []
    for dataset, part in results.sort_values("round").groupby("dataset", sort=True):
        own = part[part["strategy"] == method].groupby("seed").tail(1).set_index("seed")
        if own.empty:
            continue
        acc, spent = own["accuracy"].to_dict(), own["n_true"].to_dict()
        for base in [s for s in STRATEGIES if s in set(part["strategy"])]:
            if _is_variant(base) or not STRATEGIES[base].requires_oracle:
                continue
            equal, final, final_n = {}, {}, {}
            for seed, curve in part[part["strategy"] == base].groupby("seed"):
                x = curve["n_true"].to_numpy(np.float64)
                y = curve["accuracy"].to_numpy(np.float64)
                final[seed], final_n[seed] = y[-1], x[-1]
                t = spent.get(seed, np.nan)
                # No extrapolation: beyond the curve's last round it is unknown.
                equal[seed] = np.interp(t, x, y) if x[0] <= t <= x[-1] else np.nan
            (method_mean, method_std), (equal_mean, equal_std), (final_mean, final_std) = (
                _mean_std(v) for v in (acc, equal, final)
            )
            equal_diff, equal_p, seeds = _paired(acc, equal)
            final_diff, final_p, _ = _paired(acc, final)
            rows.append(
                dict(dataset=dataset, baseline=base, n_true=pd.Series(spent).mean(),
                     method_mean=method_mean, method_std=method_std, equal_mean=equal_mean,
                     equal_std=equal_std, equal_diff=equal_diff, equal_p=equal_p,
                     final_n_true=pd.Series(final_n).mean(), final_mean=final_mean,
                     final_std=final_std, final_diff=final_diff, final_p=final_p, seeds=seeds)
            )  # fmt: skip
    tab = pd.DataFrame(rows)
    if tab.empty:
        return tab
    best = tab.dropna(subset=["equal_mean"]).groupby("dataset")["equal_mean"].idxmax()
    tab["best"] = tab.index.isin(best.to_numpy())
    return tab


def _count(n: float) -> str:
    return "–" if n != n else (f"{n:.0f}" if n == round(n) else f"{n:.1f}")


def _per_true_label_section(tab: pd.DataFrame, method: str = HYBRID) -> list[str]:
    """Markdown: per dataset, ``random``, ``margin`` and the best oracle baseline."""
    lines = [
        "### Accuracy per true label spent",
        "",
        f"How to read: `{method}` labels most of its picks itself and buys true labels "
        "(beyond the initial set) for the rest; each baseline buys one for every pick and "
        "is read off its learning curve at as many true labels (linear interpolation "
        "between rounds), then at its own final round (true labels in brackets). Δ = "
        f"`{method}` − baseline, mean over seeds; p: paired t-test over seeds.",
        "",
    ]
    if tab.empty:
        return [*lines, "_no oracle baseline runs to compare with_", ""]
    lines += [
        f"| dataset | true labels | {method} | baseline | at equal true labels | Δ | p "
        "| at its final round | Δ | p |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]

    def cell(mean: float, std: float) -> str:
        return "–" if mean != mean else _fmt(mean, std)

    def delta(d: float) -> str:
        return "–" if d != d else f"{d:+.3f}"

    for dataset, part in tab.groupby("dataset", sort=True):
        shown = part[part["baseline"].isin(["random", "margin"]) | part["best"]]
        order = {"random": 0, "margin": 1}
        shown = shown.sort_values("baseline", key=lambda c: c.map(order).fillna(2))
        for i, r in enumerate(shown.itertuples(index=False)):
            head = (
                [dataset, _count(r.n_true), cell(r.method_mean, r.method_std)]
                if i == 0
                else ["", "", ""]
            )
            name = f"{r.baseline} (best)" if r.best else r.baseline
            final = f"{cell(r.final_mean, r.final_std)} ({_count(r.final_n_true)})"
            lines.append(
                "| " + " | ".join(
                    [*head, name, cell(r.equal_mean, r.equal_std), delta(r.equal_diff),
                     _p(r.equal_p), final, delta(r.final_diff), _p(r.final_p)]
                ) + " |"
            )  # fmt: skip
    return [*lines, ""]


def ablation_table(
    runs: pd.DataFrame, reference: str = DEFAULT_STRATEGY, metric: str = "final"
) -> str:
    """Strategy specs (``name:param=value``, see :func:`salutary.strategies.parse_strategy`)
    against ``reference`` on one protocol.

    Columns: the paper's method (if present), each spec, then ``reference``. A cell is
    the mean over seeds and, in brackets, the mean paired difference to ``reference``
    (``*``: paired t-test p < :data:`ALPHA` after Holm's correction over the datasets of
    its column). The last row counts wins, ties and losses against ``reference``.

    Parameters
    ----------
    runs : DataFrame
        Per-run metrics (:func:`per_run`) of one protocol.
    reference : str, default="salutary-newton"
        The strategy every spec is compared with.
    metric : str, default="final"
        Column compared.

    Returns
    -------
    str
        A Markdown table; empty if there is no spec or no ``reference`` run.
    """
    present = set(runs["strategy"])
    specs = sorted((s for s in present if _is_ablation(s)), key=strategy_sort_key)
    if not specs or reference not in present:
        return ""
    columns = [s for s in (METHOD,) if s in present] + specs
    lines = [
        f"| dataset | {' | '.join(f'`{c}`' for c in columns)} | `{reference}` |",
        "|---|" + "---:|" * (len(columns) + 1),
    ]
    rows = []
    for dataset, part in runs.groupby("dataset", sort=True):
        means = part.groupby("strategy")[metric].mean()
        if reference not in means:
            continue
        tests = {c: compare(part, c, reference, metric)[:2] for c in columns if c in means}
        rows.append((dataset, means, tests))
    # Holm's correction per column: one family of tests over the datasets.
    adjusted = {c: iter(holm([tests[c][1] for _, _, tests in rows if c in tests])) for c in columns}
    verdicts: dict[str, list[str]] = {c: [] for c in columns}
    for dataset, means, tests in rows:
        cells = []
        for c in columns:
            if c not in tests:
                cells.append("–")
                continue
            diff, p = tests[c][0], next(adjusted[c])
            verdicts[c].append(_verdict(diff, p))
            star = "*" if p == p and p < ALPHA else ""
            cells.append(f"{means[c]:.3f} ({diff:+.3f}{star})")
        lines.append(f"| {dataset} | {' | '.join(cells)} | {means[reference]:.3f} |")
    counts = [f"{v.count('win')}/{v.count('tie')}/{v.count('loss')}" for v in verdicts.values()]
    lines.append(f"| wins/ties/losses vs `{reference}` | {' | '.join(counts)} | |")
    return "\n".join(lines)


def _verdict(diff: float, p: float) -> str:
    if p == p and p < ALPHA:
        return "win" if diff > 0 else "loss"
    return "tie"


def _agreement_table(results: pd.DataFrame) -> str:
    free = [s for s in _columns(set(results["strategy"])) if oracle_kind(s) == 0.0]
    part = results[results["strategy"].isin(free) & (results["round"] > 0)]
    if part.empty:
        return "_no oracle-free runs_"
    tab = part.pivot_table(
        index=["dataset", "strategy"], columns="round", values="label_agreement", aggfunc="mean"
    )
    rounds = list(tab.columns)
    lines = ["| dataset | strategy | " + " | ".join(f"r{r}" for r in rounds) + " |"]
    lines.append("|---|---|" + "---:|" * len(rounds))
    for (dataset, strategy), row in tab.iterrows():
        cells = " | ".join("–" if v != v else f"{v:.2f}" for v in row)
        lines.append(f"| {dataset} | {strategy} | {cells} |")
    return "\n".join(lines)


def _time_table(runs: pd.DataFrame) -> str:
    strategies = _columns(set(runs["strategy"]))
    tab = runs.pivot_table(index="dataset", columns="strategy", values="seconds", aggfunc="mean")
    lines = ["| dataset | " + " | ".join(strategies) + " |"]
    lines.append("|---|" + "---:|" * len(strategies))
    for dataset, row in tab.iterrows():
        cells = " | ".join(f"{row[s]:.3f}" if s in row and row[s] == row[s] else "–"
                           for s in strategies)  # fmt: skip
        lines.append(f"| {dataset} | {cells} |")
    return "\n".join(lines)


def _p(p: float) -> str:
    return "–" if p != p else f"{p:.3f}"


def _p_small(p: float) -> str:
    """A p-value, in scientific notation below 0.001 (a Friedman test's can be tiny)."""
    return f"{p:.1e}" if p == p and p < 0.001 else _p(p)


def _n(count: int, one: str, many: str | None = None) -> str:
    """'1 seed', '2 seeds'; ``many`` for irregular plurals ('losses')."""
    return f"{count} {one if count == 1 else many or one + 's'}"


def _tally(counts: pd.Series) -> str:
    """'2 wins, 1 tie, 0 losses' from value counts of win/tie/loss."""
    return ", ".join(
        _n(int(counts.get(w, 0)), w, "losses" if w == "loss" else None)
        for w in ("win", "tie", "loss")
    )


def _outcome_section(out_tab: pd.DataFrame, method: str) -> list[str]:
    if out_tab.empty:
        return []
    counts = out_tab["outcome"].value_counts()
    rc = out_tab["outcome_random"].value_counts()
    lines = [
        f"**`{method}` vs the best baseline (final accuracy):** {_tally(counts)} over "
        f"{len(out_tab)} datasets. Against `random`: {_tally(rc)}. A win or loss needs "
        f"p < {ALPHA} after Holm's correction over the datasets (p Holm; p: the paired "
        "t-test alone).",
        "",
        f"| dataset | {method} | best baseline | its mean | Δ | p | p Holm | outcome "
        "| Δ vs random | p | p Holm | outcome |",
        "|---|---:|---|---:|---:|---:|---:|---|---:|---:|---:|---|",
    ]
    for r in out_tab.to_dict("records"):
        lines.append(
            f"| {r['dataset']} | {r['method_mean']:.3f} | {r['best_baseline']} | "
            f"{r['baseline_mean']:.3f} | {r['difference']:+.3f} | {_p(r['p'])} | "
            f"{_p(r['p_holm'])} | {r['outcome']} | {r['vs_random']:+.3f} | "
            f"{_p(r['p_random'])} | {_p(r['p_random_holm'])} | {r['outcome_random']} |"
        )
    return [*lines, ""]


def _rank_section(runs: pd.DataFrame, out: Path, protocol: str, plots: bool) -> list[str]:
    """Markdown: Friedman test, average ranks and the critical-difference diagram."""
    table = rank_table(runs, "final")
    lines = ["", "### Ranks across datasets (final accuracy)", ""]
    n, k = table.shape
    if n < 2 or k < 2:
        return [*lines, "_needs two datasets with two strategies in common_"]
    result = friedman(table)
    left_datasets = sorted(set(runs["dataset"]) - set(table.index))
    left_strategies = sorted(set(_columns(set(runs["strategy"]))) - set(table.columns),
                             key=strategy_sort_key)  # fmt: skip
    dropped = []
    if left_datasets:
        dropped.append(f"datasets {', '.join(left_datasets)}")
    if left_strategies:
        dropped.append(f"strategies {', '.join(f'`{s}`' for s in left_strategies)}")
    lines.append(
        f"Strategies ranked on each of {_n(n, 'dataset')} by final accuracy (mean over "
        "seeds; rank 1 is best, ties share their average rank)"
        + (f", leaving out {' and '.join(dropped)} (not run on all)" if dropped else "")
        + f". Friedman test: χ²({k - 1}) = {result.statistic:.2f}, p = {_p_small(result.p)}. "
        f"Nemenyi critical difference at α = {ALPHA}: CD = {result.cd:.2f}; average ranks "
        "closer than CD are not significantly different (a bar joins them in the "
        "diagram), and the post-hoc reading assumes the Friedman test rejected."
    )
    lines += ["", "| strategy | average rank |", "|---|---:|"]
    lines += [f"| {s} | {r:.2f} |" for s, r in result.ranks.items()]
    if plots:
        name = f"cd_{protocol}.png"
        cd_diagram(result, out / name, title=f"{protocol}: average rank, final accuracy")
        lines += ["", f"![critical difference {protocol}]({name})"]
    return lines


_ABLATION_NOTE = (
    "Each column is a strategy spec `name:param=value` (see `salutary.strategies."
    "parse_strategy`): `candidates=1` shortlists only the first-order top-b, so only "
    "the labels (best two by first-order influence, then chosen by the Newton-step "
    "validation loss) change; `steps=1` scores a 5·b shortlist by the one-Newton-step "
    "validation loss but takes the best b at once (second order, not batch-aware); "
    "`labels=1` keeps the first-order label; `abstain=True` adds only pairs predicted "
    "to lower the validation loss; `candidates=10` doubles the shortlist; "
    "`uncertain=0.5` takes half of it from the least certain samples; "
    "`objective=error` minimizes the expected 0-1 validation error; "
    "`max_growth=None` chooses the whole budget in one batch from one Newton step "
    "(the default until sub-batches with refits: it differs only where the budget "
    "exceeds 5% of the training set). Cell: mean final accuracy (paired difference to "
    "`salutary-newton`, `*` if p < 0.05 after Holm's correction over the datasets)."
)


def write_report(
    results: pd.DataFrame, out_dir: str | Path, *, plots: bool = True, title: str = ""
) -> Path:
    """Write ``REPORT.md`` (and learning-curve PNGs) for every protocol in ``results``.

    Parameters
    ----------
    results : DataFrame
        Every round of every run, as :meth:`salutary.benchmark.ResultStore.load` returns.
    out_dir : str or Path
        Folder for ``REPORT.md`` and the plots (created if missing).
    plots : bool, default=True
        Also write ``curve_<protocol>_<dataset>.png``.
    title : str, optional
        First heading; default ``Benchmark report``.

    Returns
    -------
    Path
        The Markdown file.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    runs = per_run(results)
    parts = [f"# {title or 'Benchmark report'}", ""]
    parts.append(
        "Test accuracy, mean ± std over seeds. **Bold**: best mean in the row. `*`: "
        f"significantly below the row's best (paired t-test across seeds, p < {ALPHA}). "
        "AULC: area under the accuracy curve over rounds, divided by its width. "
        f"`{METHOD}` (the paper's method), `salutary-newton`, `salutary-crossfit`, "
        "`self-training` and `val-teacher` use no true label beyond the "
        "initial set (and the validation set); every other strategy asks an oracle "
        "(`salutary-oracle` is the paper's ablation: salutary selection with true labels; "
        f"`{HYBRID}` is `salutary-newton` buying true labels for its least certain picks, "
        "compared per true label spent). "
        "Baselines are all strategies except the `salutary*` variants. Protocol `fair`: "
        "every model also trains on the validation labels."
    )
    known = [p for p in PROTOCOLS if p in set(runs["protocol"])]
    order = known + sorted(set(runs["protocol"]) - set(known))
    for protocol in order:
        prot_runs = runs[runs["protocol"] == protocol]
        prot_results = results[results["protocol"] == protocol]
        n_seeds = prot_runs["seed"].nunique()
        parts += ["", f"## Protocol `{protocol}` ({_n(n_seeds, 'seed')})", ""]
        present = set(prot_runs["strategy"])
        for method in [m for m in VARIANTS if m in present]:
            parts += _outcome_section(outcomes(prot_runs, method=method), method)
        for checked in checked_strategies(present):
            parts += check_section(held_out_check_table(prot_runs, checked), checked)
        if HYBRID in present:
            parts += _per_true_label_section(per_true_label(prot_results))
        for metric, label in (("final", "Final accuracy"), ("aulc", "AULC")):
            parts += ["", f"### {label}", "", markdown_table(prot_runs, metric)]
        parts += _rank_section(prot_runs, out, protocol, plots)
        ablation = ablation_table(prot_runs, metric="final")
        if ablation:
            parts += ["", "### Ablation: variants of `salutary-newton` (final accuracy)", ""]
            parts += [_ABLATION_NOTE, "", ablation]
        parts += ["", "### Wall-clock seconds per round (selection + refit)", ""]
        parts.append(_time_table(prot_runs))
        parts += ["", "### Agreement of assigned labels with the hidden truth, per round", ""]
        parts.append(_agreement_table(prot_results))
        if plots:
            parts += ["", "### Learning curves", ""]
            # Ablation variants stay out of the plots (they have their own table).
            plotted = prot_results[~prot_results["strategy"].map(_is_ablation)]
            for dataset, part in plotted.groupby("dataset", sort=True):
                name = f"curve_{protocol}_{dataset}.png"
                budget = int(part["budget"].iloc[0]) if "budget" in part else None
                learning_curve_plot(part, out / name, title=f"{dataset}, {protocol}", budget=budget)
                parts.append(f"![{dataset} {protocol}]({name})")
    path = out / "REPORT.md"
    text = "\n".join(parts) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return path
