"""Time and peak memory of reading the files of ``salutary label`` (CSV against Parquet).

Writes two synthetic unlabeled files (and small labeled and validation files) in CSV and
Parquet, then loads each set with :func:`salutary.tabular.load_tables` in a fresh process
(so the peak resident memory is that of the load alone) and prints the median wall time
and peak memory of ``--repeats`` loads, and the ratio CSV / Parquet measured in the same run:

- ``wide``: 12,000 rows x 2,000 numeric columns (about 225 MB of CSV);
- ``tall``: 4,000,000 rows x 10 columns, one of them text with 20 categories (about
  340 MB of CSV).

Run: ``python benchmarks/bench_csv.py [--repeats 3] [--shapes wide tall] [--workdir DIR]``.
The files are written once per work directory and reused.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

_CHILD = """
import json, resource, sys, time
from salutary.tabular import load_tables
lab, pool, val = sys.argv[1:4]
t0 = time.perf_counter()
tables = load_tables(lab, pool, val, "target")
seconds = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
print(json.dumps({"seconds": seconds, "peak_mib": peak, "shape": list(tables.X_pool.shape)}))
"""


def _frame(shape: str, n: int, rng: np.random.Generator) -> pd.DataFrame:
    if shape == "wide":
        data = rng.normal(size=(n, 2000)).round(6)
        frame = pd.DataFrame(data, columns=[f"f{j}" for j in range(2000)])
    else:
        frame = pd.DataFrame(rng.normal(size=(n, 8)).round(6), columns=[f"f{j}" for j in range(8)])
        frame["count"] = rng.integers(0, 1000, size=n)
        frame["city"] = rng.choice([f"city{j}" for j in range(20)], size=n)
    frame["target"] = rng.choice(["a", "b", "c"], size=n)
    return frame


def make_files(folder: Path, shape: str, seed: int = 0) -> dict[str, list[Path]]:
    """The labeled, unlabeled and validation files of ``shape``, as CSV and as Parquet."""
    rng = np.random.default_rng(seed)
    n_pool = 12_000 if shape == "wide" else 4_000_000
    out: dict[str, list[Path]] = {"csv": [], "parquet": []}
    for role, n in (("labeled", 300), ("unlabeled", n_pool), ("validation", 300)):
        csv_path = folder / f"{shape}-{role}.csv"
        pq_path = folder / f"{shape}-{role}.parquet"
        if not (csv_path.exists() and pq_path.exists()):
            frame = _frame(shape, n, rng)
            if role == "unlabeled":
                frame = frame.drop(columns="target")
            frame.to_csv(csv_path, index=False)
            frame.to_parquet(pq_path, index=False)
        out["csv"].append(csv_path)
        out["parquet"].append(pq_path)
    return out


def load_once(paths: list[Path]) -> dict[str, float]:
    """Load the three files in a new process; its wall time and peak memory."""
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, *map(str, paths)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--shapes", nargs="+", default=["wide", "tall"])
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    folder = args.workdir or Path(tempfile.gettempdir()) / "salutary-bench-csv"
    folder.mkdir(parents=True, exist_ok=True)
    print(f"{'shape':6} {'format':8} {'MB':>6} {'seconds':>8} {'peak MiB':>9}  runs")
    for shape in args.shapes:
        files = make_files(folder, shape)
        medians = {}
        for kind in ("csv", "parquet"):
            runs = [load_once(files[kind]) for _ in range(args.repeats)]
            secs = [r["seconds"] for r in runs]
            peaks = [r["peak_mib"] for r in runs]
            medians[kind] = (statistics.median(secs), statistics.median(peaks))
            size = files[kind][1].stat().st_size / 1e6
            shown = " ".join(f"{s:.1f}" for s in secs)
            print(
                f"{shape:6} {kind:8} {size:6.0f} {medians[kind][0]:8.1f} "
                f"{medians[kind][1]:9.0f}  {shown}"
            )
        (cs, cm), (ps, pm) = medians["csv"], medians["parquet"]
        print(f"{shape:6} csv/parquet: time x{cs / ps:.2f}, peak memory x{cm / pm:.2f}")


if __name__ == "__main__":
    main()
