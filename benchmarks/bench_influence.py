"""Time one round's influence matrix against the bare pool product, in the same run.

Usage::

    python benchmarks/bench_influence.py [--n-train 2000] [--d 100] [--k 10]
        [--n-pool 100000] [--repeats 7]

Prints a Markdown table (median of ``--repeats`` runs, and the ratio to the floor
``X_pool @ W.T``) ready for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np
import scipy
import sklearn

from salutary import InfluenceFactors, LogisticModel
from salutary.strategies import top_k


def timed(fn, repeats):
    times = []
    out = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def explicit_reference(model, X_train, X_val, y_val, X_pool):
    """The straightforward way: per-class gradient matrices times a pseudo-inverse of an
    explicitly assembled Hessian (built without per-sample loops, to be fair)."""
    classes = model.classes_
    k = len(classes)
    Xa = np.hstack([X_train, np.ones((len(X_train), 1))])
    theta = np.hstack([model.coef_, model.intercept_[:, None]])
    P = model.predict_proba(X_train)
    d1 = Xa.shape[1]
    H = np.zeros((k * d1, k * d1))
    for a in range(k):
        for b in range(k):
            c = P[:, a] * ((a == b) - P[:, b])
            H[a * d1 : (a + 1) * d1, b * d1 : (b + 1) * d1] = Xa.T @ (Xa * c[:, None])
    mask = np.ones((k, d1))
    mask[:, -1] = 0
    H += model.l2 * np.diag(mask.ravel())
    Hinv = np.linalg.pinv(H, hermitian=True)
    Xv = np.hstack([X_val, np.ones((len(X_val), 1))])
    Pv = model.predict_proba(X_val)
    Yv = (y_val[:, None] == classes[None, :]).astype(float)
    g_val = ((Pv - Yv).T @ Xv).ravel()
    Xp = np.hstack([X_pool, np.ones((len(X_pool), 1))])
    Pp = Xp @ theta.T
    Pp = np.exp(Pp - Pp.max(axis=1, keepdims=True))
    Pp /= Pp.sum(axis=1, keepdims=True)
    out = np.empty((len(X_pool), k))
    hv = Hinv @ g_val
    for c in range(k):
        # gradient matrix of every pool sample for class c: (n_pool, k * d1)
        R = Pp - np.eye(k)[c]
        G = (R[:, :, None] * Xp[:, None, :]).reshape(len(X_pool), -1)
        out[:, c] = G @ hv
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-train", type=int, default=2000)
    ap.add_argument("--n-val", type=int, default=1000)
    ap.add_argument("--d", type=int, default=100)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--n-pool", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--reference-pool", type=int, default=20_000)
    ap.add_argument("--dtype", choices=["float64", "float32"], default="float64",
                    help="dtype of the pool (the model and factors stay float64)")  # fmt: skip
    args = ap.parse_args()

    rng = np.random.default_rng(0)
    d, k = args.d, args.k
    W = rng.normal(size=(k, d)) / np.sqrt(d) * 3
    n_all = args.n_train + args.n_val + args.n_pool
    X = rng.normal(size=(n_all, d))
    logits = X @ W.T
    y = (logits + rng.gumbel(size=logits.shape)).argmax(axis=1)
    X_tr, y_tr = X[: args.n_train], y[: args.n_train]
    X_val = X[args.n_train : args.n_train + args.n_val]
    y_val = y[args.n_train : args.n_train + args.n_val]
    X_pool = np.ascontiguousarray(X[args.n_train + args.n_val :], dtype=args.dtype)

    model = LogisticModel(l2=50.0).fit(X_tr, y_tr)
    Wfit = model.coef_.astype(args.dtype)
    reps = args.repeats

    t_floor, _ = timed(lambda: X_pool @ Wfit.T, reps)
    t_predict, _ = timed(lambda: model.predict_proba(X_pool), reps)
    t_fit, _ = timed(lambda: LogisticModel(l2=50.0).fit(X_tr, y_tr), reps)
    t_factors, factors = timed(
        lambda: InfluenceFactors(solver="direct").fit(model, X_tr, X_val, y_val), reps
    )
    t_factors_cg, factors_cg = timed(
        lambda: InfluenceFactors(solver="cg", tol=1e-10).fit(model, X_tr, X_val, y_val), reps
    )
    t_score, I = timed(lambda: factors.score(X_pool), reps)
    t_best, _ = timed(lambda: factors.best_labels(X_pool), reps)

    def round_selection():
        _, gain = factors.best_labels(X_pool)
        return top_k(gain, 10, np.random.default_rng(0))

    t_round_sel, _ = timed(lambda: (InfluenceFactors().fit(model, X_tr, X_val, y_val),
                                    round_selection()), reps)  # fmt: skip

    n_ref = min(args.reference_pool, args.n_pool)
    t_ref, I_ref = timed(
        lambda: explicit_reference(model, X_tr, X_val, y_val, X_pool[:n_ref]), max(1, reps // 3)
    )
    t_ours_small, I_small = timed(
        lambda: (
            InfluenceFactors(solver="direct").fit(model, X_tr, X_val, y_val).score(X_pool[:n_ref])
        ),
        reps,
    )
    agree = np.max(np.abs(I_small - I_ref)) / np.max(np.abs(I_ref))
    cg_agree = np.max(np.abs(factors_cg.factors_ - factors.factors_)) / np.max(
        np.abs(factors.factors_)
    )

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, NumPy {np.__version__}, SciPy {scipy.__version__}, "
          f"scikit-learn {sklearn.__version__}")  # fmt: skip
    print(
        f"case: n_train={args.n_train}, n_val={args.n_val}, D={d}, K={k}, "
        f"N_pool={args.n_pool}, pool {args.dtype}, median of {reps} runs\n"
    )
    print("| step | seconds | × floor |")
    print("|---|---:|---:|")
    rows = [
        ("floor: `X_pool @ W.T`", t_floor),
        ("`predict_proba(X_pool)`", t_predict),
        ("refit `LogisticModel(l2=50)` from zero", t_fit),
        ("factors, direct (Hessian + Cholesky)", t_factors),
        (f"factors, CG (tol 1e-10, {factors_cg.solve_info_.n_iter} it.)", t_factors_cg),
        ("scoring: influence matrix `score(X_pool)`", t_score),
        ("scoring: salutary labels `best_labels(X_pool)`", t_best),
        ("one round's influence: factors + best labels + top-b", t_round_sel),
    ]
    for name, t in rows:
        print(f"| {name} | {t:.4f} | {t / t_floor:.2f} |")
    print(
        f"\nexplicit reference (pinv of the assembled Hessian, per-class gradient "
        f"matrices) on {n_ref} pool samples: {t_ref:.3f} s; ours on the same: "
        f"{t_ours_small:.4f} s; speed-up {t_ref / t_ours_small:.1f}×; "
        f"max relative difference {agree:.1e}"
    )
    print(f"CG vs direct factors: max relative difference {cg_agree:.1e}")
    # Peak memory of scoring beyond its N-sized outputs (labels + scores): chunked, so it
    # should not grow with N.
    import tracemalloc

    for n in (args.n_pool // 10, args.n_pool):
        tracemalloc.start()
        factors.best_labels(X_pool[:n])
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        outputs = n * (np.dtype(np.intp).itemsize + X_pool.dtype.itemsize)
        print(
            f"best_labels on {n:,} rows: peak {peak / 2**20:.1f} MiB, of which outputs "
            f"{outputs / 2**20:.1f} MiB; working memory {(peak - outputs) / 2**20:.1f} MiB"
        )
    assert I.shape == (args.n_pool, k)


if __name__ == "__main__":
    main()
