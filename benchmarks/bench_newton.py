"""Time one round of `salutary-newton`'s selection on a benchmark dataset.

The model is fit on the initial labeled set of one seed's split (as in round 1 of a
benchmark run); the selection is timed ``--repeats`` times on one BLAS thread and the
median reported, next to the paper's first-order `salutary` selection on the same
model (the reference measured in the same run). With ``--refactor`` the Newton
selection is also timed with the Hessian refactorized after every greedy step instead
of the Woodbury updates that models above 1,000 parameters use (4,000 before December
2026), and the picks of the two are compared. ``--compare SPEC ...`` times further
strategy specs on the same model,
e.g. ``salutary-newton:max_growth=None`` (one batch, no refits within the round). With
``--kernel`` the Newton selection is also timed with the dense Hessian where the
default solves through the training rows' kernel (``salutary.influence.KernelHessian``,
few labeled rows for the parameters), and the picks of the two are compared. With
``--breakdown`` the Newton selection is timed again with the CPU seconds of its exact
validation losses (``OneStepLosses._exact``) counted apart: the rest is what its greedy
steps would cost if those losses were free.

    python benchmarks/bench_newton.py --dataset mnist_cnn --protocol budget1pct
    python benchmarks/bench_newton.py --dataset mnist --protocol paper --refactor
    python benchmarks/bench_newton.py --dataset mnist --protocol paper --kernel
    python benchmarks/bench_newton.py --dataset letter --protocol paper --breakdown
    python benchmarks/bench_newton.py --dataset fashion_mnist_cnn --protocol budget1pct \
        --compare salutary-newton:max_growth=None
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_limits

import salutary.influence._kernel
import salutary.influence._lookahead
import salutary.influence._newton
from salutary.benchmark import PROTOCOLS
from salutary.datasets import load_dataset
from salutary.experiment import paper_split
from salutary.model import LogisticModel
from salutary.strategies import get_strategy


def _time(strategy, model, split, budget, repeats):
    """Median wall-clock seconds, every run's, the selection, and median CPU seconds of
    this process (steadier on a shared machine: one BLAS thread)."""
    times, cpu, sel = [], [], None
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        sel = get_strategy(strategy).select(
            model, split.X_labeled, split.y_labeled, split.X_pool, budget,
            X_val=split.X_val, y_val=split.y_val, rng=np.random.default_rng(0),
        )  # fmt: skip
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    _CPU[strategy] = statistics.median(cpu)
    return statistics.median(times), times, sel


def _agreement(sel, ref) -> tuple[bool, float]:
    """Whether two selections have the same picks and labels, and the largest relative
    difference of their scores."""
    same = np.array_equal(sel.indices, ref.indices) and np.array_equal(sel.labels, ref.labels)
    return same, float(np.max(np.abs(sel.scores - ref.scores) / np.abs(ref.scores)))


def _breakdown(model, split, budget, repeats) -> None:
    """Print the Newton selection's median CPU seconds, in its exact validation losses and
    in the rest, and the rest against the first-order selection."""
    cls = salutary.influence._lookahead.OneStepLosses
    exact = cls._exact
    spent = [0.0]

    def timed(self, *args, **kwargs):
        c0 = time.process_time()
        try:
            return exact(self, *args, **kwargs)
        finally:
            spent[0] += time.process_time() - c0

    cls._exact = timed
    totals, losses = [], []
    try:
        for _ in range(repeats):
            spent[0] = 0.0
            c0 = time.process_time()
            get_strategy("salutary-newton").select(
                model, split.X_labeled, split.y_labeled, split.X_pool, budget,
                X_val=split.X_val, y_val=split.y_val, rng=np.random.default_rng(0),
            )  # fmt: skip
            totals.append(time.process_time() - c0)
            losses.append(spent[0])
    finally:
        cls._exact = exact
    total, loss = statistics.median(totals), statistics.median(losses)
    rest = statistics.median(t - s for t, s in zip(totals, losses, strict=True))
    print(f"breakdown (CPU, median of {repeats}): selection {total:.3f} s, exact "
          f"validation losses {loss:.3f} s, the rest {rest:.3f} s "
          f"({rest / _CPU['salutary']:.1f}x salutary's selection)")  # fmt: skip


_CPU: dict[str, float] = {}  # median CPU seconds per strategy spec, filled by _time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist_cnn")
    parser.add_argument("--protocol", default="budget1pct", choices=sorted(PROTOCOLS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--refactor", action="store_true")
    parser.add_argument("--kernel", action="store_true")
    parser.add_argument("--breakdown", action="store_true")
    parser.add_argument("--compare", nargs="*", default=[], metavar="SPEC")
    args = parser.parse_args()

    protocol = PROTOCOLS[args.protocol]
    data = load_dataset(args.dataset)
    split = paper_split(data.X, data.y, seed=args.seed, n_initial=protocol.n_initial,
                        test_size=protocol.test_size, val_size=protocol.val_size)  # fmt: skip
    budget = protocol.budget_for(len(data.y))
    with threadpool_limits(1):
        model = LogisticModel(l2=protocol.l2).fit(split.X_labeled, split.y_labeled)
        k = len(model.classes_)
        n_params = (1 if k == 2 else k) * (split.X_labeled.shape[1] + 1)
        print(f"{args.dataset} {args.protocol}: budget {budget}, {len(split.y_labeled)} "
              f"labeled, {len(split.y_val)} validation, {len(split.y_pool)} pool, "
              f"{n_params} parameters")  # fmt: skip
        first, _, _ = _time("salutary", model, split, budget, args.repeats)
        newton, runs, sel = _time("salutary-newton", model, split, budget, args.repeats)
        print(f"salutary (first order) {first:8.2f} s; CPU {_CPU['salutary']:.3f} s")
        print(f"salutary-newton        {newton:8.2f} s  ({newton / first:.1f}x; runs "
              f"{', '.join(f'{t:.2f}' for t in runs)}); CPU "
              f"{_CPU['salutary-newton']:.3f} s "
              f"({_CPU['salutary-newton'] / _CPU['salutary']:.1f}x)")  # fmt: skip
        for spec in args.compare:
            t, runs, _ = _time(spec, model, split, budget, args.repeats)
            print(f"{spec:22s} {t:8.2f} s  ({t / newton:.2f}x the default; runs "
                  f"{', '.join(f'{r:.2f}' for r in runs)})")  # fmt: skip
        if args.breakdown:
            _breakdown(model, split, budget, args.repeats)
        if args.refactor:
            module = salutary.influence._newton
            limit = module.REFACTOR_MAX_PARAMS
            module.REFACTOR_MAX_PARAMS = 10**9
            try:
                dense, runs, ref = _time("salutary-newton", model, split, budget, args.repeats)
            finally:
                module.REFACTOR_MAX_PARAMS = limit
            same, gap = _agreement(sel, ref)
            print(f"refactorized per step  {dense:8.2f} s  ({dense / newton:.2f}x the "
                  f"default; same picks and labels: {same}; max relative score "
                  f"difference {gap:.1e})")  # fmt: skip
        if args.kernel:
            kernel = salutary.influence._kernel
            share = kernel.KERNEL_MAX_SHARE
            kernel.KERNEL_MAX_SHARE = 0.0  # the dense Hessian, factorized once
            try:
                dense, runs, ref = _time("salutary-newton", model, split, budget, args.repeats)
                dense_cpu = _CPU["salutary-newton"]
            finally:
                kernel.KERNEL_MAX_SHARE = share
            # The default again, after the dense runs: both measured in this run.
            newton, runs_k, sel = _time("salutary-newton", model, split, budget, args.repeats)
            kernel_cpu = _CPU["salutary-newton"]
            same, gap = _agreement(sel, ref)
            # Picks up to the first that differs, and their scores' agreement: greedy
            # steps whose best losses tie to rounding may go either way.
            agree = (sel.indices == ref.indices) & (sel.labels == ref.labels)
            lead = len(agree) if agree.all() else int(np.argmin(agree))
            lead_gap = float(
                np.max(np.abs(sel.scores[:lead] - ref.scores[:lead]) / np.abs(ref.scores[:lead]))
                if lead
                else np.nan
            )
            print(f"dense Hessian          {dense:8.2f} s; CPU {dense_cpu:.3f} s (runs "
                  f"{', '.join(f'{t:.2f}' for t in runs)})")  # fmt: skip
            print(f"kernel (default)       {newton:8.2f} s; CPU {kernel_cpu:.3f} s (runs "
                  f"{', '.join(f'{t:.2f}' for t in runs_k)}); dense / kernel CPU "
                  f"{dense_cpu / kernel_cpu:.2f}x; same picks and labels: {same}; max "
                  f"relative score difference {gap:.1e}; the first {lead} of {len(agree)} "
                  f"picks agree, their scores to {lead_gap:.1e} relative")  # fmt: skip


if __name__ == "__main__":
    main()
