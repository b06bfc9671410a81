"""What the commands that write a results folder share (loaded when they run, not for
``--help``): the versions a result depends on, the output folder."""

from __future__ import annotations

import platform
from pathlib import Path

import numpy
import pandas
import sklearn

from salutary import __version__
from salutary.exceptions import InputError
from salutary.tabular import probe_directory

__all__ = ["create_folder", "output_folder", "versions"]


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
