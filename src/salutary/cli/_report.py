"""``salutary report``: tables, statistics and plots from a results store."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from salutary._io import atomic_write
from salutary.benchmark import ResultStore, complete_groups, per_run, write_report
from salutary.cli._common import fail, stdout
from salutary.exceptions import InputError

__all__ = ["COMMAND", "MARKER", "report"]


#: Written next to a report: the store it was made from (relative to the report's folder).
MARKER = ".salutary-report.json"

COMMAND: dict[str, Any] = dict(
    epilog=(
        "Examples:\n\n"
        "    salutary report\n"
        "    salutary report --store runs/ --output out/\n"
        "    salutary report --min-seeds 10\n\n"
        "`--min-seeds 10` keeps a grid that is still running out of the report until each "
        "(protocol, dataset, strategy) has its 10 seeds. A report is only replaced by one of "
        "the same store (unless --force)."
    ),
)


def report(
    store: Annotated[
        str, typer.Option("--store", metavar="DIR", help="Results store (a folder).")
    ] = "benchmarks/store",
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            metavar="DIR",
            help="Where the report goes (default: STORE-report, next to the store).",
            show_default=False,
        ),
    ] = None,
    min_seeds: Annotated[
        int,
        typer.Option(
            "--min-seeds",
            min=1,
            help="Leave out every (protocol, dataset, strategy) with fewer seeds stored, "
            "e.g. the unfinished part of a grid that is still running.",
        ),
    ] = 1,
    force: Annotated[
        bool,
        typer.Option("--force", help="Replace a report made from another store."),
    ] = False,
) -> None:
    """Write REPORT.md, learning curves, per-run metrics (runs.csv) and every round of every
    run (results.parquet, which `salutary bench --from` can resume from) from a store."""
    out = Path(output) if output else Path(store).with_name(Path(store).name + "-report")
    try:
        _check_replace(out, Path(store), force)
    except InputError as exc:
        raise fail(str(exc)) from None
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
    out.mkdir(parents=True, exist_ok=True)
    origin = json.dumps({"store": os.path.relpath(Path(store).resolve(), out.resolve())})
    atomic_write(out / MARKER, lambda tmp: tmp.write_text(origin + "\n", encoding="utf-8"))
    path = write_report(results, out)
    runs = per_run(results)
    atomic_write(out / "runs.csv", lambda tmp: runs.to_csv(tmp, index=False, float_format="%.6g"))
    atomic_write(out / "results.parquet", lambda tmp: results.to_parquet(tmp, index=False))
    stdout().print(f"Report written to {path} ({len(runs)} runs)")


def _check_replace(out: Path, store: Path, force: bool) -> None:
    """InputError if ``out`` holds a report of another store (or of an unknown one)."""
    if force or not (out / "REPORT.md").exists():
        return
    made_from = None
    try:
        made_from = out / json.loads((out / MARKER).read_text(encoding="utf-8"))["store"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    if made_from is not None and made_from.resolve() == store.resolve():
        return
    origin = f"store {str(made_from)!r}" if made_from is not None else "an unknown store"
    raise InputError(
        f"output folder {str(out)!r} holds the report of {origin}, not of {str(store)!r}; "
        "choose another --output, or pass --force to replace it"
    )
