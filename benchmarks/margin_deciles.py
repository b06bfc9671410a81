"""How often a salutary label is right, by its margin and by whether the model agrees.

Usage::

    python benchmarks/margin_deciles.py [--datasets wine_quality ...] [--seeds 0 1 ...]
        [--strategy salutary-newton] [--jobs 2] [--output margin_deciles.csv]
    python benchmarks/margin_deciles.py --runs margin_deciles.csv  # tables only

Per dataset and seed, the benchmark's ``paper`` protocol (``paper_split``: 20% test, 20%
validation, 300 initial labels, standardized; 10 rounds of 10, ``LogisticModel(l2=50)``)
runs the strategy (default: the default, ``salutary-newton``) with the pool's true labels
hidden, and every label it adds is compared with the truth afterwards. Prints the share
of labels equal to the truth per dataset and over all of them: per decile of
``salutary_margin`` among the labels of the same round (the same model and validation
set: margins of different rounds are on different scales), for ``salutary_agrees``
False and True, and for negative margins; the share of the wrong labels among those the
model disagreed with, or also among the two smallest margin deciles of their round; the
median margin per round. Writes every added label to ``--output`` (``--runs`` reads such a
file instead of running).
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from threadpoolctl import threadpool_limits

from salutary import LogisticModel
from salutary.datasets import load_dataset
from salutary.experiment import paper_split
from salutary.loop import run_active_learning

DATASETS = ["wine_quality", "electrical_grid", "adult", "letter", "magic", "spambase", "pima"]


def one(dataset: str, seed: int, strategy: str) -> pd.DataFrame:
    """Every label one run added, with its evidence and whether it was right."""
    data = load_dataset(dataset)
    s = paper_split(data.X, data.y, seed=seed)
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = run_active_learning(
            s.X_labeled, s.y_labeled, s.X_pool, s.X_val, s.y_val, s.X_test, s.y_test,
            strategy=strategy, budget=10, rounds=10, seed=seed, y_pool=s.y_pool,
            model=LogisticModel(l2=50.0, warm_start=True),
        )  # fmt: skip
    rows = np.concatenate(res.selected)
    return pd.DataFrame(
        {
            "strategy": strategy,
            "dataset": dataset,
            "seed": seed,
            "round": np.concatenate([np.full(len(r), i + 1) for i, r in enumerate(res.selected)]),
            "score": np.concatenate(res.scores),
            "margin": np.concatenate(res.margins),
            "agrees": np.concatenate(res.agrees),
            "correct": np.concatenate(res.labels) == s.y_pool[rows],
        }
    )


def with_deciles(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` with the decile of each margin among the labels of its round (1 = smallest)."""
    by_round = runs.groupby(["dataset", "seed", "round"])["margin"]
    return runs.assign(
        decile=by_round.transform(lambda m: pd.qcut(m.rank(method="first"), 10, labels=False) + 1)
    )


def tables(runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Share of right labels per margin decile within a round (``runs`` with deciles),
    and per agreement with the model."""
    by_decile = runs.pivot_table(index="decile", columns="dataset", values="correct")
    by_decile["all"] = runs.groupby("decile")["correct"].mean()
    by_agree = runs.pivot_table(index="agrees", columns="dataset", values="correct")
    by_agree["all"] = runs.groupby("agrees")["correct"].mean()
    by_agree["share of labels"] = runs.groupby("agrees").size() / len(runs)
    return by_decile, by_agree


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=DATASETS)
    ap.add_argument("--seeds", nargs="+", type=int, default=list(range(10)))
    ap.add_argument("--strategy", default="salutary-newton")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--output", default="margin_deciles.csv")
    ap.add_argument("--runs", help="print the tables of an earlier --output file")
    args = ap.parse_args()
    if args.runs:
        runs = pd.read_csv(args.runs)
    else:
        tasks = [(d, s) for d in args.datasets for s in args.seeds]
        out = Parallel(n_jobs=args.jobs)(delayed(one)(d, s, args.strategy) for d, s in tasks)
        runs = pd.concat(out, ignore_index=True)
        runs.to_csv(args.output, index=False)
    runs = with_deciles(runs)
    by_decile, by_agree = tables(runs)
    pd.set_option("display.width", 200)
    seeds = sorted(runs["seed"].unique().tolist())
    print(f"{runs['strategy'].iloc[0]}, seeds {seeds}: {len(runs)} labels")
    print(
        "\nshare of labels equal to the truth, per decile of salutary_margin within its "
        "round (1 = smallest)"
    )
    print(by_decile.round(3).to_string())
    print("\nshare of labels equal to the truth, by salutary_agrees")
    print(by_agree.round(3).to_string())
    negative = runs["margin"] < 0
    right = runs["correct"]
    print(
        f"\nnegative margin: {negative.mean():.1%} of labels, {right[negative].mean():.3f} "
        f"right (others {right[~negative].mean():.3f})"
    )
    wrong = ~runs["correct"]
    doubt = ~runs["agrees"]
    doubt_or_small = doubt | (runs["decile"] <= 2)
    print(
        f"wrong labels: {wrong.sum()}; {(wrong & doubt).sum() / wrong.sum():.1%} of them where "
        f"salutary_agrees is False ({doubt.mean():.1%} of labels); "
        f"{(wrong & doubt_or_small).sum() / wrong.sum():.1%} there or in the two smallest "
        f"margin deciles of their round ({doubt_or_small.mean():.1%} of labels)"
    )
    medians = runs.groupby("round")["margin"].median()
    print("median margin per round:", " ".join(f"{m:.2f}" for m in medians))


if __name__ == "__main__":
    main()
