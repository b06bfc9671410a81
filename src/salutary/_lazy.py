"""Deferred imports of the package's own modules: the one place that imports them by name.

``import salutary`` and the command line's start (``salutary --help``, ``salutary
--version``, a usage error) must not pay for numpy, pandas, scikit-learn, SciPy and
matplotlib. So the package's public names and the command line's commands are imported
when first used, through the two functions here. Each caller passes a literal
``"salutary.…"`` module name (the architecture test reads these names to check for import
cycles); optional third-party packages go through :mod:`salutary._optional` instead.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

__all__ = ["import_deferred", "lazy_attributes"]


def import_deferred(module: str) -> ModuleType:
    """Import one of the package's own modules, ``module``, when it is first needed.

    Parameters
    ----------
    module : str
        A dotted name inside the package, e.g. ``"salutary.cli._label_work"``.

    Returns
    -------
    module
    """
    if not module.startswith("salutary."):
        raise ValueError(f"not a module of salutary: {module!r}")
    return importlib.import_module(module)


def lazy_attributes(
    namespace: dict[str, Any], names: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A module's ``__getattr__`` and ``__dir__`` (PEP 562) that import ``names`` on use.

    Parameters
    ----------
    namespace : dict
        The module's ``globals()``: a name imported is kept there, so the next use of it
        is an ordinary attribute.
    names : mapping of str to str
        Each public name and the module (``"salutary.…"``) that defines it.

    Returns
    -------
    (__getattr__, __dir__)
    """
    package = namespace["__name__"]

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = namespace[name] = getattr(import_deferred(module), name)
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *names})

    return __getattr__, __dir__
