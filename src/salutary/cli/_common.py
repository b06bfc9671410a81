"""What the commands share: option types, one-line errors, progress bars, what goes where.

Imported by the command modules that ``salutary COMMAND --help`` loads, so it stays light:
the standard library, typer and rich only (no numpy, pandas or scikit-learn).
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from typer.core import TyperCommand

from salutary import __version__

__all__ = [
    "L2",
    "ORACLE_FREE_STRATEGIES",
    "ORACLE_STRATEGIES",
    "STDIO",
    "Budget",
    "Json",
    "MultiValueCommand",
    "Quiet",
    "Rounds",
    "Say",
    "Verbose",
    "check_input_file",
    "crash_log",
    "expand_multiple",
    "fail",
    "plural",
    "positive",
    "progress_bar",
    "split_names",
    "stage_progress",
    "stdout",
    "write_stdout",
]

#: The strategy registry's names (``salutary.strategies``), copied here so that ``--help``
#: need not import the numerical code; a test checks that they match.
ORACLE_FREE_STRATEGIES = (
    "salutary-newton", "salutary", "salutary-crossfit", "self-training", "val-teacher",
)  # fmt: skip
ORACLE_STRATEGIES = (
    "salutary-oracle", "salutary-hybrid", "random", "entropy", "margin", "least-confidence",
    "badge", "coreset", "isal", "predicted-influence",
)  # fmt: skip

#: A file name that means standard input (for an input) or standard output (an output).
STDIO = "-"


class MultiValueCommand(TyperCommand):
    """A command whose multiple-value options also take several values after one flag.

    ``--strategies random salutary`` is read as ``--strategies random --strategies
    salutary`` (click itself only accepts the repeated form, which keeps working).
    """

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        multiple = {
            opt
            for p in self.params
            if getattr(p, "multiple", False)
            for opt in (*getattr(p, "opts", ()), *getattr(p, "secondary_opts", ()))
        }
        return super().parse_args(ctx, expand_multiple(args, multiple))


def expand_multiple(args: Sequence[str], multiple: set[str]) -> list[str]:
    """``args`` with every value after a multiple-value option given its own flag."""
    out: list[str] = []
    current: str | None = None  # the multiple-value option being read
    needs_value = False
    for i, tok in enumerate(args):
        if tok == "--":
            out.extend(args[i:])
            break
        if tok.startswith("-") and len(tok) > 1:
            opt, has_value, _ = tok.partition("=")
            current = opt if opt in multiple else None
            needs_value = current is not None and not has_value
            out.append(tok)
        elif current is not None and not needs_value:
            out.extend([current, tok])
        else:
            needs_value = False
            out.append(tok)
    return out


def one_line_error(exc: BaseException) -> str:
    """``TypeName: message`` on one line."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def crash_log(exc: BaseException) -> Path:
    """Write the traceback of an unexpected error to a new file; its path."""
    fd, name = tempfile.mkstemp(prefix="salutary-error-", suffix=".log")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(f"salutary {__version__}, Python {platform.python_version()}\n")
        fh.write(f"command: {' '.join(sys.argv)}\n\n")
        fh.write("".join(traceback.format_exception(exc)))
    return Path(name)


def fail(message: str) -> typer.Exit:
    """Print ``error: message`` as one line on stderr; return the exit to raise (status 2)."""
    typer.echo(f"error: {' '.join(str(message).split())}", err=True)
    return typer.Exit(2)


