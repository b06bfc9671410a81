"""What single precision would buy `salutary-newton`'s round at the issue 19 shape.

Not an option of the library: a measurement for deciding whether to make one. On the
synthetic data of ``bench_round.py`` (n = 5,000 labeled, D = 384, K = 10, L2 10 by
default), the model is fit to the labeled set, then the three dense kernels of the
round are timed in double precision (as the library runs them) and in single: the
training Hessian from symmetric products (``symmetric_hessian``'s blocks, ``syrk``), its
Cholesky factorization, and the solves for 50 candidates' ``e_c (x) x`` (500 right-hand
sides). Median CPU seconds of ``--repeats`` runs, one BLAS thread, each kernel's two
precisions one after the other. It also prints how far the single-precision solves are
from the double ones (largest relative error over the right-hand sides).

    python benchmarks/bench_precision.py
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from bench_round import synthetic
from scipy.linalg import cho_solve, cholesky
from scipy.linalg.blas import dsyrk, ssyrk
from scipy.special import softmax
from threadpoolctl import threadpool_limits

from salutary import LogisticModel
from salutary.influence._newton import symmetric_hessian, training_objective


def hessian(Xa: np.ndarray, wP: np.ndarray, P: np.ndarray, dtype: type) -> np.ndarray:
    """The training Hessian's weight blocks (no L2), block by block as
    ``symmetric_hessian`` builds them, the products in ``dtype``."""
    k, d1 = P.shape[1], Xa.shape[1]
    syrk = dsyrk if dtype == np.float64 else ssyrk
    H = np.empty((k * d1, k * d1), dtype=dtype)
    upper = np.triu_indices(d1, 1)
    for a in range(k):
        for b in range(a, k):
            c = wP[:, a] * (1.0 - P[:, a]) if a == b else wP[:, a] * P[:, b]
            A = (Xa * np.sqrt(c)[:, None]).astype(dtype, copy=False)
            block = syrk(1.0 if a == b else -1.0, A.T, trans=0, lower=0)
            block[(upper[1], upper[0])] = block[upper]
            H[a * d1 : (a + 1) * d1, b * d1 : (b + 1) * d1] = block
            if b != a:
                H[b * d1 : (b + 1) * d1, a * d1 : (a + 1) * d1] = block
    return H


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
        # The library's Hessian, to check that the double blocks here are the same.
        H_lib = symmetric_hessian(train, P)
        ridge = train.l2 * train.mask.ravel()
        Xc = np.hstack([X_p[: args.candidates], np.ones((args.candidates, 1))])
        E = np.zeros((k, d1, args.candidates, k))
        for c in range(k):
            E[c, :, :, c] = Xc.T
        E = E.reshape(p, -1)
        out = {}
        for dtype in (np.float64, np.float32):
            t_h, H = timed(lambda dt=dtype: hessian(Xa, wP, P, dt), args.repeats)
            H[np.diag_indices_from(H)] += ridge.astype(dtype)
            if train.null is not None:  # the intercepts' null direction, as the library
                at = np.flatnonzero(train.null)
                H[np.ix_(at, at)] += np.outer(train.null[at], train.null[at]).astype(dtype)
            t_c, L = timed(lambda H=H: cholesky(H, lower=True, check_finite=False), args.repeats)
            rhs = E.astype(dtype)
            t_s, S = timed(
                lambda L=L, rhs=rhs: cho_solve((L, True), rhs, check_finite=False), args.repeats
            )
            out[dtype] = (t_h, t_c, t_s, H, S)
            print(f"{np.dtype(dtype).name}: Hessian {t_h:.3f} s, Cholesky {t_c:.3f} s, "
                  f"{E.shape[1]} solves {t_s:.3f} s, sum {t_h + t_c + t_s:.3f} s")  # fmt: skip
        d64, d32 = out[np.float64], out[np.float32]
        if train.null is not None:
            at = np.flatnonzero(train.null)
            H_lib[np.ix_(at, at)] += np.outer(train.null[at], train.null[at])
        gap_lib = np.max(np.abs(d64[3] - H_lib)) / np.max(np.abs(H_lib))
        err = np.max(np.linalg.norm(d32[4] - d64[4], axis=0) / np.linalg.norm(d64[4], axis=0))
        print(f"p = {p}: single / double time: Hessian {d32[0] / d64[0]:.2f}, Cholesky "
              f"{d32[1] / d64[1]:.2f}, solves {d32[2] / d64[2]:.2f}; saved "
              f"{sum(d64[:3]) - sum(d32[:3]):.3f} s; solves' largest relative error in "
              f"single {err:.1e}; double blocks against the library's Hessian "
              f"{gap_lib:.1e}")  # fmt: skip


if __name__ == "__main__":
    main()
