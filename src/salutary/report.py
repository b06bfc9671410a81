"""Turn a results store into tables, statistics and plots."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import ttest_rel

from salutary.strategies import STRATEGIES
from salutary.tabular import atomic_write

__all__ = [
    "ALPHA",
    "METHOD",
    "compare",
    "ablation_table",
    "markdown_table",
    "outcomes",
    "per_run",
    "write_report",
]

#: Significance level of the paired tests.
ALPHA = 0.05
#: The method under test; every other strategy except its ablation is a baseline.
METHOD = "salutary"


def _is_variant(strategy: str) -> bool:
    """Salutary variants and ablations (``name:param=value`` specs) are not baselines."""
    return strategy.startswith("salutary") or ":" in strategy


def _aulc(acc: np.ndarray) -> float:
    """Area under the learning curve over rounds, normalized by its width (trapezoid)."""
    if len(acc) == 1:
        return float(acc[0])
    return float(np.trapezoid(acc) / (len(acc) - 1))


def per_run(results: pd.DataFrame) -> pd.DataFrame:
    """One row per (protocol, dataset, strategy, seed) with summary metrics.

    Columns: ``initial`` (accuracy before labeling), ``final``, ``aulc`` (normalized area
    under the accuracy curve over rounds), ``gain`` (final - initial), ``agreement``
    (mean fraction of assigned labels equal to the hidden truth) and ``seconds`` (mean
    wall-clock seconds per round).
    """
    keys = ["protocol", "dataset", "strategy", "seed"]
    rows = []
    for key, run in results.sort_values("round").groupby(keys, sort=False):
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
            )
        )
    cols = [*keys, "initial", "final", "aulc", "gain", "agreement", "seconds"]
    return pd.DataFrame(rows, columns=cols)


def compare(runs: pd.DataFrame, a: str, b: str, metric: str) -> tuple[float, float, int]:
    """Paired comparison of strategies ``a`` and ``b`` over their common seeds.

    ``runs`` holds one dataset and protocol. Returns ``(mean(a - b), p, n_seeds)`` with
    ``p`` from a two-sided paired t-test (NaN when fewer than two seeds are shared or
    every difference is zero).
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


def _fmt(mean: float, std: float) -> str:
    return f"{mean:.3f} ± {std:.3f}"


