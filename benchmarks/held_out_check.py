"""The held-out check and stopping rule: which share of the validation set to hold out.

Usage::

    python benchmarks/held_out_check.py --seeds 10 11 ... 19 [--datasets ...]
        [--protocols paper val1 ...] [--fractions 0.3 0.5] [--jobs 2] [--output FILE]

Runs the default strategy without the check (``salutary-newton``), with it for each
fraction (``salutary-newton:check=F``) and ``random`` through the benchmark harness
(:func:`salutary.benchmark.runner.run_one`: the protocols' splits, models and budgets) on
the given seeds, writes one row per run (initial and final test accuracy, the round the
check dropped) to ``--output``, and prints per protocol and fraction: on how many
datasets the final accuracy is significantly below the initial model's and below
random's (paired t-test over seeds, p < 0.05), and the share of the unchecked
strategy's gain over the initial model that is kept where that gain is positive.

The default fraction was chosen with seeds 10-19, which the published benchmark (seeds
0-9) does not use.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from scipy.stats import ttest_rel
from threadpoolctl import threadpool_limits

from salutary.benchmark.protocols import RunKey
from salutary.benchmark.report import check_section, checked_strategies, held_out_check_table
from salutary.benchmark.runner import run_one
from salutary.benchmark.store import ResultStore

TABULAR = ["wine_quality", "electrical_grid", "adult", "letter", "magic", "spambase", "pima"]
PROTOCOLS = ["paper", "val1", "val5", "l2-1", "l2-10", "rounds30", "budget1pct"]


def one(key: RunKey, store: str | None = None) -> dict:
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.process_time()
        frame = run_one(key)
        seconds = time.process_time() - t0
    if store is not None:  # the per-round frame, as salutary bench stores it
        ResultStore(store).write(key, frame)
    acc = frame.sort_values("round")["accuracy"].to_numpy()
    n = frame.sort_values("round")["n_labeled"].to_numpy()
    return dict(dataset=key.dataset, protocol=key.protocol, strategy=key.strategy,
                seed=key.seed, initial=acc[0], final=acc[-1], added=int(n[-1] - n[0]),
                cpu_seconds=seconds)  # fmt: skip


def summarize(runs: pd.DataFrame, base: str = "salutary-newton") -> pd.DataFrame:
    """Per protocol and strategy: datasets significantly worse than the initial model and
    than random, and the share of ``base``'s positive gains kept."""
    rows = []
    for (protocol, strategy), part in runs.groupby(["protocol", "strategy"]):
        worse_initial = worse_random = 0
        kept, lost = [], []
        for dataset, d in part.groupby("dataset"):
            d = d.sort_values("seed")
            seeds = d["seed"].to_numpy()
            mine = d["final"].to_numpy()
            if len(seeds) > 1 and np.any(mine != d["initial"].to_numpy()):
                _, p = ttest_rel(mine, d["initial"].to_numpy())
                worse_initial += bool(p < 0.05 and mine.mean() < d["initial"].mean())
            rand = runs[(runs.protocol == protocol) & (runs.dataset == dataset)
                        & (runs.strategy == "random")].set_index("seed")["final"]  # fmt: skip
            if len(rand) and len(seeds) > 1:
                r = rand.reindex(seeds).to_numpy()
                if np.any(mine != r):
                    _, p = ttest_rel(mine, r)
                    worse_random += bool(p < 0.05 and mine.mean() < r.mean())
            ref = runs[(runs.protocol == protocol) & (runs.dataset == dataset)
                       & (runs.strategy == base)]  # fmt: skip
            gain = (ref["final"] - ref["initial"]).mean()
            if gain > 0:
                kept.append((d["final"] - d["initial"]).mean() / gain)
            lost.append((d["final"] - d["initial"]).mean())
        rows.append(dict(protocol=protocol, strategy=strategy, datasets=part.dataset.nunique(),
                         worse_than_initial=worse_initial, worse_than_random=worse_random,
                         mean_gain=float(np.mean(lost)),
                         gain_kept=float(np.median(kept)) if kept else np.nan))  # fmt: skip
    return pd.DataFrame(rows)


