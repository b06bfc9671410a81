"""The training Hessian systems behind salutary-newton's look-ahead.

:class:`salutary.influence.OneStepLosses` (in ``_lookahead``) needs solves with the
training Hessian at the fitted model plus the curvature of the pairs accepted so far.
The Hessian is built and factorized once per round; the accepted pairs' curvature
joins it by refactorizing small systems and by the Woodbury identity for large ones
(:class:`GrowingHessian`). Models too large for the dense Hessian use
:class:`MatrixFreeHessian` instead: the same systems, solved by conjugate gradients on
Hessian-vector products, without ever forming the Hessian. Training sets with few rows
for their parameters are solved through the Hessian's kernel instead of its dense
factorization (:mod:`salutary.influence._kernel`, which also chooses among the systems:
:func:`salutary.influence.model_system`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.linalg
from scipy.linalg.blas import dsyrk

from salutary._linear import LogisticObjective, batched_cg, probabilities
from salutary._sparse import is_sparse
from salutary.influence._factors import model_parameters

__all__ = [
    "MATRIX_FREE_MAX_PARAMS",
    "MATRIX_FREE_TOL",
    "NEWTON_MAX_PARAMS",
    "REFACTOR_MAX_PARAMS",
    "GrowingHessian",
    "MatrixFreeHessian",
    "curvature_factors",
    "factorized_once",
    "matrix_free_system",
    "pair_hessian",
    "symmetric_hessian",
    "training_objective",
    "training_system",
]

#: Largest model (``k * (d + 1)`` parameters) for which the dense Hessian is built:
#: 25,000 parameters is 5 GB in float64, factorized in place (1,024 features and 20
#: classes fit). Beyond it, or when the allocation fails, salutary-newton solves the
#: same systems matrix-free (:class:`MatrixFreeHessian`).
NEWTON_MAX_PARAMS = 25_000

#: Largest model for the matrix-free second-order path: 1,000,000 parameters (10,000
#: features and 100 classes). Its memory is the pairs' steps and warm starts, two
#: arrays of ``n_pairs * n_params`` floats (1.6 GB there with the default 100 pairs),
#: plus the solver's working arrays of at most 64 MB each; its time grows with the
#: parameter count times the training rows, per pair, iteration and greedy step
#: (BENCHMARKS.md). Beyond it salutary-newton falls back to the first-order top-b with
#: a warning.
MATRIX_FREE_MAX_PARAMS = 1_000_000

#: Relative residual at which the matrix-free solves stop. The picks' scores then
#: agree with the dense path's to about 1e-8 relative where measured (BENCHMARKS.md);
#: only pairs whose one-step losses tie that closely could be picked differently.
MATRIX_FREE_TOL = 1e-8

#: Entries of the ``(n, rows, k)`` temporary of one batched Hessian-vector product
#: (64 MB in float64); more right-hand sides are multiplied in several batches.
_HVP_BUDGET = 8_000_000

#: Entries of each working array of the matrix-free solver (``rows * n_params``, 64 MB
#: in float64); more right-hand sides are solved in several groups.
_SOLVE_BUDGET = 8_000_000

#: Up to this many parameters the Hessian is refactorized after each accepted step;
#: beyond it, it is factorized once and the accepted pairs enter by Woodbury. Measured
#: (BENCHMARKS.md): refactorizing is as fast or faster at 442 and 650 parameters (a pair
#: adds k columns to the low-rank term: 26 on letter), Woodbury faster from 1,155 on
#: (1.9x at 3,850).
REFACTOR_MAX_PARAMS = 1000

#: Above this many parameters the Hessian is factorized in place (no copy is kept to
#: fall back on when it is singular).
_IN_PLACE_PARAMS = 4000


def pair_hessian(p: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Hessian of one sample's cross-entropy: ``(diag(p) - p p^T) (x) x x^T``.

    ``p`` holds the probabilities of the ``k`` logits (one sigmoid logit: ``p (1 - p)``).
    """
    C = np.diag(p * (1.0 - p)) if p.shape[0] == 1 else np.diag(p) - np.outer(p, p)
    return np.kron(C, np.outer(x, x))


