"""CG preconditioners on an ill-conditioned real problem: standardized MNIST pixels.

Usage::

    python benchmarks/bench_preconditioner.py [--seed 0] [--rounds 3] [--threads 1]

The `fair` protocol's model: L2 logistic regression (lambda = 50) on the 300 initial
labels plus the 14,000 validation labels of MNIST's paper split (7,850 parameters, so
conjugate gradients on Hessian-vector products), then ``--rounds`` warm-started refits,
each after adding 10 pool samples, then the influence factors on 2,000 validation rows.
Run once with the diagonal (Jacobi) preconditioner only, once with the block-Jacobi one
the model builds when a Jacobi solve proves slow. Prints CG iterations and seconds per
stage, and the largest difference between the two runs' parameters and factors.
Needs MNIST (``make data``).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

import salutary.model as model_module
from salutary import InfluenceFactors, LogisticModel
from salutary._linear import LogisticObjective
from salutary.datasets import load_dataset
from salutary.experiment import paper_split


def run(split, rounds: int, block: bool) -> dict:
    """One cold fit, ``rounds`` warm refits and the factors; CG iterations and seconds."""
    iterations: list[int] = []
    original = model_module._update_preconditioner

    def counting(pre, obj, P, info, gradient, fresh):
        iterations.append(info.n_iter)
        return original(pre, obj, P, info, gradient, fresh)

    pays = LogisticObjective.block_jacobi_pays
    model_module._update_preconditioner = counting
    if not block:
        LogisticObjective.block_jacobi_pays = lambda self, n_iter: False
    try:
        X = np.vstack([split.X_labeled, split.X_val])
        y = np.concatenate([split.y_labeled, split.y_val])
        model = LogisticModel(l2=50.0, warm_start=True)
        stages = []
        t0 = time.perf_counter()
        model.fit(X, y)
        stages.append(("cold fit", time.perf_counter() - t0, sum(iterations)))
        for r in range(rounds):
            iterations.clear()
            X = np.vstack([X, split.X_pool[10 * r : 10 * r + 10]])
            y = np.concatenate([y, split.y_pool[10 * r : 10 * r + 10]])
            t0 = time.perf_counter()
            model.fit(X, y)
            stages.append((f"warm refit {r + 1}", time.perf_counter() - t0, sum(iterations)))
        t0 = time.perf_counter()
        factors = InfluenceFactors().fit(model, X, split.X_val[:2000], split.y_val[:2000])
        stages.append(("influence factors", time.perf_counter() - t0, factors.solve_info_.n_iter))
    finally:
        model_module._update_preconditioner = original
        LogisticObjective.block_jacobi_pays = pays
    return {"stages": stages, "theta": model.theta_, "factors": factors.factors_}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    data = load_dataset("mnist")
    split = paper_split(data.X, data.y, seed=args.seed)
    with threadpool_limits(args.threads):
        jacobi = run(split, args.rounds, block=False)
        block = run(split, args.rounds, block=True)
    print("| stage | Jacobi: CG its | s | block-Jacobi: CG its | s | time ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    for (name, tj, ij), (_, tb, ib) in zip(jacobi["stages"], block["stages"], strict=True):
        print(f"| {name} | {ij} | {tj:.1f} | {ib} | {tb:.1f} | {tj / tb:.2f}x |")
    tj = sum(s[1] for s in jacobi["stages"])
    tb = sum(s[1] for s in block["stages"])
    print(f"| total | | {tj:.1f} | | {tb:.1f} | {tj / tb:.2f}x |")
    for key in ("theta", "factors"):
        a, b = jacobi[key], block[key]
        print(f"max relative difference of {key}: {np.abs(a - b).max() / np.abs(a).max():.1e}")


if __name__ == "__main__":
    main()
