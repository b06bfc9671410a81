"""Time salutary's influence matrix against pyDVL's influence module, same problem, same run.

The problem: softmax regression with ``K`` classes, no intercept, L2 penalty ``lambda``,
fitted by :class:`salutary.LogisticModel` on ``n_train`` points. For every pool point
``x_j`` and every class ``c``, both libraries compute the influence of adding
``(x_j, c)`` on the summed validation cross-entropy::

    I[j, c] = grad l(x_j, c)^T H_sum^{-1} grad L_V,   L_V = sum_v CE(x_v, y_v)

pyDVL sees the same model as a float64 ``torch.nn.Linear(D, K, bias=False)`` with
``cross_entropy`` (mean reduction). Its Hessian is that of the *mean* training loss, so
``H_sum = n_train * (H_mean + (lambda / n_train) I)``: passing
``regularization = lambda / n_train`` makes the two systems identical (no intercept, so
the penalty covers every parameter and no null space is left). pyDVL returns, per
(validation point, pool pair), ``<H_reg^{-1} grad l_val, grad l_pool>`` with no minus
sign, hence ``I = sum_over_validation(pyDVL) / n_train``.

pyDVL rows:

* ``influences()``: the documented call, ``influences(x_val, y_val, x_pairs, y_pairs)``,
  an ``(n_val, N K)`` matrix summed over the validation axis (``n_val`` solves).
* summed factor: ``influence_factors(x_val, y_val)`` summed over the validation points,
  then ``influences_from_factors`` on the pool pairs.
* CG: one conjugate-gradient solve on the summed validation gradient (through the fitted
  block's operator; the per-validation-point ``influences()`` route would need ``n_val``
  CG solves), then ``influences_from_factors``. pyDVL stops when the residual norm is
  below ``max(rtol^2 * ..., atol^2)``; the script sets ``rtol=0`` and
  ``atol^2 = tol * ||rhs||``, i.e. the relative residual ``tol`` (1e-10) salutary uses.
  No preconditioner (pyDVL's default); salutary's CG is preconditioned.

The pyDVL rows include ``fit`` (the Hessian / operator on the training loader, one batch of
``n_train``); the salutary rows include ``InfluenceFactors.fit`` and ``score``.

Setup (a separate venv, so the project's own dependencies stay free of torch)::

    python3 -m venv /tmp/pydvl-venv
    /tmp/pydvl-venv/bin/pip install torch==2.13.0        # the CPU wheel; do not leave unpinned
    /tmp/pydvl-venv/bin/pip install "pydvl[influence]==0.10.0"   # keeps torch 2.13.0
    /tmp/pydvl-venv/bin/pip install -e .

Usage::

    /tmp/pydvl-venv/bin/python benchmarks/bench_pydvl.py [--n-train 2000] [--n-val 1000]
        [--d 100] [--k 10] [--n-pool 2000] [--n-pool-large 100000] [--repeats 3]

Prints a Markdown table (median of ``--repeats`` runs after a warm-up) ready for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import re
import statistics
import time
import warnings

import numpy as np
import pydvl
import torch
from pydvl.influence import InfluenceMode
from pydvl.influence.torch import CgInfluence, DirectInfluence
from torch.utils.data import DataLoader, TensorDataset

from salutary import InfluenceFactors, LogisticModel

warnings.filterwarnings("ignore", category=DeprecationWarning)
warnings.filterwarnings("ignore", category=FutureWarning)


def timed(fn, repeats):
    """Median wall time of ``repeats`` calls after one untimed warm-up call, and the output."""
    out = fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


class CgIterations(logging.Handler):
    """Collects the iteration counts pyDVL's CG logs at DEBUG level."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.counts: list[int] = []

    def emit(self, record):
        m = re.search(r"Terminated (?:block )?cg after (\d+) iterations", record.getMessage())
        if m:
            self.counts.append(int(m.group(1)))