def markdown_table(runs: pd.DataFrame, metric: str, strategies: Sequence[str] | None = None) -> str:
    """Datasets × strategies, ``mean ± std`` over seeds of ``metric`` for one protocol.

    The best mean per row is bold; a cell marked ``*`` is significantly below the
    row's best (paired t-test across seeds, p < :data:`ALPHA`).
    """
    if strategies is None:
        strategies = [s for s in STRATEGIES if s in set(runs["strategy"])]
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
    highest mean. ``win``/``loss``: the paired t-test across seeds is significant and the
    method is above/below; otherwise ``tie``. The same comparison against ``random`` is
    in ``vs_random``/``p_random``/``outcome_random``.
    """
    rows = []
    for dataset, part in runs.groupby("dataset", sort=True):
        means = part.groupby("strategy")[metric].mean()
        if method not in means:
            continue
        baselines = means[[s for s in means.index if not _is_variant(s)]]
        if baselines.empty:
            continue
        best = baselines.idxmax()
        diff, p, n = compare(part, method, best, metric)
        rdiff, rp, _ = compare(part, method, "random", metric)
        rows.append(
            (dataset, means[method], best, baselines[best], diff, p, n, _verdict(diff, p),
             rdiff, rp, _verdict(rdiff, rp))
        )  # fmt: skip
    cols = ["dataset", "method_mean", "best_baseline", "baseline_mean", "difference", "p"]
    return pd.DataFrame(
        rows, columns=[*cols, "seeds", "outcome", "vs_random", "p_random", "outcome_random"]
    )


def ablation_table(
    runs: pd.DataFrame, reference: str = "salutary-newton", metric: str = "final"
) -> str:
    """Strategy specs (``name:param=value``, see :func:`salutary.strategies.parse_strategy`)
    against ``reference`` on one protocol; empty if there are none.

    Columns: the paper's method (if present), each spec, then ``reference``. A cell is
    the mean over seeds and, in brackets, the mean paired difference to ``reference``
    (``*``: paired t-test p < :data:`ALPHA`). The last row counts wins, ties and losses
    against ``reference``.
    """
    from salutary.experiment import _strategy_rank

    present = set(runs["strategy"])
    specs = sorted((s for s in present if ":" in s), key=_strategy_rank)
    if not specs or reference not in present:
        return ""
    columns = [s for s in (METHOD,) if s in present] + specs
    lines = [
        f"| dataset | {' | '.join(f'`{c}`' for c in columns)} | `{reference}` |",
        "|---|" + "---:|" * (len(columns) + 1),
    ]
    verdicts: dict[str, list[str]] = {c: [] for c in columns}
    for dataset, part in runs.groupby("dataset", sort=True):
        means = part.groupby("strategy")[metric].mean()
        if reference not in means:
            continue
        cells = []
        for c in columns:
            if c not in means:
                cells.append("–")
                continue
            diff, p, _ = compare(part, c, reference, metric)
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
    free = [s for s, c in STRATEGIES.items() if not c.requires_oracle]
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
    strategies = [s for s in STRATEGIES if s in set(runs["strategy"])]
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


def _outcome_section(out_tab: pd.DataFrame, method: str) -> list[str]:
    if out_tab.empty:
        return []
    counts = out_tab["outcome"].value_counts()
    rc = out_tab["outcome_random"].value_counts()
    lines = [
        f"**`{method}` vs the best baseline (final accuracy):** {counts.get('win', 0)} wins, "
        f"{counts.get('tie', 0)} ties, {counts.get('loss', 0)} losses over {len(out_tab)} "
        f"datasets. Against `random`: {rc.get('win', 0)} wins, {rc.get('tie', 0)} ties, "
        f"{rc.get('loss', 0)} losses.",
        "",
        f"| dataset | {method} | best baseline | its mean | Δ | p | outcome | Δ vs random "
        "| p | outcome |",
        "|---|---:|---|---:|---:|---:|---|---:|---:|---|",
    ]
    for r in out_tab.itertuples(index=False):
        lines.append(
            f"| {r.dataset} | {r.method_mean:.3f} | {r.best_baseline} | {r.baseline_mean:.3f} | "
            f"{r.difference:+.3f} | {_p(r.p)} | {r.outcome} | {r.vs_random:+.3f} | "
            f"{_p(r.p_random)} | {r.outcome_random} |"
        )
    return [*lines, ""]


_ABLATION_NOTE = (
    "Each column is a strategy spec `name:param=value` (see `salutary.strategies."
    "parse_strategy`): `candidates=1` shortlists only the first-order top-b, so only "
    "the labels (best two by first-order influence, then chosen by the Newton-step "
    "validation loss) change; `steps=1` scores a 5·b shortlist by the one-Newton-step "
    "validation loss but takes the best b at once (second order, not batch-aware); "
    "`labels=1` keeps the first-order label; `abstain=True` adds only pairs predicted "
    "to lower the validation loss. Cell: mean final accuracy (paired difference to "
    "`salutary-newton`, `*` if p < 0.05)."
)


def write_report(
    results: pd.DataFrame, out_dir: str | Path, *, plots: bool = True, title: str = ""
) -> Path:
    """Write ``REPORT.md`` (and learning-curve PNGs) for every protocol in ``results``.

    Returns the path of the Markdown file.
    """
    from salutary.experiment import learning_curve_plot

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    runs = per_run(results)
    parts = [f"# {title or 'Benchmark report'}", ""]
    parts.append(
        "Test accuracy, mean ± std over seeds. **Bold**: best mean in the row. `*`: "
        f"significantly below the row's best (paired t-test across seeds, p < {ALPHA}). "
        "AULC: area under the accuracy curve over rounds, divided by its width. "
        f"`{METHOD}` (the paper's method), `salutary-newton`, `salutary-crossfit` and "
        "`self-training` use no true label beyond the "
        "initial set (and the validation set); every other strategy asks an oracle "
        "(`salutary-oracle` is the paper's ablation: salutary selection with true labels). "
        "Baselines are all strategies except the `salutary*` variants. Protocol `fair`: "
        "every model also trains on the validation labels."
    )
    from salutary.bench import PROTOCOLS

    known = [p for p in PROTOCOLS if p in set(runs["protocol"])]
    order = known + sorted(set(runs["protocol"]) - set(known))
    for protocol in order:
        prot_runs = runs[runs["protocol"] == protocol]
        prot_results = results[results["protocol"] == protocol]
        n_seeds = prot_runs["seed"].nunique()
        parts += ["", f"## Protocol `{protocol}` ({n_seeds} seeds)", ""]
        present = set(prot_runs["strategy"])
        variants = (METHOD, "salutary-newton", "salutary-crossfit")
        for method in [m for m in variants if m in present]:
            parts += _outcome_section(outcomes(prot_runs, method=method), method)
        for metric, label in (("final", "Final accuracy"), ("aulc", "AULC")):
            parts += ["", f"### {label}", "", markdown_table(prot_runs, metric)]
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
            # Ablation variants stay out of the plots: one line per registered strategy.
            plotted = prot_results[~prot_results["strategy"].str.contains(":", regex=False)]
            for dataset, part in plotted.groupby("dataset", sort=True):
                name = f"curve_{protocol}_{dataset}.png"
                budget = int(part["budget"].iloc[0]) if "budget" in part else None
                learning_curve_plot(part, out / name, title=f"{dataset}, {protocol}", budget=budget)
                parts.append(f"![{dataset} {protocol}]({name})")
    path = out / "REPORT.md"
    text = "\n".join(parts) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return path
