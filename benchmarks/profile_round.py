"""Profile whole rounds of salutary labeling at scale and print where the time goes.

Usage::

    python benchmarks/profile_round.py [--n-train 5000] [--n-pool 1000000] [--d 384]
        [--k 10] [--rounds 2]

Synthetic data (labels from a random softmax model), float64, ``run_active_learning`` with
the ``salutary`` strategy, budget 10, under cProfile; prints the functions with the
largest cumulative time.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

import numpy as np

from salutary import LogisticModel, run_active_learning


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-train", type=int, default=5000)
    ap.add_argument("--n-pool", type=int, default=1_000_000)
    ap.add_argument("--d", type=int, default=384)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    n = args.n_train + 2000 + args.n_pool
    X = rng.normal(size=(n, args.d))
    W = rng.normal(size=(args.k, args.d)) * 3 / np.sqrt(args.d)
    logits = X @ W.T
    y = (logits + rng.gumbel(size=logits.shape)).argmax(axis=1)
    a, b = args.n_train, args.n_train + 1000
    parts = (X[:a], y[:a], X[b + 1000 :], X[a:b], y[a:b], X[b : b + 1000], y[b : b + 1000])
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    result = run_active_learning(
        *parts, strategy="salutary", budget=10, rounds=args.rounds, seed=0,
        model=LogisticModel(l2=50.0, warm_start=True),
    )  # fmt: skip
    prof.disable()
    total = time.perf_counter() - t0
    per_round = np.round(result.seconds, 2).tolist()
    print(f"{args.rounds} rounds, n_train={a}, N_pool={args.n_pool}, D={args.d}, K={args.k}: "
          f"{total:.2f} s in all; per round {per_round} s\n")  # fmt: skip
    pstats.Stats(prof).sort_stats("cumulative").print_stats(18)


if __name__ == "__main__":
    main()