def plural(count: int, noun: str) -> str:
    """'1 run', '2 runs'."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def positive(value: float) -> float:
    """An option callback: a positive, finite number."""
    if not (value > 0 and math.isfinite(value)):
        raise typer.BadParameter(f"must be a positive number, got {value}")
    return value


# Options shared by several commands.
Budget = Annotated[int, typer.Option("--budget", "-b", min=1, help="Rows per round.")]
Rounds = Annotated[int, typer.Option("--rounds", "-r", min=1, help="Rounds.")]
L2 = Annotated[
    float,
    typer.Option("--l2", callback=positive, help="L2 penalty of the logistic model (C = 1 / l2)."),
]


Quiet = Annotated[
    bool,
    typer.Option(
        "--quiet", "-q", help="No progress bars or notes on stderr: only results and errors."
    ),
]
Verbose = Annotated[
    bool,
    typer.Option("--verbose", "-v", help="More detail on stderr: a line per step as it ends."),
]
Json = Annotated[
    bool,
    typer.Option(
        "--json",
        help="Print one JSON document with the results on stdout (and nothing else there): "
        "stable keys, no formatting; progress and notes stay on stderr.",
    ),
]


@dataclass(frozen=True)
class Say:
    """Where a command's messages go, from ``--quiet``, ``--verbose`` and ``--json``.

    Results go to stdout, except with ``--json`` (the JSON document is all stdout holds)
    or when stdout carries data (``--output -``); notes, details and progress go to
    stderr. Errors are not handled here: they are always one ``error:`` line.
    """

    quiet: bool = False
    verbose: bool = False
    json: bool = False
    data_on_stdout: bool = False

    def __post_init__(self) -> None:
        if self.quiet and self.verbose:
            raise fail("--quiet and --verbose cannot be used together")
        if self.json and self.data_on_stdout:
            raise fail("--json and --output - both write to standard output; choose one")

    def note(self, message: str) -> None:
        """A line on stderr the user should know of (``note: ...``); not with --quiet."""
        if not self.quiet:
            typer.echo(message, err=True)

    def detail(self, message: str) -> None:
        """A line on stderr with --verbose only."""
        if self.verbose:
            typer.echo(message, err=True)

    def result(self) -> Console:
        """The console human-readable results are printed on (stdout, or stderr when
        stdout carries data or JSON; a console that prints nothing with --quiet there)."""
        if self.json or self.data_on_stdout:
            return Console(stderr=True, quiet=self.quiet or self.json)
        return stdout()

    def document(self, doc: dict[str, Any]) -> None:
        """With --json: ``doc`` as JSON on stdout."""
        if self.json:
            write_stdout(json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n")


def check_input_file(role: str, path: str) -> None:
    """An ``error:`` exit unless ``path`` exists and is not a folder, checked before the
    numerical modules are imported (``salutary.tabular.read_table`` says the same later)."""
    p = Path(path)
    if not p.exists():
        raise fail(f"{role} file {path!r} does not exist")
    if p.is_dir():
        raise fail(f"{role} file {path!r} is a directory, not a file")


def write_stdout(text: str) -> None:
    """Write ``text`` on stdout; a reader that stops early (``| head``) ends the program
    quietly with status 1, not with a traceback."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        # nothing more can be written; keep Python's own flush at exit from failing too
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        raise typer.Exit(1) from None


def stdout() -> Console:
    """The console results are printed on."""
    return Console()


def progress_bar(transient: bool = False, quiet: bool = False) -> Progress:
    """A progress bar on stderr (``transient``: erased when done; ``quiet``: not drawn)."""
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=transient,
        disable=quiet,
    )


@contextmanager
def stage_progress(
    first: str, total: int, quiet: bool = False
) -> Iterator[Callable[[str, int, int], None] | None]:
    """A ``progress(what, done, total)`` callback drawing a bar on stderr, erased when
    done; None when stderr is not a terminal (logs and error output stay clean) or with
    ``quiet``."""
    if quiet or not Console(stderr=True).is_terminal:
        yield None
        return
    with progress_bar(transient=True) as bar:
        task = bar.add_task(first, total=total)

        def update(what: str, done: int, total: int) -> None:
            bar.update(task, description=what, completed=done, total=total)

        yield update


def split_names(values: Sequence[str] | None, default: Sequence[str]) -> list[str]:
    """Names given after one flag, repeated, or comma-separated; ``default`` if none."""
    if not values:
        return list(default)
    given = [v.strip() for value in values for v in value.split(",") if v.strip()]
    return list(dict.fromkeys(given))
