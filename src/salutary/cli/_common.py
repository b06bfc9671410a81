"""What the commands share: option types, one-line errors, progress bars, output folders."""

from __future__ import annotations

import math
import os
import platform
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import numpy
import pandas
import sklearn
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
from salutary.exceptions import InputError
from salutary.tabular import probe_directory

__all__ = [
    "L2",
    "Budget",
    "MultiValueCommand",
    "Rounds",
    "crash_log",
    "create_folder",
    "expand_multiple",
    "fail",
    "split_names",
    "output_folder",
    "plural",
    "positive",
    "progress_bar",
    "stage_progress",
    "stdout",
    "versions",
]


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


def stdout() -> Console:
    """The console results are printed on."""
    return Console()


def progress_bar(transient: bool = False) -> Progress:
    """A progress bar on stderr (``transient``: erased when done)."""
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=transient,
    )


@contextmanager
def stage_progress(first: str, total: int) -> Iterator[Callable[[str, int, int], None] | None]:
    """A ``progress(what, done, total)`` callback drawing a bar on stderr, erased when
    done; None when stderr is not a terminal (logs and error output stay clean)."""
    if not Console(stderr=True).is_terminal:
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


def versions() -> dict[str, str]:
    """The versions a result depends on, for a config file."""
    return {
        "salutary_version": __version__,
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "pandas": pandas.__version__,
        "scikit_learn": sklearn.__version__,
    }


def output_folder(output: str | None, default: Path) -> Path:
    """The output folder, checked but not created: :class:`InputError` unless it is (or
    can be made) a folder that files can be written in.

    Nothing is created before the work, so a run that fails or is interrupted leaves no
    empty folder behind; :func:`create_folder` makes it when the results are written.
    """
    folder = Path(output) if output else default
    what = f"output folder {str(folder)!r}"
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{what} exists and is not a folder")
    existing = folder
    while not existing.exists():  # the nearest ancestor there is: where mkdir would start
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(f"cannot create {what}: {str(existing)!r} is not a folder")
    probe_directory(existing, what)
    return folder


def create_folder(folder: Path) -> Path:
    """Make ``folder`` (and its parents) when there is something to write in it."""
    folder.mkdir(parents=True, exist_ok=True)
    return folder
