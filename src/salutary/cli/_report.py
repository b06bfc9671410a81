"""``salutary report``: tables, statistics and plots from a results store.

The options; the work is in ``_report_work``, imported when the command runs.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from salutary._lazy import import_deferred
from salutary.cli._common import Json, Quiet, Say

__all__ = ["COMMAND", "report"]


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
    quiet: Quiet = False,
    json_output: Json = False,
) -> None:
    """Write REPORT.md, learning curves, per-run metrics (runs.csv) and every round of every
    run (results.parquet, which `salutary bench --from` can resume from) from a store."""
    say = Say(quiet=quiet, json=json_output)
    import_deferred("salutary.cli._report_work").report(
        store, output, min_seeds=min_seeds, force=force, say=say
    )
