"""Influence factors: direct solve against conjugate gradients, over D and K.

Usage::

    python benchmarks/bench_solvers.py [--n-train 5000] [--dims 64 256 1024 2048]
        [--classes 2 10 100] [--tol 1e-6] [--repeats 3]

For each (D, K) a model is fit on synthetic data (labels from a random softmax model),
then ``V = H^{-1} g_V`` is computed with the direct solver (only while K(D+1) <= 8,000)
and with Jacobi-preconditioned CG to ``--tol`` relative residual. Prints a Markdown table:
seconds (median of ``--repeats``), CG iterations, and the relative difference of the two.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from salutary import InfluenceFactors, LogisticModel


def timed(fn, repeats, *fn_args, **fn_kwargs):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn(*fn_args, **fn_kwargs)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-train", type=int, default=5000)
    ap.add_argument("--n-val", type=int, default=1000)
    ap.add_argument("--dims", type=int, nargs="+", default=[64, 256, 1024, 2048])
    ap.add_argument("--classes", type=int, nargs="+", default=[2, 10, 100])
    ap.add_argument("--tol", type=float, default=1e-6)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--direct-max", type=int, default=8000)
    args = ap.parse_args()

    print(f"n_train={args.n_train}, n_val={args.n_val}, λ=50, CG tol {args.tol:g}, "
          f"median of {args.repeats}\n")  # fmt: skip
    print("| D | K | parameters | direct s | CG s | CG iterations | CG residual | rel. diff |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for d in args.dims:
        for k in args.classes:
            rng = np.random.default_rng(d * 1000 + k)
            n = args.n_train + args.n_val
            X = rng.normal(size=(n, d))
            W = rng.normal(size=(k, d)) * 3 / np.sqrt(d)
            logits = X @ W.T
            y = (logits + rng.gumbel(size=logits.shape)).argmax(axis=1)
            X_tr, y_tr, X_val, y_val = (
                X[: args.n_train],
                y[: args.n_train],
                X[args.n_train :],
                y[args.n_train :],
            )
            model = LogisticModel(l2=50.0, tol=1e-8).fit(X_tr, y_tr)
            # A class may be missing from the small validation set or from training.
            keep = np.isin(y_val, model.classes_)
            X_val, y_val = X_val[keep], y_val[keep]
            n_params = len(model.classes_) if len(model.classes_) > 2 else 1
            n_params *= d + 1
            data = (model, X_tr, X_val, y_val)
            t_cg, cg = timed(InfluenceFactors(solver="cg", tol=args.tol).fit, args.repeats, *data)
            if n_params <= args.direct_max:
                t_dir, direct = timed(InfluenceFactors(solver="direct").fit, args.repeats, *data)
                diff = np.max(np.abs(cg.factors_ - direct.factors_)) / np.max(
                    np.abs(direct.factors_)
                )
                t_dir_s, diff_s = f"{t_dir:.3f}", f"{diff:.1e}"
            else:
                t_dir_s, diff_s = "–", "–"
            info = cg.solve_info_
            print(f"| {d} | {k} | {n_params:,} | {t_dir_s} | {t_cg:.3f} | {info.n_iter} | "
                  f"{info.residual:.1e} | {diff_s} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
