"""Parameter validation, the scikit-learn way, behind one import.

Estimators and strategies declare ``_parameter_constraints`` (a dict from parameter name
to a list of constraints: types, ``None``, ``"boolean"``, :class:`Interval`,
:class:`StrOptions`) and call :func:`validate_params` once, when they start work. The
checks and messages are scikit-learn's (``InvalidParameterError``, a ``ValueError`` and
``TypeError``), whose constraint objects live in a private scikit-learn module: this is
the only module that imports it.
"""

from __future__ import annotations

from numbers import Integral, Real

from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import (
    Interval,
    InvalidParameterError,
    StrOptions,
    validate_parameter_constraints,
)

__all__ = ["Integral", "Interval", "InvalidParameterError", "Real", "StrOptions", "validate_params"]


def validate_params(obj: BaseEstimator) -> None:
    """Check ``obj.get_params()`` against ``obj._parameter_constraints``.

    Raises
    ------
    InvalidParameterError
        Naming the parameter, the class, what it must be and what it got.
    """
    validate_parameter_constraints(
        getattr(obj, "_parameter_constraints", {}),
        obj.get_params(deep=False),
        caller_name=type(obj).__name__,
    )