def stored(path: str, keys: list[RunKey]) -> pd.DataFrame:
    """The runs of ``keys`` from a consolidated results file, in :func:`one`'s columns."""
    want = {(k.dataset, k.protocol, k.strategy, k.seed) for k in keys}
    cols = ["dataset", "protocol", "strategy", "seed", "round", "accuracy", "n_labeled"]
    frame = pd.read_parquet(path, columns=cols, filters=[
        ("strategy", "in", sorted({k.strategy for k in keys})),
        ("dataset", "in", sorted({k.dataset for k in keys})),
    ])  # fmt: skip
    rows = []
    for key, run in frame.sort_values("round").groupby(["dataset", "protocol", "strategy", "seed"]):
        if key in want:
            acc, n = run["accuracy"].to_numpy(), run["n_labeled"].to_numpy()
            rows.append(dict(zip(["dataset", "protocol", "strategy", "seed"], key, strict=True),
                             initial=acc[0], final=acc[-1], added=int(n[-1] - n[0]),
                             cpu_seconds=np.nan))  # fmt: skip
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=list(range(10, 20)))
    ap.add_argument("--datasets", nargs="+", default=TABULAR)
    ap.add_argument("--protocols", nargs="+", default=PROTOCOLS)
    ap.add_argument("--fractions", type=float, nargs="+", default=[0.3, 0.5])
    ap.add_argument("--baselines-from", metavar="FILE",
                    help="Read the runs of salutary-newton and random from this consolidated "
                    "results file (e.g. benchmarks/results/results.parquet) instead of "
                    "running them; a run whose initial accuracy differs from the checked "
                    "run's (other embeddings) is an error.")  # fmt: skip
    ap.add_argument("--store", metavar="DIR",
                    help="Also write every run's per-round frame to this results store "
                    "(salutary report reads it).")  # fmt: skip
    ap.add_argument("--markdown", metavar="FILE",
                    help="Write per protocol the report's table of the checked strategy "
                    "against the initial model and random (Holm over datasets).")  # fmt: skip
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--output", default="held_out_check.csv")
    args = ap.parse_args()
    checked = [f"salutary-newton:check={f:g}" for f in args.fractions]
    baselines = ["salutary-newton", "random"]

    def grid(strategies: list[str]) -> list[RunKey]:
        return [RunKey(d, p, s, seed) for p in args.protocols for d in args.datasets
                for s in strategies for seed in args.seeds]  # fmt: skip

    keys = grid(checked if args.baselines_from else [*baselines, *checked])
    jobs = Parallel(n_jobs=args.jobs, verbose=5)
    runs = pd.DataFrame(jobs(delayed(one)(k, args.store) for k in keys))
    if args.baselines_from:
        base = stored(args.baselines_from, grid(baselines))
        missing = len(grid(baselines)) - len(base)
        if missing:
            raise SystemExit(f"{args.baselines_from} lacks {missing} of the baseline runs")
        first = runs.groupby(["dataset", "protocol", "seed"])["initial"].first()
        other = base.set_index(["dataset", "protocol", "seed"])["initial"]
        differs = (other - first.reindex(other.index)).abs().to_numpy() > 0
        if differs.any():
            raise SystemExit(f"initial accuracy differs from the stored runs: "
                             f"{sorted(set(other.index[differs]))[:5]}")  # fmt: skip
        runs = pd.concat([base, runs], ignore_index=True)
    runs.to_csv(args.output, index=False)
    with pd.option_context("display.width", 200):
        print(summarize(runs).to_string(index=False))
    if args.markdown:
        write_markdown(runs, args.markdown)


def write_markdown(runs: pd.DataFrame, path: str) -> None:
    """Per protocol and checked spec: :func:`salutary.benchmark.report.check_section`."""
    runs = runs.assign(gain=runs["final"] - runs["initial"])
    lines = ["# The held-out check against adding nothing and random", ""]
    lines.append("Written by `benchmarks/held_out_check.py --markdown`; one run per row of "
                 "its `--output` file.")  # fmt: skip
    lines += ["", "Per protocol, datasets where the final accuracy is significantly below the "
              "initial model's (nothing added) and below `random`'s (paired t-test over seeds, "
              "Holm over the datasets, p < 0.05), without and with the check, and the median "
              "share of the gain without the check that is kept (over the datasets where "
              "that gain is positive).", "",
              "| protocol | datasets | below initial: without / with | below random: "
              "without / with | gain kept |", "|---|---:|---:|---:|---:|"]  # fmt: skip
    for protocol, part in runs.groupby("protocol", sort=False):
        for checked in checked_strategies(set(part["strategy"])):
            base = checked.split(":check=")[0]
            tab, ref = held_out_check_table(part, checked), held_out_check_table(part, base)
            n = {f: [int((t[f"outcome_{f}"] == "loss").sum()) for t in (ref, tab)]
                 for f in ("initial", "random")}  # fmt: skip
            kept = tab["kept"].dropna()
            lines.append(f"| `{protocol}` | {len(tab)} | {n['initial'][0]} / {n['initial'][1]} "
                         f"| {n['random'][0]} / {n['random'][1]} | "
                         f"{f'{kept.median():.0%}' if len(kept) else '–'} |")  # fmt: skip
    for protocol, part in runs.groupby("protocol", sort=False):
        lines += ["", f"## Protocol `{protocol}`"]
        for checked in checked_strategies(set(part["strategy"])):
            lines += check_section(held_out_check_table(part, checked), checked)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
