"""Start-up time of the ``salutary`` command line (issue 21).

Runs each of ``salutary --help``, ``salutary label --help``, ``salutary --version`` and a
``salutary label`` whose labeled file does not exist, ``--repeats`` times, each in a fresh
Python process (as the console script does: ``from salutary.cli import main; main()``),
and prints the median wall time of each. With ``--before SRC`` (the ``src`` folder of a
checkout of an older commit) the same commands run with that code too, interleaved with
the current ones so that both see the same load on the machine, and the ratios are
printed.

Run: ``python benchmarks/bench_cli_startup.py [--repeats 7] [--before OLD/src] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

#: name -> arguments of ``salutary``.
COMMANDS: dict[str, list[str]] = {
    "salutary --help": ["--help"],
    "salutary label --help": ["label", "--help"],
    "salutary --version": ["--version"],
    "salutary label (missing input file)": [
        "label", "-l", "missing.csv", "-u", "pool.csv", "--validation", "val.csv", "-t", "y",
        "-o", "out.csv",
    ],
}  # fmt: skip

_CHILD = "import sys; from salutary.cli import main; sys.argv[0] = 'salutary'; main()"


def run_once(src: Path, args: list[str], cwd: str) -> tuple[float, int]:
    """Wall seconds and exit status of one ``salutary ARGS`` in a fresh process."""
    env = {**os.environ, "PYTHONPATH": str(src), "COLUMNS": "80"}
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, *args], env=env, cwd=cwd, capture_output=True, check=False
    )
    return time.perf_counter() - t0, done.returncode


def measure(sources: dict[str, Path], repeats: int) -> dict[str, dict[str, list[float]]]:
    """Seconds of every run: ``{command: {version: [seconds, ...]}}``."""
    times: dict[str, dict[str, list[float]]] = {c: {v: [] for v in sources} for c in COMMANDS}
    with tempfile.TemporaryDirectory() as cwd:
        for src in sources.values():  # warm the file cache and .pyc files first
            for args in COMMANDS.values():
                run_once(src, args, cwd)
        for _ in range(repeats):
            for name, args in COMMANDS.items():
                for version, src in sources.items():
                    seconds, status = run_once(src, args, cwd)
                    expected = 2 if "missing" in name else 0
                    if status != expected:
                        raise SystemExit(f"{name} ({version}) ended with status {status}")
                    times[name][version].append(seconds)
    return times


def main() -> None:
    """Measure and print the medians (and the ratios to ``--before``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="runs of each command")
    parser.add_argument("--before", type=Path, help="src folder of the code to compare with")
    parser.add_argument("--json", action="store_true", help="print the runs as JSON")
    args = parser.parse_args()
    sources = {"now": SRC}
    if args.before is not None:
        sources = {"before": args.before, "now": SRC}
    times = measure(sources, args.repeats)
    if args.json:
        print(json.dumps(times, indent=2))
        return
    header = f"{'command':<38}" + "".join(f"{v + ' s':>10}" for v in sources)
    print(header + (f"{'ratio':>9}" if len(sources) > 1 else ""))
    for name, runs in times.items():
        medians = {v: statistics.median(r) for v, r in runs.items()}
        line = f"{name:<38}" + "".join(f"{m:>10.3f}" for m in medians.values())
        if len(sources) > 1:
            line += f"{medians['before'] / medians['now']:>8.1f}x"
        print(line)
    print(
        f"medians of {args.repeats} runs each, in fresh processes (python {sys.version.split()[0]})"
    )


if __name__ == "__main__":
    main()
