"""Dense arrays and SciPy sparse matrices behind the few operations that differ.

Features may come as a CSR matrix (a TF-IDF pool, say): the model, the influence engine,
the pool and the loop keep them sparse. Each helper does on a dense array exactly what the
code did before sparse input was accepted (the same expression, so the same bits), and
the equivalent on a sparse matrix.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

__all__ = [
    "as_float64",
    "densify",
    "gram",
    "is_sparse",
    "squared",
    "vstack",
    "with_ones",
]


def is_sparse(X: Any) -> bool:
    """Whether ``X`` is a SciPy sparse matrix or array."""
    return bool(sp.issparse(X))


def as_float64(X: Any) -> Any:
    """``X`` as float64: an ndarray, or a CSR matrix for sparse input."""
    if is_sparse(X):
        return sp.csr_matrix(X, dtype=np.float64)
    return np.asarray(X, dtype=np.float64)


def with_ones(X: Any) -> Any:
    """``[X, 1]``: a column of ones appended (the intercept's feature)."""
    n = X.shape[0]
    if is_sparse(X):
        return sp.hstack([X, sp.csr_matrix(np.ones((n, 1)))], format="csr")
    return np.hstack([X, np.ones((n, 1))])


def gram(Xa: Any, c: np.ndarray) -> np.ndarray:
    """``Xa^T diag(c) Xa`` as a dense array."""
    if is_sparse(Xa):
        return np.asarray((Xa.T @ Xa.multiply(c[:, None]).tocsr()).toarray())
    return Xa.T @ (Xa * c[:, None])


def squared(X: Any) -> Any:
    """Element-wise square."""
    return X.power(2) if is_sparse(X) else X**2


def vstack(blocks: Sequence[Any]) -> Any:
    """Rows stacked: sparse (CSR) if any block is sparse."""
    if any(is_sparse(b) for b in blocks):
        return sp.vstack([sp.csr_matrix(b) for b in blocks], format="csr")
    return np.vstack(blocks)


def densify(X: Any) -> np.ndarray:
    """A dense copy of a sparse matrix; ``X`` itself if it is dense."""
    return np.asarray(X.toarray()) if is_sparse(X) else X
