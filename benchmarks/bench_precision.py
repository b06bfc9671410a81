"""What single precision would buy `salutary-newton`'s round at the issue 19 shape.

Not an option of the library: a measurement for deciding whether to make one. On the
synthetic data of ``bench_round.py`` (n = 5,000 labeled, D = 384, K = 10, L2 10 by
default), the model is fit to the labeled set, then the three dense kernels of the
round are timed in double precision (as the library runs them) and in single: the
training Hessian from symmetric products (``symmetric_hessian``'s blocks, ``syrk``), its
Cholesky factorization, and the solves for 50 candidates' ``e_c (x) x`` (500 right-hand
sides). Median CPU seconds of ``--repeats`` runs, one BLAS thread: the Hessian in double
(the library's ``symmetric_hessian``) and in single (the same blocks with ``ssyrk``), then
each one's factorization and solves. It also prints how far the single-precision
Hessian and solves are from the double ones (largest relative differences).

    python benchmarks/bench_precision.py
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from bench_round import synthetic
from scipy.linalg import cho_solve, cholesky
from scipy.linalg.blas import ssyrk
from scipy.special import softmax
from threadpoolctl import threadpool_limits

from salutary import LogisticModel
from salutary.influence._newton import symmetric_hessian, training_objective


def single_hessian(Xa: np.ndarray, wP: np.ndarray, P: np.ndarray) -> np.ndarray:
    """The training Hessian's weight blocks (no L2) in single precision, block by block
    as ``symmetric_hessian`` builds them in double (``ssyrk`` for its ``dsyrk``)."""
    k, d1 = P.shape[1], Xa.shape[1]
    H = np.empty((k * d1, k * d1), dtype=np.float32)
    upper = np.triu_indices(d1, 1)
    for a in range(k):
        for b in range(a, k):
            c = wP[:, a] * (1.0 - P[:, a]) if a == b else wP[:, a] * P[:, b]
            A = (Xa * np.sqrt(c)[:, None]).astype(np.float32)
            block = ssyrk(1.0 if a == b else -1.0, A.T, trans=0, lower=0)
            block[(upper[1], upper[0])] = block[upper]
            H[a * d1 : (a + 1) * d1, b * d1 : (b + 1) * d1] = block
            if b != a:
                H[b * d1 : (b + 1) * d1, a * d1 : (a + 1) * d1] = block
    return H


def add_null(H: np.ndarray, train) -> None:
    """Add the intercepts' null-direction fix, as ``training_system`` does, in ``H``'s
    precision."""
    if train.null is not None:
        at = np.flatnonzero(train.null)
        H[np.ix_(at, at)] += np.outer(train.null[at], train.null[at]).astype(H.dtype)


def timed(fn, repeats: int):
    """Median CPU seconds of ``repeats`` calls, and the last call's result."""
    cpu, out = [], None
    for _ in range(repeats):
        start = time.process_time()
        out = fn()
        cpu.append(time.process_time() - start)
    return statistics.median(cpu), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-train", type=int, default=5000)
    ap.add_argument("--d", type=int, default=384)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--l2", type=float, default=10.0)
    ap.add_argument("--candidates", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    X_l, y_l, X_p, *_ = synthetic(args.n_train, 10, 1000, args.d, args.k)
    with threadpool_limits(1):
        model = LogisticModel(l2=args.l2).fit(X_l, y_l)
        train, theta = training_objective(model, X_l, None)
        P = softmax(train.logits(theta), axis=1)
        Xa, wP = np.asarray(train.Xa), P * train.w[:, None]
        k, d1 = train.k, train.d1
        p = k * d1
        ridge = train.l2 * train.mask.ravel()
        Xc = np.hstack([X_p[: args.candidates], np.ones((args.candidates, 1))])
        E = np.zeros((k, d1, args.candidates, k))
        for c in range(k):
            E[c, :, :, c] = Xc.T
        E = E.reshape(p, -1)
        # Double: the library's own Hessian (L2 included). Single: the same blocks in
        # single precision, then the L2.
        t_h64, H64 = timed(lambda: symmetric_hessian(train, P), args.repeats)
        t_h32, H32 = timed(lambda: single_hessian(Xa, wP, P), args.repeats)
        H32[np.diag_indices_from(H32)] += ridge.astype(np.float32)
        out = {}
        for H, t_h in ((H64, t_h64), (H32, t_h32)):
            add_null(H, train)
            t_c, L = timed(lambda H=H: cholesky(H, lower=True, check_finite=False), args.repeats)
            rhs = E.astype(H.dtype)
            t_s, S = timed(
                lambda L=L, rhs=rhs: cho_solve((L, True), rhs, check_finite=False), args.repeats
            )
            out[H.dtype] = (t_h, t_c, t_s, S)
            print(f"{H.dtype.name}: Hessian {t_h:.3f} s, Cholesky {t_c:.3f} s, "
                  f"{E.shape[1]} solves {t_s:.3f} s, sum {t_h + t_c + t_s:.3f} s")  # fmt: skip
        d64, d32 = out[np.dtype(np.float64)], out[np.dtype(np.float32)]
        gap = np.max(np.abs(H32 - H64)) / np.max(np.abs(H64))
        err = np.max(np.linalg.norm(d32[3] - d64[3], axis=0) / np.linalg.norm(d64[3], axis=0))
        print(f"p = {p}: single / double time: Hessian {d32[0] / d64[0]:.2f}, Cholesky "
              f"{d32[1] / d64[1]:.2f}, solves {d32[2] / d64[2]:.2f}; saved "
              f"{sum(d64[:3]) - sum(d32[:3]):.3f} s; solves' largest relative error in "
              f"single {err:.1e}; the single Hessian's largest difference from the "
              f"library's {gap:.1e} (relative to its largest entry)")  # fmt: skip


if __name__ == "__main__":
    main()
