"""``salutary datasets``: list the registered datasets.

The options; the work is in ``_datasets_work``, imported when the command runs.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from salutary._lazy import import_deferred
from salutary.cli._common import Json, Say

__all__ = ["COMMAND", "datasets"]


COMMAND: dict[str, Any] = dict(
    epilog=(
        "Examples:\n\n"
        "    salutary datasets\n"
        "    salutary datasets wine_quality\n"
        "    salutary datasets --long\n"
        "    salutary datasets --json\n"
        "    salutary run --dataset digits\n\n"
        "A dataset that is not installed names the command that installs it "
        "(`salutary datasets NAME`, `--long`, `--json`)."
    ),
)


def datasets(
    names: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[NAME]...",
            help="Describe these datasets (description, source, how to install).",
            show_default=False,
        ),
    ] = None,
    long: Annotated[
        bool,
        typer.Option("--long", "-l", help="Describe every dataset, not one line each."),
    ] = False,
    json_output: Json = False,
) -> None:
    """List the datasets `salutary run --dataset` accepts (nothing is downloaded).

    One line per dataset: its name, kind, rows, features, classes and whether it is
    installed. Name datasets (or give --long) for their descriptions and sources.
    """
    say = Say(json=json_output)
    import_deferred("salutary.cli._datasets_work").datasets(names or [], long=long, say=say)
