"""The practitioner's protocol: a fixed total T of true labels, spent however each method
wants; final test accuracy of each method (``salutary.benchmark.practitioner``).

Usage::

    python benchmarks/practitioner.py [--datasets wine_quality pima ...]
        [--totals 100 300 1000] [--seeds 0 1 ... 9] [--jobs 2]
        [--output benchmarks/results/practitioner.csv]

Per dataset, T and seed: 20% test, T true labels, the rest the pool (hidden truth).
Methods: all-labeled (L2 logistic regression, lambda = 50, on the T labels), all-labeled-cv
(lambda chosen by 5-fold cross-validation on the T labels),
self-training and label spreading on top of the T labels, salutary-newton and the
paper's salutary holding out 25% or 50% of the T labels as validation (10 rounds of 10
machine labels, final model on everything), salutary-crossfit (all T labels train and
validate), margin sampling from T/2 spending the other T/2 on true labels, and
salutary-newton and margin with lambda chosen by cross-validation (``l2=cv``). A
T larger than half of a dataset's non-test rows is skipped. Writes one row per run to
``--output`` (atomically, after every task) and prints the mean accuracy per dataset,
T and method with a paired Wilcoxon test against ``--baseline`` (Holm across
datasets); ``--summarize`` only prints these tables from ``--output``.
"""

from __future__ import annotations

import argparse
import time

import pandas as pd

from salutary.benchmark.practitioner import (
    METHODS,
    markdown_practitioner,
    run_practitioner,
    summarize_practitioner,
)

TABULAR = ["wine_quality", "pima", "magic", "electrical_grid", "spambase", "adult", "letter"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=TABULAR)
    ap.add_argument("--totals", nargs="+", type=int, default=[100, 300, 1000])
    ap.add_argument("--seeds", nargs="+", type=int, default=list(range(10)))
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--output", default="practitioner.csv")
    ap.add_argument(
        "--resume", action="store_true", help="keep the runs --output holds, run the rest"
    )
    ap.add_argument(
        "--baseline", default="all-labeled", help="method the others are tested against"
    )
    ap.add_argument(
        "--summarize", action="store_true", help="only print the tables of --output (no runs)"
    )
    args = ap.parse_args()
    t0 = time.perf_counter()

    def progress(dataset: str, total: int, seed: int) -> None:
        print(f"{time.perf_counter() - t0:7.1f}s  {dataset} T={total} seed={seed}", flush=True)

    if args.summarize:
        runs = pd.read_csv(args.output)
        runs = runs[runs["method"].isin(args.methods) & runs["accuracy"].notna()]
    else:
        runs = run_practitioner(
            args.datasets, args.totals, args.seeds, methods=args.methods, n_jobs=args.jobs,
            output=args.output, resume=args.resume, on_done=progress,
        )  # fmt: skip
        print(f"{len(runs)} runs in {time.perf_counter() - t0:.0f} s -> {args.output}")
    table = summarize_practitioner(runs, baseline=args.baseline)
    pd.set_option("display.width", 250)
    wide = table.pivot_table(index=["dataset", "total"], columns="method", values="mean")
    print("\nmean final test accuracy")
    print(wide[[m for m in args.methods if m in wide.columns]].round(4).to_string())
    print(f"\nvs {args.baseline}: mean difference (points), wins/seeds, Holm-corrected p")
    for _, r in table[table["method"] != args.baseline].iterrows():
        head = f"  {r['dataset']:16s} T={r['total']:<5d} {r['method']:30s}"
        print(f"{head} {100 * r['diff']:+6.2f}  {r['wins']}/{r['n']}  p_holm={r['p_holm']:.3g}")
    methods = [m for m in args.methods if m in set(runs["method"])]
    print(
        f"\nMarkdown (mean accuracy %, difference to {args.baseline} in points, ▲/▼ Holm p < 0.05)"
    )
    print(markdown_practitioner(table, methods))


if __name__ == "__main__":
    main()