def curvature_factors(P: np.ndarray) -> np.ndarray:
    """Square roots of the rows' cross-entropy curvature: for probabilities ``P`` of
    shape ``(n, k)``, ``A`` of shape ``(n, k, k)`` with ``C_i = diag(p_i) - p_i p_i^T =
    A_i A_i^T``, ``A_i = diag(sqrt p_i) - p_i sqrt(p_i)^T`` (``sqrt(p (1 - p))`` for one
    sigmoid logit). A pair's Hessian ``C (x) x x^T`` is then ``U U^T``, ``U = A (x) x``."""
    if P.shape[1] == 1:
        return np.sqrt(P * (1.0 - P))[:, :, None]
    r = np.sqrt(P)
    A = -P[:, :, None] * r[:, None, :]
    diagonal = np.arange(P.shape[1])
    A[:, diagonal, diagonal] += r
    return A


def _woodbury(U: list[np.ndarray], Y: list[np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """``H^{-1} B -> (H + sum U_i U_i^T)^{-1} B`` given ``Y_i = H^{-1} U_i``."""
    if not U:
        return lambda X: X
    Us, Ys = np.hstack(U), np.hstack(Y)
    small = scipy.linalg.cho_factor(np.eye(Us.shape[1]) + Us.T @ Ys, lower=True)
    return lambda X: X - Ys @ scipy.linalg.cho_solve(small, Us.T @ X)


class GrowingHessian:
    """The training Hessian plus the curvature of the pairs accepted so far.

    Systems up to :data:`REFACTOR_MAX_PARAMS` parameters, and ones up to 4,000 whose
    Hessian is singular to working precision, add each pair's Hessian to the
    dense matrix and refactorize per step. The others factorize ``H`` once and add pairs
    as low-rank terms: a pair's Hessian ``C (x) x x^T`` with ``C = diag(p) - p p^T =
    A A^T``, ``A = diag(sqrt p) - p sqrt(p)^T``, is ``U U^T`` with ``U = A (x) x``
    (``k`` columns), and ``(H + U U^T)^{-1} B`` follows from the Woodbury identity.

    Parameters
    ----------
    H : ndarray of shape (p, p)
        Symmetric positive definite; overwritten.
    """

    def __init__(self, H: np.ndarray) -> None:
        self.low_rank = H.shape[0] > REFACTOR_MAX_PARAMS
        self.H = H
        self.U: list[np.ndarray] = []  # (k d1, k) per accepted pair
        self.Y: list[np.ndarray] = []  # H^{-1} U, same shapes
        if self.low_rank:
            # In place for large systems: at 10,000 parameters a copy would cost 800 MB.
            in_place = H.shape[0] > _IN_PLACE_PARAMS
            try:
                self.chol = scipy.linalg.cho_factor(
                    H, lower=True, overwrite_a=in_place, check_finite=False
                )
            except np.linalg.LinAlgError:
                if in_place:
                    raise ValueError(
                        f"the training Hessian ({H.shape[0]} parameters) is singular to "
                        "working precision: the L2 penalty is too small for these data; use "
                        "a larger one"
                    ) from None
                # Small and singular (a penalty near 0 on separable data): the dense
                # path, whose solver falls back to the pseudo-inverse.
                self.low_rank = False

    def add(self, p: np.ndarray, x: np.ndarray, solved: np.ndarray | None = None) -> None:
        """Add the Hessian of one pair's cross-entropy (probabilities ``p``, features ``x``).

        ``solved``: ``H^{-1} (I_k (x) x)`` (shape ``(k d1, k)``, column ``c`` the solve
        against ``e_c (x) x``) when the caller has it, saving ``k`` solves.
        """
        if not self.low_rank:
            self.H += pair_hessian(p, x)
            return
        A = curvature_factors(p[None, :])[0]
        U = np.kron(A, x[:, None])  # = (I_k (x) x) A
        self.U.append(U)
        if solved is not None:
            self.Y.append(solved @ A)
        else:
            self.Y.append(self.solve0(U))

    def solve0(self, B: np.ndarray) -> np.ndarray:
        """``H^{-1} B`` with the Hessian as factorized, no pair added (low-rank systems)."""
        return scipy.linalg.cho_solve(self.chol, B, check_finite=False)

    def woodbury(self) -> Callable[[np.ndarray], np.ndarray]:
        """A function ``H^{-1} B -> (H + added)^{-1} B`` (low-rank systems)."""
        return _woodbury(self.U, self.Y)

    def solver(self) -> Callable[[np.ndarray], np.ndarray]:
        """A function ``B -> (H + added)^{-1} B`` for the current system."""
        if not self.low_rank:
            try:
                chol = scipy.linalg.cho_factor(self.H, lower=True)
            except np.linalg.LinAlgError:
                # Singular to working precision (a penalty near 0 on separable data): the
                # pseudo-inverse gives the minimum-norm step, as LogisticObjective.solve.
                inverse = scipy.linalg.pinvh(self.H)
                return lambda B: inverse @ B
            return lambda B: scipy.linalg.cho_solve(chol, B)
        correct = self.woodbury()
        return lambda B: correct(self.solve0(B))


def _curvature(Xa: Any, P: np.ndarray, w: np.ndarray | None, V: np.ndarray) -> np.ndarray:
    """``sum_i w_i (C_i (x) x_i x_i^T) v`` for every row ``v`` of ``V`` (shape ``(m, k d1)``),
    ``C_i = diag(p_i) - p_i p_i^T`` (``p (1 - p)`` for one sigmoid logit).

    Without forming any Hessian: ``A = Xa V_c^T`` are the logits' changes along each
    row (``(n, m, k)``), ``B = P A - P rowsum(P A)`` applies every ``C_i``, and
    ``B^T Xa`` maps back, ``O(n m k d1)`` in two matrix products (DESIGN.md, "closed
    form for softmax regression").
    """
    n, k = P.shape
    m = V.shape[0]
    d1 = V.shape[1] // k
    A = np.asarray(Xa @ V.reshape(m * k, d1).T).reshape(n, m, k)
    A *= P[:, None, :]  # p_c a_c
    A -= P[:, None, :] * A.sum(axis=2, keepdims=True)  # - p_c sum_l p_l a_l
    if w is not None:
        A *= w[:, None, None]
    return np.asarray(Xa.T @ A.reshape(n, m * k)).T.reshape(m, k * d1)


class MatrixFreeHessian:
    """:class:`GrowingHessian`'s systems for models too large for the dense Hessian.

    The training Hessian (with the intercepts' null-direction fix) plus the accepted
    pairs' curvature is only ever applied to vectors, ``O(n k d1)`` per product from the
    training features and probabilities (:func:`_curvature`), and its systems are
    solved by Jacobi-preconditioned conjugate gradients (:func:`batched_cg`, many
    right-hand sides per product) to :data:`MATRIX_FREE_TOL`. Memory is a few vectors
    per right-hand side instead of ``(k d1)^2`` floats.

    It offers the interface :class:`OneStepLosses` uses: :meth:`solve0` (no pair) with
    :meth:`woodbury` when the candidates' solves are tabulated (few classes), and
    :meth:`solve` with the accepted pairs' curvature inside the products otherwise.

    Parameters
    ----------
    train : LogisticObjective
        The training objective (its labels do not matter).
    theta : ndarray of shape (k, d1)
        The parameters at which the Hessian is taken.
    tol : float, default=MATRIX_FREE_TOL
        Relative residual at which every solve stops.

    Attributes
    ----------
    n_iter : list of int
        Conjugate-gradient iterations of every solve so far.
    """

    low_rank = True  # solves without the pairs are available (solve0, woodbury)

    def __init__(
        self, train: LogisticObjective, theta: np.ndarray, tol: float = MATRIX_FREE_TOL
    ) -> None:
        self.train = train
        self.P = probabilities(train.logits(theta))
        self.tol = tol
        self.k, self.d1 = train.k, train.d1
        self.max_iter = 10 * train.n_params  # as LogisticObjective.solve
        diag = train.hessian_diagonal(self.P).ravel()
        if train.null is not None:
            diag = diag + train.null**2
        self.diag = np.where(diag > 0, diag, 1.0)
        self.pair_x: list[np.ndarray] = []  # accepted pairs' features and probabilities
        self.pair_p: list[np.ndarray] = []
        self.U: list[np.ndarray] = []  # Woodbury terms, when the caller has the solves
        self.Y: list[np.ndarray] = []
        self.n_iter: list[int] = []

    def product(self, V: np.ndarray, pairs: bool = True) -> np.ndarray:
        """The Hessian (with the accepted pairs' curvature unless ``pairs`` is False)
        times every row of ``V`` (shape ``(m, k d1)``)."""
        train, null = self.train, self.train.null
        out = np.empty_like(V)
        step = max(1, _HVP_BUDGET // max(train.Xa.shape[0] * self.k, 1))
        for start in range(0, V.shape[0], step):
            rows = V[start : start + step]
            out[start : start + step] = _curvature(train.Xa, self.P, train.w, rows)
        out += train.l2 * train.mask.ravel() * V
        if null is not None:
            out += np.outer(V @ null, null)
        if pairs and self.pair_x:
            out += _curvature(np.vstack(self.pair_x), np.vstack(self.pair_p), None, V)
        return out

    def solve(self, B: np.ndarray, X0: np.ndarray | None = None, pairs: bool = True) -> np.ndarray:
        """``(H + added)^{-1} b`` for every row ``b`` of ``B`` (``(m, k d1)``), by conjugate
        gradients from ``X0`` (a warm start) or zero; without the pairs' curvature if
        ``pairs`` is False."""
        # In groups of rows, so that the solver's working arrays (a few per group)
        # stay within _SOLVE_BUDGET entries each whatever the number of pairs.
        X = np.empty_like(B)
        group = max(1, _SOLVE_BUDGET // B.shape[1])
        n_iter = 0
        for start in range(0, B.shape[0], group):
            rows = slice(start, start + group)
            X[rows], used = batched_cg(
                lambda V: self.product(V, pairs),
                B[rows],
                lambda R: R / self.diag,
                tol=self.tol,
                max_iter=self.max_iter,
                X0=None if X0 is None else X0[rows],
            )
            n_iter = max(n_iter, used)
        self.n_iter.append(n_iter)
        return X

    def add(self, p: np.ndarray, x: np.ndarray, solved: np.ndarray | None = None) -> None:
        """Add the Hessian of one pair's cross-entropy (probabilities ``p``, features ``x``).

        ``solved``: ``H^{-1} (I_k (x) x)`` as in :meth:`GrowingHessian.add`; with it the
        pair also joins the Woodbury terms (no extra solve).
        """
        self.pair_x.append(np.asarray(x, dtype=np.float64)[None, :])
        self.pair_p.append(np.asarray(p, dtype=np.float64)[None, :])
        if solved is not None:
            A = curvature_factors(p[None, :])[0]
            self.U.append(np.kron(A, x[:, None]))
            self.Y.append(solved @ A)

    def solve0(self, B: np.ndarray) -> np.ndarray:
        """``H^{-1} B`` (columns, or one vector), no pair added."""
        B = np.asarray(B, dtype=np.float64)
        rows = B[None, :] if B.ndim == 1 else B.T
        X = self.solve(np.ascontiguousarray(rows), pairs=False)
        return X[0] if B.ndim == 1 else X.T

    def woodbury(self) -> Callable[[np.ndarray], np.ndarray]:
        """As :meth:`GrowingHessian.woodbury`; every pair must have been added with
        ``solved``."""
        if len(self.Y) != len(self.pair_x):
            raise ValueError("woodbury needs the solves of every added pair")
        return _woodbury(self.U, self.Y)

    def solver(self) -> Callable[[np.ndarray], np.ndarray]:
        """A function ``B -> (H + added)^{-1} B`` (columns, or one vector)."""

        def solve(B: np.ndarray) -> np.ndarray:
            B = np.asarray(B, dtype=np.float64)
            rows = B[None, :] if B.ndim == 1 else B.T
            X = self.solve(np.ascontiguousarray(rows))
            return X[0] if B.ndim == 1 else X.T

        return solve


def factorized_once(n_params: int) -> bool:
    """Whether a model of ``n_params`` parameters has its training Hessian factorized
    once per round (Woodbury updates) rather than refactorized per greedy step."""
    return n_params > REFACTOR_MAX_PARAMS


def symmetric_hessian(train: LogisticObjective, P: np.ndarray) -> np.ndarray:
    """The dense Hessian of ``train`` at probabilities ``P``, block by block with
    symmetric rank-n products (BLAS ``syrk``): half the multiply-adds of
    :meth:`LogisticObjective.hessian`, equal to rounding.

    Block ``(a, b)`` is ``Xa^T diag(c) Xa`` with ``c = w p_a (delta_ab - p_b)``, of one
    sign per block, so it is ``+-(sqrt|c| Xa)^T (sqrt|c| Xa)``. ``Xa`` must be dense.
    """
    k, d1 = train.k, train.d1
    Xa = np.asarray(train.Xa)
    H = np.empty((k * d1, k * d1))
    wP = P * train.w[:, None]
    upper = np.triu_indices(d1, 1)
    for a in range(k):
        for b in range(a, k):
            c = wP[:, a] * (1.0 - P[:, a]) if a == b else wP[:, a] * P[:, b]
            A = Xa * np.sqrt(c)[:, None]
            # A.T is A's Fortran-ordered view: syrk reads it without a copy and fills
            # the upper triangle of alpha * A^T A.
            block = dsyrk(1.0 if a == b else -1.0, A.T, trans=0, lower=0)
            block[(upper[1], upper[0])] = block[upper]
            H[a * d1 : (a + 1) * d1, b * d1 : (b + 1) * d1] = block
            if b != a:
                H[b * d1 : (b + 1) * d1, a * d1 : (a + 1) * d1] = block  # symmetric
    H[np.diag_indices_from(H)] += train.l2 * train.mask.ravel()
    return H


def training_system(train: LogisticObjective, theta: np.ndarray) -> GrowingHessian:
    """The training Hessian at ``theta`` (with the intercepts' null-direction fix), ready
    to grow by accepted pairs.

    Systems factorized once per round (:func:`factorized_once`) with dense features
    build it by :func:`symmetric_hessian`; the others as the first-order factors do,
    so that their selections stay the same bit for bit.
    """
    P = probabilities(train.logits(theta))
    if factorized_once(train.n_params) and not is_sparse(train.Xa):
        H = symmetric_hessian(train, P)
    else:
        H = train.hessian(P)
    if train.null is not None:
        # n n^T touches only the intercepts' entries: adding it there alone gives the
        # same matrix without a (k d1)^2 temporary.
        at = np.flatnonzero(train.null)
        H[np.ix_(at, at)] += np.outer(train.null[at], train.null[at])
    return GrowingHessian(H)


def training_objective(
    model: object, X_train: Any, sample_weight: np.ndarray | None
) -> tuple[LogisticObjective, np.ndarray]:
    """A fitted model's objective on its training set (dummy labels: the Hessian does
    not depend on them) and its parameters: the arguments of :func:`training_system`."""
    classes, theta, l2, fit_intercept = model_parameters(model)
    train = LogisticObjective(
        X_train, np.zeros(X_train.shape[0], np.intp), len(classes), l2, fit_intercept,
        None if sample_weight is None else np.asarray(sample_weight),
    )  # fmt: skip
    return train, theta


def matrix_free_system(
    model: object, X_train: Any, sample_weight: np.ndarray | None
) -> MatrixFreeHessian:
    """The training Hessian of a fitted model on its training set, matrix-free: as
    :func:`salutary.influence.model_system`, for models whose dense Hessian does not fit."""
    return MatrixFreeHessian(*training_objective(model, X_train, sample_weight))
