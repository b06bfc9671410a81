"""Seconds per round (selection + refit) of several strategies on one synthetic shape.

The shape of issue 19 by default: n = 5,000 labeled, 2,500 validation, N = 100,000 pool,
D = 384 features, K = 10 classes, L2 penalty 10, budget 10. Labels come from a random
softmax model; float64. Each strategy runs ``--rounds`` rounds of ``run_active_learning``
(warm-started refits), ``--repeats`` times; the median over repeats of the per-run median
round is printed with its ratio to the first strategy, all measured in the same process,
in wall-clock seconds and in CPU seconds of the process (round to round, the test
evaluation included; with one BLAS thread the steadier figure on a shared machine).

    python benchmarks/bench_round.py
    python benchmarks/bench_round.py --d 1024 --k 20 --threads 2

With ``--selection N`` only the selection is timed instead: N calls of each strategy's
``select`` on one model fitted to the labeled set, the median CPU seconds of all calls but
the first (which pays the process's first touch of its working memory), with its ratio
to the first strategy. Steadier than whole rounds on a loaded machine.

    python benchmarks/bench_round.py --selection 6 --strategies salutary salutary-newton

The matrix-free second-order path (102,500 parameters, beyond the dense Hessian's limit):

    python benchmarks/bench_round.py --n-train 2000 --n-val 1000 --n-pool 20000 \
        --d 1024 --k 100 --rounds 1 --strategies salutary salutary-newton
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_limits

from salutary import LogisticModel, run_active_learning
from salutary.strategies import get_strategy


def synthetic(n: int, n_val: int, n_pool: int, d: int, k: int, seed: int = 0):
    """Labeled, pool and validation arrays drawn from a random softmax model."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n + n_val + n_pool, d))
    W = rng.normal(size=(k, d)) * 3 / np.sqrt(d)
    logits = X @ W.T
    y = (logits + rng.gumbel(size=logits.shape)).argmax(axis=1)
    a, b = n, n + n_val
    # The pool's labels are what an oracle strategy would be told (none used here).
    return X[:a], y[:a], X[b:], y[b:], X[a:b], y[a:b]


def selection_only(args: argparse.Namespace, X_l, y_l, X_p, X_v, y_v) -> None:
    """Median CPU seconds of ``args.selection`` selections per strategy (first left out)."""
    print(f"n={args.n_train}, validation {args.n_val}, N={args.n_pool}, D={args.d}, "
          f"K={args.k}, l2={args.l2}, budget {args.budget}, selection only, "
          f"{args.selection} calls, {args.threads} BLAS thread(s)")  # fmt: skip
    with threadpool_limits(args.threads):
        model = LogisticModel(l2=args.l2).fit(X_l, y_l)
        ref = None
        for strategy in args.strategies:
            selector = get_strategy(strategy)
            cpu = []
            for _ in range(args.selection):
                start = time.process_time()
                selector.select(
                    model, X_l, y_l, X_p, args.budget, X_val=X_v, y_val=y_v,
                    rng=np.random.default_rng(0),
                )  # fmt: skip
                cpu.append(time.process_time() - start)
            median = statistics.median(cpu[1:] or cpu)
            ref = median if ref is None else ref
            print(f"{strategy:18s} {median:7.3f} s CPU per selection ({median / ref:5.2f}x "
                  f"{args.strategies[0]}; calls {', '.join(f'{c:.2f}' for c in cpu)})")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-train", type=int, default=5000)
    ap.add_argument("--n-val", type=int, default=2500)
    ap.add_argument("--n-pool", type=int, default=100_000)
    ap.add_argument("--d", type=int, default=384)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--l2", type=float, default=10.0)
    ap.add_argument("--budget", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads")
    ap.add_argument("--strategies", nargs="+", default=["salutary", "salutary-newton", "margin"])
    ap.add_argument(
        "--selection", type=int, default=0, metavar="N",
        help="time N selections on one fitted model instead of whole rounds",
    )  # fmt: skip
    args = ap.parse_args()
    X_l, y_l, X_p, y_p, X_v, y_v = synthetic(args.n_train, args.n_val, args.n_pool, args.d, args.k)
    if args.selection:
        selection_only(args, X_l, y_l, X_p, X_v, y_v)
        return
    print(f"n={args.n_train}, validation {args.n_val}, N={args.n_pool}, D={args.d}, "
          f"K={args.k}, l2={args.l2}, budget {args.budget}, {args.rounds} rounds, "
          f"{args.threads} BLAS thread(s)")  # fmt: skip
    medians: dict[str, float] = {}
    cpu: dict[str, float] = {}
    with threadpool_limits(args.threads):
        for strategy in args.strategies:
            runs, cpu_runs = [], []
            for _ in range(args.repeats):
                # CPU seconds of this process per round (callback after the initial
                # fit and after every round): on a shared machine less disturbed by
                # other processes than wall-clock time, with one BLAS thread.
                marks: list[float] = []
                result = run_active_learning(
                    X_l, y_l, X_p, X_v, y_v, X_v, y_v, strategy=strategy,
                    budget=args.budget, rounds=args.rounds, seed=0, y_pool=y_p,
                    model=LogisticModel(l2=args.l2, warm_start=True),
                    callback=lambda *_, m=marks: m.append(time.process_time()),
                )  # fmt: skip
                runs.append(statistics.median(result.seconds))
                cpu_runs.append(statistics.median(np.diff(marks)))
            medians[strategy] = statistics.median(runs)
            cpu[strategy] = statistics.median(cpu_runs)
            ref, cpu_ref = medians[args.strategies[0]], cpu[args.strategies[0]]
            print(f"{strategy:18s} {medians[strategy]:7.3f} s per round "
                  f"({medians[strategy] / ref:5.2f}x {args.strategies[0]}; runs "
                  f"{', '.join(f'{r:.3f}' for r in runs)}); CPU {cpu[strategy]:7.3f} s "
                  f"({cpu[strategy] / cpu_ref:5.2f}x; runs "
                  f"{', '.join(f'{r:.3f}' for r in cpu_runs)})")  # fmt: skip


if __name__ == "__main__":
    main()
