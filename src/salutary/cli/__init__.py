"""Command line: ``salutary label``, ``run``, ``bench``, ``report``, ``finetune``, ``datasets``.

One private module per command (``_label``, ``_run``, ...), each with its function and its
``COMMAND`` settings (help epilog, parser class); ``_common`` holds what they share. They
are registered on :data:`app` here.
"""

from __future__ import annotations

import signal
import sys
import warnings
from types import FrameType
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from salutary import __version__
from salutary.cli import _bench, _datasets, _finetune, _label, _report, _run
from salutary.cli._common import crash_log, one_line_error

__all__ = ["app", "main"]


class Terminated(BaseException):
    """SIGTERM, raised where the program is, so that its clean-up runs (temporary files of
    atomic writes are removed) before it exits with status 143."""


class _Commands(TyperGroup):
    """The command group: no traceback reaches the user, ever.

    Bad input already ends in ``error: ...`` and status 2. An interrupt ends in status
    130 (SIGINT) or 143 (SIGTERM), an unexpected error in one line naming a log file
    that holds the traceback, and status 1.
    """

    def invoke(self, ctx: Any) -> Any:  # typer's vendored click.Context
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):  # exits and usage errors
            raise
        except KeyboardInterrupt:
            typer.echo("error: interrupted", err=True)
            raise typer.Exit(130) from None
        except Terminated:
            typer.echo("error: terminated", err=True)
            raise typer.Exit(143) from None
        except Exception as exc:
            path = crash_log(exc)
            typer.echo(f"error: {one_line_error(exc)} (a bug; traceback in {path})", err=True)
            raise typer.Exit(1) from None


app = typer.Typer(
    name="salutary",
    cls=_Commands,
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


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise Terminated


def main() -> None:
    """Entry point of the ``salutary`` console script."""
    # Warnings (a small validation set, a fallback) are for the user: one line each, on
    # stderr, without the source location.
    warnings.formatwarning = _one_line_warning
    # salutary/__init__ exits quietly on SIGINT while the console script imports; from
    # here on an interrupt is an exception, so that clean-up code runs.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        app(prog_name="salutary")
    except Terminated:  # between commands, or while click parses the arguments
        typer.echo("error: terminated", err=True)
        sys.exit(143)


if __name__ == "__main__":  # pragma: no cover
    main()
