"""Seconds per labeling round, per strategy, with the whole loop (select, label, refit).

Usage::

    python benchmarks/bench_loop.py [--n-labeled 2000] [--n-pool 50000] [--d 64] [--k 10]
        [--budget 10] [--rounds 4] [--repeats 3] [--strategies salutary salutary-newton ...]

Synthetic data (labels from a random softmax model, standardized float64 features),
``run_active_learning`` with ``LogisticModel(l2=50)``; prints, per strategy, the median
over repeats of the median seconds per round (round 0, the initial fit, excluded). Run it
with two versions of the code (e.g. ``PYTHONPATH=other/src``) to compare them on the same
machine; quote ratios of medians measured in one session.
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np

from salutary import LogisticModel, run_active_learning


def make_data(n: int, d: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(k, d)) / np.sqrt(d) * 3
    X = rng.normal(size=(n, d))
    y = (X @ W.T + rng.gumbel(size=(n, k))).argmax(axis=1)
    return X, y


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-labeled", type=int, default=2000)
    ap.add_argument("--n-pool", type=int, default=50_000)
    ap.add_argument("--n-val", type=int, default=1000)
    ap.add_argument("--d", type=int, default=64)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--budget", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--strategies",
        nargs="+",
        default=["salutary", "salutary-newton", "self-training", "margin"],
    )
    args = ap.parse_args()
    n = args.n_labeled + args.n_pool + 2 * args.n_val
    X, y = make_data(n, args.d, args.k, seed=0)
    a, b, c = (
        args.n_labeled,
        args.n_labeled + args.n_pool,
        args.n_labeled + args.n_pool + args.n_val,
    )
    parts = (X[:a], y[:a], X[a:b], X[b:c], y[b:c], X[c:], y[c:])
    print(
        f"n_labeled={a} n_pool={args.n_pool} n_val={args.n_val} d={args.d} k={args.k} "
        f"budget={args.budget} rounds={args.rounds} repeats={args.repeats}"
    )
    for strategy in args.strategies:
        medians = []
        for rep in range(args.repeats):
            result = run_active_learning(
                *parts,
                strategy=strategy,
                budget=args.budget,
                rounds=args.rounds,
                seed=rep,
                y_pool=y[a:b],
                model=LogisticModel(l2=50.0, warm_start=True),
            )
            medians.append(statistics.median(result.seconds))
        print(f"{strategy:20} {statistics.median(medians):8.3f} s per round  "
              f"(repeats: {', '.join(f'{m:.3f}' for m in medians)})", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
