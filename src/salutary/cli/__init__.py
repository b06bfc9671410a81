"""Command line: ``salutary label``, ``run``, ``bench``, ``report``, ``finetune``, ``datasets``.

One private module per command (``_label``, ``_run``, ...), each with its function (its
options) and its ``COMMAND`` settings (help epilog, parser class); the work of a command is
in a second module (``_label_work``, ...) that the first imports when the command runs.
``_common`` holds what they share.

The commands are listed in :data:`COMMANDS` and imported only when one is run (or its
help shown), so that ``salutary --help``, ``--version`` and a usage error answer at once:
the numerical modules are loaded by the command that needs them.
"""

from __future__ import annotations

import signal
import sys
import warnings
from collections.abc import Callable
from types import FrameType, ModuleType
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup
from typer.main import get_command_from_info
from typer.models import CommandInfo

from salutary import __version__
from salutary._lazy import import_deferred
from salutary.cli._common import crash_log, one_line_error

__all__ = ["COMMANDS", "Terminated", "app", "command", "main"]

#: Every command: the module that defines it (a function of the command's name and its
#: ``COMMAND`` settings), imported when the command is used, and the line that
#: ``salutary --help`` shows for it (a test checks it is the first line of its help).
COMMANDS: dict[str, tuple[Callable[[], ModuleType], str]] = {
    "label": (
        lambda: import_deferred("salutary.cli._label"),
        "Label rows of an unlabeled file by salutary labeling and write them out.",
    ),
    "run": (
        lambda: import_deferred("salutary.cli._run"),
        "Compare selection strategies on a dataset with the paper's protocol.",
    ),
    "bench": (
        lambda: import_deferred("salutary.cli._bench"),
        "Run a grid of benchmark runs into a resumable results store.",
    ),
    "report": (
        lambda: import_deferred("salutary.cli._report"),
        "Write REPORT.md, learning curves, per-run metrics (runs.csv) and every round of "
        "every run (results.parquet, which `salutary bench --from` can resume from) from a "
        "store.",
    ),
    "finetune": (
        lambda: import_deferred("salutary.cli._finetune"),
        "Fine-tune a language model on salutary-labeled texts and compare with baselines.",
    ),
    "datasets": (
        lambda: import_deferred("salutary.cli._datasets"),
        "List the datasets `salutary run --dataset` accepts (nothing is downloaded).",
    ),
}

# click's error classes (typer 0.29 vendors click; older typers use click itself)
_CLICK_ERROR: type[Exception] = next(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"
)


def command(name: str) -> Any:
    """The click command ``name`` (its module imported now).

    Parameters
    ----------
    name : str
        A key of :data:`COMMANDS`.

    Returns
    -------
    click.Command
        Typer's command, as ``app`` runs it.
    """
    module = COMMANDS[name][0]()
    info = CommandInfo(name=name, callback=getattr(module, name), **module.COMMAND)
    return get_command_from_info(
        info, pretty_exceptions_short=app.pretty_exceptions_short,
        rich_markup_mode=app.rich_markup_mode,
    )  # fmt: skip


def _usage_error(exc: Any) -> typer.Exit:
    """A usage error of click (unknown option, missing value...) as one ``error:`` line."""
    where = f"; see '{exc.ctx.command_path} --help'" if getattr(exc, "ctx", None) else ""
    message = " ".join(exc.format_message().split()).rstrip(".")
    typer.echo(f"error: {message}{where}", err=True)
    return typer.Exit(exc.exit_code)


class Terminated(BaseException):
    """SIGTERM, raised where the program is, so that its clean-up runs (temporary files of
    atomic writes are removed) before it exits with status 143."""


class _Commands(TyperGroup):
    """The command group: no traceback reaches the user, ever.

    Bad input already ends in ``error: ...`` and status 2. An interrupt ends in status
    130 (SIGINT) or 143 (SIGTERM), an unexpected error in one line naming a log file
    that holds the traceback, and status 1.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Listed by name and help line only: the module is imported when it is resolved.
        for name, (_, line) in COMMANDS.items():
            self.commands[name] = TyperCommand(name=name, help=line, short_help=line)

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        name, cmd, rest = super().resolve_command(ctx, args)
        if name in COMMANDS and not callable(getattr(cmd, "callback", None)):
            cmd = self.commands[name] = command(name)
        return name, cmd, rest

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().make_context(*args, **kwargs)
        except _CLICK_ERROR as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":  # `salutary` alone: the help
                raise
            raise _usage_error(exc) from None

    def invoke(self, ctx: Any) -> Any:  # typer's vendored click.Context
        try:
            return super().invoke(ctx)
        except _CLICK_ERROR as exc:  # a command's usage error
            raise _usage_error(exc) from None
        except (typer.Exit, typer.Abort, typer.TyperException):  # exits
            raise
        except (KeyboardInterrupt, Terminated, Exception) as exc:
            raise _ending(exc) from None


def _signal_in(exc: BaseException) -> BaseException | None:
    """The interrupt behind ``exc``, if any: a signal that arrives while a module is
    imported (commands import theirs late) may reach us wrapped, e.g. in a RuntimeError
    of ``__set_name__``."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, (KeyboardInterrupt, Terminated)):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _ending(exc: BaseException) -> typer.Exit:
    """Print the one line that ends the program on an interrupt or an unexpected error
    (which is logged with its traceback); the exit to raise (status 130, 143 or 1)."""
    interrupt = _signal_in(exc)
    if isinstance(interrupt, KeyboardInterrupt):
        typer.echo("error: interrupted", err=True)
        return typer.Exit(130)
    if interrupt is not None:
        typer.echo("error: terminated", err=True)
        return typer.Exit(143)
    path = crash_log(exc)
    typer.echo(f"error: {one_line_error(exc)} (a bug; traceback in {path})", err=True)
    return typer.Exit(1)


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
        "    salutary label -l labeled.csv -u pool.csv -V val.csv -t label -o out.csv\n"
        "    salutary run --dataset breast_cancer --seeds 3\n"
        "    salutary datasets\n\n"
        "Run `salutary COMMAND --help` for the options of a command."
    ),
    no_args_is_help=True,
    add_completion=True,
    context_settings={"help_option_names": ["-h", "--help"]},
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
    # Terminated: between commands, or while click parses the arguments; an Exception:
    # outside a command, e.g. while typer imports what it needs
    except (Terminated, Exception) as exc:
        sys.exit(_ending(exc).exit_code)


if __name__ == "__main__":  # pragma: no cover
    main()
