"""Command line: ``salutary label``, ``run``, ``bench``, ``report``, ``finetune``, ``datasets``.

One private module per command (``_label``, ``_run``, ...), each with its function and its
``COMMAND`` settings (help epilog, parser class); ``_common`` holds what they share. They
are registered on :data:`app` here.
"""

from __future__ import annotations

import warnings
from typing import Annotated, Any

import typer

from salutary import __version__
from salutary.cli import _bench, _datasets, _finetune, _label, _report, _run

__all__ = ["app", "main"]

app = typer.Typer(
    name="salutary",
    help=(
        "Salutary labeling: grow a training set from an unlabeled pool with zero human "
        "annotation.\n\n"
        "Each round fits an L2 logistic model, gives every unlabeled row the label whose "
        "addition is predicted (by the influence function) to lower the loss on a labeled "
        "validation set most, and adds the most helpful rows with those labels."
    ),
    epilog=(
        "Examples:\n\n"
        "    salutary label -l labeled.csv -u pool.csv -v val.csv -t label -o out.csv\n"
        "    salutary run --dataset breast_cancer --seeds 3\n"
        "    salutary datasets\n\n"
        "Run `salutary COMMAND --help` for the options of a command."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode="markdown",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"salutary {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Salutary labeling: grow a training set from an unlabeled pool without annotation."""


for _module, _command in (
    (_label, _label.label),
    (_run, _run.run),
    (_bench, _bench.bench),
    (_report, _report.report),
    (_finetune, _finetune.finetune),
    (_datasets, _datasets.datasets),
):
    app.command(**_module.COMMAND)(_command)


def _one_line_warning(
    message: Warning | str, category: type[Warning], filename: str, lineno: int, line: Any = None
) -> str:
    return f"warning: {message}\n"


def main() -> None:
    """Entry point of the ``salutary`` console script."""
    # Warnings (a small validation set, a fallback) are for the user: one line each, on
    # stderr, without the source location.
    warnings.formatwarning = _one_line_warning
    app(prog_name="salutary")


if __name__ == "__main__":  # pragma: no cover
    main()
