"""Time the dense training Hessian against its kernel form, for the switch between them.

For softmax regression on synthetic Gaussian data (``K`` classes, ``d`` features, an
intercept, L2 1) with ``n`` training rows chosen so that ``n K`` is each given share of
the ``K (d + 1)`` parameters, builds and factorizes the round's Hessian both ways
(``salutary.influence.training_system``, the dense one factorized once, and
``salutary.influence.KernelHessian``) and solves ``--rhs`` right-hand sides with each,
on one BLAS thread; prints CPU seconds and the largest difference of the solutions.

    python benchmarks/bench_kernel.py --d 392 --shares 0.25 0.5 0.6 0.75 1.0
    python benchmarks/bench_kernel.py --d 784 --shares 0.38 0.5 0.6
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

import salutary.influence._newton
from salutary._linear import LogisticObjective
from salutary.influence import KernelHessian, training_system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d", type=int, default=392)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--rhs", type=int, default=2000)
    parser.add_argument("--shares", type=float, nargs="+", default=[0.25, 0.5, 0.75, 1.0])
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    k, d = args.k, args.d
    p = k * (d + 1)
    # Factorized once per round, whatever the size (as above 1,000 parameters).
    salutary.influence._newton.REFACTOR_MAX_PARAMS = 0
    with threadpool_limits(1):
        for share in args.shares:
            n = int(share * p / k)
            X = rng.normal(size=(n, d))
            train = LogisticObjective(X, rng.integers(0, k, n), k, 1.0, True)
            theta = 0.05 * rng.normal(size=(k, d + 1))
            B = rng.normal(size=(p, args.rhs))
            cost, out = {}, {}
            for name, build in [("dense", training_system), ("kernel", KernelHessian)]:
                c0 = time.process_time()
                system = build(train, theta)
                c1 = time.process_time()
                out[name] = system.solve0(B)
                cost[name] = (c1 - c0, time.process_time() - c1)
            err = np.max(np.abs(out["dense"] - out["kernel"])) / np.max(np.abs(out["dense"]))
            print(f"p {p} n {n} n k / p {n * k / p:.2f}, {args.rhs} right-hand sides: dense "
                  f"{cost['dense'][0]:.2f} + {cost['dense'][1]:.2f} s, kernel "
                  f"{cost['kernel'][0]:.2f} + {cost['kernel'][1]:.2f} s (build + factorize, "
                  f"solves; CPU); dense / kernel {sum(cost['dense']) / sum(cost['kernel']):.2f}x;"
                  f" solutions differ by {err:.1e} relative")  # fmt: skip


if __name__ == "__main__":
    main()