def rel_diff(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-train", type=int, default=2000)
    ap.add_argument("--n-val", type=int, default=1000)
    ap.add_argument("--d", type=int, default=100)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--n-pool", type=int, default=2000)
    ap.add_argument("--n-pool-large", type=int, default=100_000)
    ap.add_argument("--l2", type=float, default=50.0)
    ap.add_argument("--tol", type=float, default=1e-10)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    rng = np.random.default_rng(0)
    d, k, n, reps = args.d, args.k, args.n_train, args.repeats
    W = rng.normal(size=(k, d)) / np.sqrt(d) * 3
    n_all = n + args.n_val + args.n_pool_large
    X = rng.normal(size=(n_all, d))
    logits = X @ W.T
    y = (logits + rng.gumbel(size=logits.shape)).argmax(axis=1)
    X_tr, y_tr = X[:n], y[:n]
    X_val, y_val = X[n : n + args.n_val], y[n : n + args.n_val]
    X_big = np.ascontiguousarray(X[n + args.n_val :])
    X_pool = X_big[: args.n_pool]

    model = LogisticModel(l2=args.l2, fit_intercept=False).fit(X_tr, y_tr)

    # --- salutary -------------------------------------------------------------------
    def salutary(solver, pool):
        f = InfluenceFactors(solver=solver, tol=args.tol).fit(model, X_tr, X_val, y_val)
        return f.score(pool), f.solve_info_

    t_sd, (I_ref, _) = timed(lambda: salutary("direct", X_pool), reps)
    t_sc, (I_cg, info_cg) = timed(lambda: salutary("cg", X_pool), reps)
    t_sd_big, _ = timed(lambda: salutary("direct", X_big), reps)
    t_sc_big, _ = timed(lambda: salutary("cg", X_big), reps)

    # --- pyDVL ----------------------------------------------------------------------
    lin = torch.nn.Linear(d, k, bias=False, dtype=torch.float64)
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(model.coef_))
    lin.eval()
    loss = torch.nn.functional.cross_entropy
    loader = DataLoader(TensorDataset(torch.from_numpy(X_tr), torch.from_numpy(y_tr)), batch_size=n)
    x_val, y_val_t = torch.from_numpy(X_val), torch.from_numpy(y_val)
    # every (pool point, class) pair, pool-major: row j * k + c is (x_j, c)
    x_pairs = torch.from_numpy(np.repeat(X_pool, k, axis=0))
    y_pairs = torch.from_numpy(np.tile(np.arange(k), args.n_pool))
    reg = args.l2 / n

    def to_matrix(values):
        return (values.detach().numpy() / n).reshape(args.n_pool, k)

    def pydvl_direct_influences():
        inf = DirectInfluence(lin, loss, regularization=reg).fit(loader)
        values = inf.influences(x_val, y_val_t, x_pairs, y_pairs, mode=InfluenceMode.Up)
        return to_matrix(values.sum(dim=0))

    def pydvl_direct_summed():
        inf = DirectInfluence(lin, loss, regularization=reg).fit(loader)
        factor = inf.influence_factors(x_val, y_val_t).sum(dim=0, keepdim=True)
        return to_matrix(inf.influences_from_factors(factor, x_pairs, y_pairs)[0])

    def pydvl_cg():
        w = lin.weight.detach().clone().requires_grad_(True)
        (g,) = torch.autograd.grad(loss(x_val @ w.T, y_val_t, reduction="sum"), w)
        g = g.reshape(-1)  # gradient of the summed validation loss, flattened like pyDVL
        atol = float(np.sqrt(args.tol * torch.linalg.norm(g).item()))
        inf = CgInfluence(lin, loss, regularization=reg, rtol=0.0, atol=atol, maxiter=10 * d * k)
        inf.fit(loader)
        (block,) = inf.block_mapper.composable_block_dict.values()
        factor = block.op.apply(g.unsqueeze(0))
        values = inf.influences_from_factors(factor, x_pairs, y_pairs)[0]
        return to_matrix(values), (block.op, factor[0], g)

    cg_log = CgIterations()
    op_logger = logging.getLogger("pydvl.influence.torch.operator")
    op_logger.addHandler(cg_log)
    op_logger.setLevel(logging.DEBUG)

    t_pd, P_direct = timed(pydvl_direct_influences, reps)
    t_ps, P_summed = timed(pydvl_direct_summed, reps)
    t_pc, (P_cg, (cg_op, cg_factor, g_val)) = timed(pydvl_cg, reps)
    cg_res = float(
        torch.linalg.norm(cg_op.operator.apply(cg_factor) + reg * cg_factor - g_val)
        / torch.linalg.norm(g_val)
    )
    op_logger.removeHandler(cg_log)
    cg_iters = cg_log.counts[-1] if cg_log.counts else "n/a"

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), pyDVL {pydvl.__version__}, NumPy {np.__version__}"
    )
    print(
        f"problem: n_train={n}, n_val={args.n_val}, D={d}, K={k}, l2={args.l2}, no intercept, "
        f"pool N={args.n_pool} (x {k} labels = {args.n_pool * k} pairs), float64, "
        f"median of {reps} after a warm-up"
    )
    print(
        f"CG: salutary {info_cg.n_iter} iterations (relative residual {info_cg.residual:.1e}); "
        f"pyDVL {cg_iters} iterations (relative residual {cg_res:.1e})"
    )
    print()
    print("| method | N | seconds | salutary speed-up | max rel. diff. to salutary direct |")
    print("|---|---:|---:|---:|---:|")
    rows = [
        ("pyDVL `DirectInfluence`, `influences()` summed over val", t_pd, t_sd, P_direct),
        ("pyDVL `DirectInfluence`, summed factor", t_ps, t_sd, P_summed),
        ("pyDVL `CgInfluence`, summed-gradient solve", t_pc, t_sc, P_cg),
    ]
    for name, t, t_ours, P in rows:
        print(
            f"| {name} | {args.n_pool:,} | {t:.3f} | {t / t_ours:.0f}x | {rel_diff(P, I_ref):.1e} |"
        )
    print(f"| salutary direct | {args.n_pool:,} | {t_sd:.4f} | | (reference) |")
    print(f"| salutary CG | {args.n_pool:,} | {t_sc:.4f} | | {rel_diff(I_cg, I_ref):.1e} |")
    print(f"| salutary direct | {args.n_pool_large:,} | {t_sd_big:.4f} | | |")
    print(f"| salutary CG | {args.n_pool_large:,} | {t_sc_big:.4f} | | |")
    print()
    print("speed-up: pyDVL direct rows over salutary direct, pyDVL CG over salutary CG (same N).")


if __name__ == "__main__":
    main()
