"""The exceptions salutary raises on purpose, in one place.

Each one subclasses the built-in exception a caller would catch without knowing
salutary (``ImportError``, ``ValueError``, ``KeyError``), and carries a one-line message
meant for the user: the command line prints it as ``error: ...``.
"""

from __future__ import annotations

__all__ = [
    "DatasetNotInstalledError",
    "InputError",
    "MissingDependencyError",
    "ModelNotInstalledError",
    "UnknownDatasetError",
]


class MissingDependencyError(ImportError):
    """An optional dependency is not installed; the message names the install command."""


class DatasetNotInstalledError(MissingDependencyError):
    """The package or files a dataset is read from are not installed.

    The message names the command that installs them.
    """


class ModelNotInstalledError(MissingDependencyError):
    """A model's package (or the deep-learning extra) is not installed.

    The message names the command that installs it.
    """


class UnknownDatasetError(KeyError, ValueError):
    """A dataset name that is not registered; the message lists the known names.

    Subclasses both :class:`KeyError` and :class:`ValueError`.
    """

    def __str__(self) -> str:
        """Return the message without the quotes KeyError adds."""
        return str(self.args[0]) if self.args else ""


class InputError(ValueError):
    """Bad input files or options; the message is one line meant for the user."""
