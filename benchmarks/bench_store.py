"""Time loading a results store: ``ResultStore.load`` against the loader it replaced.

Builds a store of one Parquet file per run by expanding the published consolidated
results (``benchmarks/results/results.parquet``, 8,910 runs) with
``ResultStore.import_frame``; every ``--old-every``-th run is stored without its
``n_true`` column, as runs stored before that column existed are, so the store holds
files of two schemas. Then loads it ``--repeats`` times each way, alternately:

- ``old``: ``pd.concat`` of ``pd.read_parquet`` of every file, then ``with_n_true``
  (the previous ``ResultStore.load``, kept here as the reference);
- ``new``: ``ResultStore.load``.

Prints the median seconds of each, their ratio in the same run, and checks that both
give the same frame.

Run: ``python benchmarks/bench_store.py [--repeats 3] [--runs N] [--old-every 5]
[--workdir DIR]``. The store is built once per work directory and reused.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd

from salutary.benchmark import ResultStore, with_n_true

RESULTS = Path(__file__).parent / "results" / "results.parquet"
KEYS = ["dataset", "protocol", "strategy", "seed"]


def build_store(folder: Path, runs: int | None, old_every: int) -> ResultStore:
    """A store of the first ``runs`` runs of the published results (all by default)."""
    store = ResultStore(folder)
    if store.done():
        return store
    frame = pd.read_parquet(RESULTS)
    run_id = frame.groupby(KEYS, sort=False).ngroup()
    if runs is not None:
        frame, run_id = frame[run_id < runs], run_id[run_id < runs]
    old = (run_id % old_every == 0) if old_every else pd.Series(False, index=frame.index)
    store.import_frame(frame[~old])
    store.import_frame(frame[old].drop(columns="n_true"))
    return store


def load_old(store: ResultStore) -> pd.DataFrame:
    """The previous ``ResultStore.load``: one ``pd.read_parquet`` per file, concatenated."""
    files = sorted(store.path.glob("*.parquet"))  # only run files in this store
    return with_n_true(pd.concat([pd.read_parquet(p) for p in files], ignore_index=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--runs", type=int, default=None, help="default: all 8,910")
    parser.add_argument("--old-every", type=int, default=5, help="0: every run has n_true")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = (args.workdir or Path(tmp)) / f"store-{args.runs}-{args.old_every}"
        t0 = time.perf_counter()
        store = build_store(folder, args.runs, args.old_every)
        n_files = len(list(store.path.glob("*.parquet")))
        print(f"store: {n_files} files (built or found in {time.perf_counter() - t0:.1f} s)")
        new = store.load()  # warm the page cache for both
        pd.testing.assert_frame_equal(new, load_old(store), check_exact=True)
        print(f"same frame: {new.shape[0]} rows x {new.shape[1]} columns")
        times: dict[str, list[float]] = {"old": [], "new": []}
        for _ in range(args.repeats):
            for name, load in (("old", load_old), ("new", ResultStore.load)):
                t0 = time.perf_counter()
                load(store)
                times[name].append(time.perf_counter() - t0)
        for name, values in times.items():
            shown = ", ".join(f"{v:.2f}" for v in values)
            print(f"{name}: median {statistics.median(values):.2f} s ({shown})")
        ratio = statistics.median(times["old"]) / statistics.median(times["new"])
        print(f"old / new: {ratio:.1f}x")


if __name__ == "__main__":
    main()
