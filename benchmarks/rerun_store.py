"""Re-run a sample of the published benchmark runs and compare them bit for bit.

Usage::

    python benchmarks/rerun_store.py [--store benchmarks/results/results.parquet]
        [--datasets wine_quality pima ...] [--protocols paper fair ...]
        [--strategies salutary salutary-newton ...] [--seeds 0 3] [--per-group 1]
        [--sample 60] [--jobs 2] [--save rerun.parquet]

Every selected (dataset, protocol, strategy, seed) run is run again with the code of the
working tree (``salutary.benchmark.run_one``, one BLAS thread per process, as ``salutary
bench`` runs it), and every stored column except the timings (``seconds``,
``run_seconds``) is compared with the stored value bit for bit (NaN equals NaN). A change
that must not change results passes when every run matches. ``--sample N`` draws N runs
(seeded) from the selection, at most ``--per-group`` per (dataset, protocol, strategy), with
seeds drawn at random (``--sample-seed``).
Prints one line per run and a summary; exits with status 1 if any run differs.
``--save FILE`` also writes the re-run rounds as a results file, which a later
``--store FILE`` compares against (e.g. the same sample before and after a change).

Bits depend on the BLAS build and CPU: compare on the machine kind the store was made on,
or first re-run the sample with the code that made the store.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from salutary.benchmark import RunKey, run_one

KEY = ["dataset", "protocol", "strategy", "seed"]
TIMINGS = {"seconds", "run_seconds"}


def _rerun(key: RunKey) -> tuple[RunKey, pd.DataFrame, float]:
    t0 = time.perf_counter()
    with threadpool_limits(1):
        frame = run_one(key)
    return key, frame, time.perf_counter() - t0


def _differences(stored: pd.DataFrame, fresh: pd.DataFrame) -> list[str]:
    """Columns whose values differ in any bit (NaN equals NaN)."""
    stored = stored.sort_values("round").reset_index(drop=True)
    fresh = fresh.sort_values("round").reset_index(drop=True)
    if len(stored) != len(fresh):
        return [f"rounds: {len(stored)} stored, {len(fresh)} now"]
    out = []
    for col in stored.columns:
        if col in TIMINGS:
            continue
        if col not in fresh.columns:
            out.append(f"{col}: missing now")
            continue
        a, b = stored[col].to_numpy(), fresh[col].to_numpy()
        if a.dtype.kind == "f" or b.dtype.kind == "f":
            a, b = a.astype(np.float64), b.astype(np.float64)
            same = (a.view(np.int64) == b.view(np.int64)) | (np.isnan(a) & np.isnan(b))
        else:
            same = a.astype(str) == b.astype(str)
        if not same.all():
            r = int(np.flatnonzero(~same)[0])
            out.append(f"{col} (round {int(stored['round'][r])}: {a[r]!r} vs {b[r]!r})")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", default="benchmarks/results/results.parquet")
    ap.add_argument("--datasets", nargs="*")
    ap.add_argument("--protocols", nargs="*")
    ap.add_argument("--strategies", nargs="*")
    ap.add_argument("--seeds", nargs="*", type=int)
    ap.add_argument("--per-group", type=int, default=1)
    ap.add_argument("--sample", type=int, default=None)
    ap.add_argument("--sample-seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--save", default=None, help="write the re-run rounds to this Parquet file")
    args = ap.parse_args()

    results = pd.read_parquet(args.store)
    for col, values in (
        ("dataset", args.datasets),
        ("protocol", args.protocols),
        ("strategy", args.strategies),
        ("seed", args.seeds),
    ):
        if values:
            results = results[results[col].isin(values)]
    # Shuffled (seeded) before taking --per-group runs of each group, so seeds vary.
    runs = results[KEY].drop_duplicates().sample(frac=1.0, random_state=args.sample_seed)
    runs = runs.groupby(KEY[:3], sort=False).head(args.per_group)
    if args.sample is not None and args.sample < len(runs):
        runs = runs.sample(n=args.sample, random_state=args.sample_seed)
    runs = runs.sort_values(KEY)
    keys = [RunKey(d, p, s, int(seed)) for d, p, s, seed in runs.itertuples(index=False)]
    if not keys:
        sys.exit("no stored run matches the selection")
    stored = {k: g for k, g in results.groupby(KEY, sort=False)}
    print(f"re-running {len(keys)} runs with {args.jobs} process(es)", flush=True)

    failed = 0
    frames = []
    if args.jobs == 1:
        done = map(_rerun, keys)
    else:
        pool = ProcessPoolExecutor(args.jobs)
        done = pool.map(_rerun, keys)
    for key, frame, seconds in done:
        diff = _differences(stored[(key.dataset, key.protocol, key.strategy, key.seed)], frame)
        frames.append(frame)
        failed += bool(diff)
        status = "same" if not diff else "DIFFERS: " + "; ".join(diff)
        print(f"{key.dataset:18} {key.protocol:10} {key.strategy:32} {key.seed:2} "
              f"{seconds:7.1f}s  {status}", flush=True)  # fmt: skip
    print(f"{len(keys) - failed} of {len(keys)} runs bit for bit the same")
    if args.save:
        pd.concat(frames, ignore_index=True).to_parquet(args.save, index=False)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
