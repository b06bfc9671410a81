"""``salutary report``: tables, statistics and plots from a results store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from salutary._io import atomic_write
from salutary.benchmark import ResultStore, complete_groups, per_run, write_report
from salutary.cli._common import fail, stdout

__all__ = ["COMMAND", "report"]


COMMAND: dict[str, Any] = dict(
    epilog=(
        "Examples:\n\n"
        "    salutary report\n"
        "    salutary report --store runs/ --output out/\n"
        "    salutary report --min-seeds 10\n\n"
        "`--min-seeds 10` keeps a grid that is still running out of the report until each "
        "(protocol, dataset, strategy) has its 10 seeds."
    ),
)


def report(
    store: Annotated[
        str, typer.Option("--store", metavar="DIR", help="Results store (a folder).")
    ] = "benchmarks/store",
    output: Annotated[
        str, typer.Option("--output", "-o", metavar="DIR", help="Where the report goes.")
    ] = "benchmarks/results",
    min_seeds: Annotated[
        int,
        typer.Option(
            "--min-seeds",
            min=1,
            help="Leave out every (protocol, dataset, strategy) with fewer seeds stored, "
            "e.g. the unfinished part of a grid that is still running.",
        ),
    ] = 1,
) -> None:
    """Write REPORT.md, learning curves, per-run metrics (runs.csv) and every round of every
    run (results.parquet, which `salutary bench --from` can resume from) from a store."""
    results = ResultStore(store).load()
    if results.empty:
        raise fail(f"no results in store {store!r}; run `salutary bench` first")
    results, short = complete_groups(results, min_seeds)
    for g in short.itertuples(index=False):
        typer.echo(
            f"left out: {g.dataset} / {g.protocol} / {g.strategy} ({g.seeds} of {min_seeds} seeds)",
            err=True,
        )
    if results.empty:
        raise fail(f"no (protocol, dataset, strategy) in store {store!r} has {min_seeds} seeds")
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    path = write_report(results, out)
    runs = per_run(results)
    atomic_write(out / "runs.csv", lambda tmp: runs.to_csv(tmp, index=False, float_format="%.6g"))
    atomic_write(out / "results.parquet", lambda tmp: results.to_parquet(tmp, index=False))
    stdout().print(f"Report written to {path} ({len(runs)} runs)")
