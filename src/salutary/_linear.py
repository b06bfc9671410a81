"""Objective, gradient, Hessian and linear solves for L2 logistic regression.

Shared by :class:`salutary.LogisticModel` (Newton fit) and :mod:`salutary.influence`.

Parameters are held as a matrix ``theta`` of shape ``(k, d1)``: one row per logit, the
last column the intercept when ``fit_intercept`` (``d1 = d + 1``). Binary problems use a
single sigmoid logit (``k = 1``), multinomial problems one logit per class (``k = K``).
With ``k = 1`` the multinomial formulas below reduce exactly to the sigmoid ones once the
"probability" matrix holds ``sigma(z)`` and the target matrix holds ``y in {0, 1}``, so
one code path serves both.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg
from scipy.sparse.linalg import LinearOperator, cg
from scipy.special import expit, log_expit, logsumexp, softmax

from salutary._sparse import as_float64, gram, squared, with_ones

#: Largest number of parameters for which ``solver="auto"`` may build and factorize the
#: Hessian; beyond it, conjugate gradients on Hessian-vector products are always used.
DIRECT_MAX_PARAMS = 4000

#: Conjugate-gradient iterations assumed when ``solver="auto"`` compares costs.
_CG_ITERATIONS_GUESS = 100

#: Largest number of entries (``k * d1**2``) of the block-Jacobi preconditioner's
#: inverse blocks (200 MB in float64).
BLOCK_JACOBI_MAX_ENTRIES = 25_000_000


def choose_solver(n: int, k: int, d1: int) -> str:
    """``"direct"`` or ``"cg"``, whichever needs fewer floating-point operations.

    The dense Hessian costs about ``n d1^2 k (k + 1)`` to build and ``(k d1)^3 / 3`` to
    factorize; a CG iteration costs about ``4 n k d1`` (two products with the data).
    """
    p = k * d1
    if p > DIRECT_MAX_PARAMS:
        return "cg"
    direct = n * d1 * d1 * k * (k + 1) + p**3 / 3
    cg_cost = 4 * n * p * _CG_ITERATIONS_GUESS
    return "direct" if direct <= cg_cost else "cg"


def linear_scores(X: Any, theta: np.ndarray, fit_intercept: bool) -> np.ndarray:
    """Logits ``X W^T + b`` without materializing ``[X, 1]`` (``X`` dense or sparse)."""
    if fit_intercept:
        return np.asarray(X @ theta[:, :-1].T) + theta[:, -1]
    return np.asarray(X @ theta.T)


def probabilities(Z: np.ndarray) -> np.ndarray:
    """Sigmoid of a single logit column, softmax of several."""
    if Z.shape[1] == 1:
        return expit(Z)
    return softmax(Z, axis=1)


@dataclass
class SolveInfo:
    """How a linear system with the Hessian was solved."""

    solver: str
    n_iter: int
    residual: float


class LogisticObjective:
    """``R(theta) = sum_i w_i CE(x_i, y_i) + (l2 / 2) ||W||^2`` on one training set.

    Parameters
    ----------
    X : ndarray or sparse matrix of shape (n, d)
    y_index : ndarray of shape (n,)
        Class indices in ``0 .. n_classes - 1``.
    n_classes : int
    l2 : float
    fit_intercept : bool
    sample_weight : ndarray of shape (n,) or None
    """

    def __init__(
        self,
        X: Any,
        y_index: np.ndarray,
        n_classes: int,
        l2: float,
        fit_intercept: bool,
        sample_weight: np.ndarray | None = None,
    ) -> None:
        X = as_float64(X)
        n = X.shape[0]
        self.n_classes = n_classes
        self.k = 1 if n_classes == 2 else n_classes
        self.fit_intercept = fit_intercept
        self.l2 = float(l2)
        self.Xa = with_ones(X) if fit_intercept else X
        self.d1 = self.Xa.shape[1]
        self.w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, float)
        y_index = np.asarray(y_index, dtype=np.intp)
        if self.k == 1:
            self.Y = (y_index == 1).astype(np.float64)[:, None]
        else:
            self.Y = np.zeros((n, self.k))
            self.Y[np.arange(n), y_index] = 1.0
        self.mask = np.ones((self.k, self.d1))
        if fit_intercept:
            self.mask[:, -1] = 0.0
        # Unpenalized intercepts of a softmax leave one flat direction: shifting all of
        # them by the same amount changes no probability. Every gradient we solve against
        # is orthogonal to it, so adding n n^T makes the system definite without
        # changing the solution (DESIGN.md, "the singular-Hessian trap").
        self.null = None
        if fit_intercept and self.k > 1:
            null = np.zeros((self.k, self.d1))
            null[:, -1] = 1.0 / np.sqrt(self.k)
            self.null = null.ravel()

    @property
    def n_params(self) -> int:
        return self.k * self.d1

    def logits(self, theta: np.ndarray) -> np.ndarray:
        return self.Xa @ theta.T

    def _objective(self, theta: np.ndarray, Z: np.ndarray) -> float:
        """``R(theta)`` from the logits ``Z = Xa theta^T``."""
        if self.k == 1:
            z = Z[:, 0]
            ce = -(self.Y[:, 0] * log_expit(z) + (1.0 - self.Y[:, 0]) * log_expit(-z))
        else:
            ce = logsumexp(Z, axis=1) - np.sum(Z * self.Y, axis=1)
        return float(self.w @ ce + 0.5 * self.l2 * np.sum((self.mask * theta) ** 2))

    def loss(self, theta: np.ndarray) -> float:
        return self._objective(theta, self.logits(theta))

    def loss_grad(self, theta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """Objective, its gradient (shape of ``theta``) and the probabilities."""
        Z = self.logits(theta)
        P = probabilities(Z)
        f = self._objective(theta, Z)
        G = ((P - self.Y) * self.w[:, None]).T @ self.Xa + self.l2 * self.mask * theta
        return f, G, P

    def hessian(self, P: np.ndarray) -> np.ndarray:
        """Dense Hessian at probabilities ``P``, built from ``k (k + 1) / 2`` BLAS products.

        Block ``(a, b)`` is ``Xa^T diag(w p_a (delta_ab - p_b)) Xa``; ``l2`` is added on
        the diagonal entries of the weights (not the intercepts).
        """
        k, d1 = self.k, self.d1
        H = np.empty((k * d1, k * d1))
        wP = P * self.w[:, None]
        for a in range(k):
            for b in range(a, k):
                c = wP[:, a] * ((1.0 if a == b else 0.0) - P[:, b])
                block = gram(self.Xa, c)
                H[a * d1 : (a + 1) * d1, b * d1 : (b + 1) * d1] = block
                if b != a:
                    H[b * d1 : (b + 1) * d1, a * d1 : (a + 1) * d1] = block.T
        H[np.diag_indices_from(H)] += self.l2 * self.mask.ravel()
        return H

    def hvp(self, P: np.ndarray, delta: np.ndarray) -> np.ndarray:
        """Hessian-vector product, matrix-free, ``O(n k d)``; ``delta`` shaped like theta."""
        A = self.Xa @ delta.T
        B = P * (A - np.sum(P * A, axis=1, keepdims=True)) * self.w[:, None]
        return B.T @ self.Xa + self.l2 * self.mask * delta

    def hessian_diagonal(self, P: np.ndarray) -> np.ndarray:
        """Diagonal of the Hessian (a Jacobi preconditioner), shaped like theta."""
        c = P * (1.0 - P) * self.w[:, None]
        return c.T @ squared(self.Xa) + self.l2 * self.mask

    def preconditioner(self, P: np.ndarray):
        """Jacobi preconditioner for CG: divide by the Hessian's diagonal.

        (A Kronecker-factored alternative, ``c_a Xa^T W Xa + l2`` per class block, was
        measured to need about three times as many CG iterations on MNIST: the weights
        ``p (1 - p)`` vary too much across samples for one shared Gram matrix.)
        """
        diag = self.hessian_diagonal(P).ravel()
        if self.null is not None:
            diag = diag + self.null**2
        diag = np.where(diag > 0, diag, 1.0)
        return lambda x: x / diag

    def block_jacobi_fits(self) -> bool:
        """Whether :class:`BlockJacobi` inverse blocks fit the memory cap."""
        return self.k * self.d1**2 <= BLOCK_JACOBI_MAX_ENTRIES

    def block_jacobi_pays(self, n_iter: int) -> bool:
        """Whether building :class:`BlockJacobi` is worth it after a Jacobi-CG solve
        that took ``n_iter`` iterations.

        Building costs about ``n k d1^2`` multiply-adds (one ``d1 / 4`` of an iteration's
        ``4 n k d1`` each); it must cost less than what one such solve did, and is then
        reused by later solves (Newton steps, the influence factors, the next round).
        """
        return self.block_jacobi_fits() and n_iter >= 50 and self.d1 <= 4 * n_iter

    def solve(
        self,
        P: np.ndarray,
        rhs: np.ndarray,
        *,
        solver: str = "auto",
        tol: float = 1e-10,
        max_iter: int | None = None,
        H: np.ndarray | None = None,
        preconditioner: BlockJacobi | None = None,
    ) -> tuple[np.ndarray, SolveInfo]:
        """Solve ``H v = rhs`` (``rhs`` orthogonal to the null direction, if any).

        Parameters
        ----------
        P : ndarray
            Probabilities at which the Hessian is taken.
        rhs : ndarray, shape of theta
        solver : {"auto", "direct", "cg"}
            ``direct`` factorizes the dense Hessian (Cholesky, with a pseudo-inverse
            fallback when it is singular); ``cg`` runs preconditioned conjugate gradients
            on Hessian-vector products. ``auto`` picks the cheaper by an operation count
            (:func:`choose_solver`), and ``cg`` beyond :data:`DIRECT_MAX_PARAMS` parameters.
        tol : float
            Relative residual at which CG stops.
        max_iter : int or None
            CG iteration cap (default ``10 * n_params``).
        H : ndarray or None
            A precomputed dense Hessian, reused by the direct solver.
        preconditioner : BlockJacobi or None
            Used by CG instead of the Jacobi (diagonal) preconditioner. It may have been
            built at other probabilities or on fewer rows: any symmetric positive definite
            preconditioner leaves the solution unchanged, only the iteration count moves.
        """
        if solver == "auto":
            solver = choose_solver(self.Xa.shape[0], self.k, self.d1)
        b = np.asarray(rhs, dtype=np.float64).ravel()
        if solver == "direct":
            if H is None:
                H = self.hessian(P)
            A = H if self.null is None else H + np.outer(self.null, self.null)
            try:
                v = scipy.linalg.cho_solve(scipy.linalg.cho_factor(A, lower=True), b)
                used = "direct"
            except np.linalg.LinAlgError:
                # Singular beyond the known null direction (e.g. l2 = 0 with collinear
                # features): the pseudo-inverse gives the minimum-norm solution.
                v = scipy.linalg.pinvh(H) @ b
                used = "pinv"
            res = np.linalg.norm(A @ v - b) / max(np.linalg.norm(b), np.finfo(float).tiny)
            return v.reshape(self.k, self.d1), SolveInfo(used, 1, float(res))
        if solver != "cg":
            raise ValueError(f"solver must be 'auto', 'direct' or 'cg', got {solver!r}")

        shape = (self.k, self.d1)
        null = self.null

        def matvec(x: np.ndarray) -> np.ndarray:
            out = self.hvp(P, x.reshape(shape)).ravel()
            if null is not None:
                out += null * (null @ x)
            return out

        n = self.n_params
        op = LinearOperator((n, n), matvec=matvec, dtype=np.float64)
        apply = self.preconditioner(P) if preconditioner is None else preconditioner
        pre = LinearOperator((n, n), matvec=apply, dtype=np.float64)
        count = [0]

        def callback(_: np.ndarray) -> None:
            count[0] += 1

        maxiter = 10 * n if max_iter is None else max_iter
        v, info = cg(op, b, rtol=tol, atol=0.0, maxiter=maxiter, M=pre, callback=callback)
        res = np.linalg.norm(matvec(v) - b) / max(np.linalg.norm(b), np.finfo(float).tiny)
        if info > 0:
            warnings.warn(
                f"conjugate gradients stopped after {count[0]} iterations at relative "
                f"residual {res:.2e} (tol {tol:.0e})",
                RuntimeWarning,
                stacklevel=2,
            )
        return v.reshape(shape), SolveInfo("cg", count[0], float(res))


class BlockJacobi:
    """Block-Jacobi preconditioner: the exact inverse of each logit's diagonal block.

    Block ``a`` of the Hessian is ``Xa^T diag(w p_a (1 - p_a)) Xa + l2`` (plus ``1 / k``
    on the intercept for the null-direction fix). Unlike the diagonal (Jacobi), it
    captures the correlations between features, which dominate the conditioning of
    image pixels: on standardized MNIST (14,300 rows, 7,850 parameters) CG needs about
    2.4 times fewer iterations (BENCHMARKS.md). The cross-class coupling ``-p_a p_b`` is
    left out. Building costs ``k`` Gram matrices, so it pays only when reused.

    Parameters
    ----------
    objective : LogisticObjective
    P : ndarray of shape (n, k)
        Probabilities at which the blocks are taken.
    """

    def __init__(self, objective: LogisticObjective, P: np.ndarray) -> None:
        k, d1 = objective.k, objective.d1
        Xa = objective.Xa
        self.shape = (k, d1)
        #: Bookkeeping for callers that decide when it has gone stale: the normalized
        #: gradient and number of rows it was built at, and whether it is a rebuild.
        self.gradient = np.inf
        self.n_rows = Xa.shape[0]
        self.refreshed = False
        self.inverse = np.empty((k, d1, d1))
        for a in range(k):
            c = objective.w * P[:, a] * (1.0 - P[:, a])
            block = gram(Xa, c)
            block[np.diag_indices(d1)] += objective.l2 * objective.mask[a]
            if objective.null is not None:
                block[-1, -1] += objective.null[d1 - 1] ** 2
            try:
                factor = scipy.linalg.cho_factor(block, lower=True)
                self.inverse[a] = scipy.linalg.cho_solve(factor, np.eye(d1))
            except np.linalg.LinAlgError:
                # A singular block (l2 = 0 and a constant feature): fall back to Jacobi
                # on it, which the diagonal safeguard keeps positive.
                diag = np.diag(block).copy()
                self.inverse[a] = np.diag(1.0 / np.where(diag > 0, diag, 1.0))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Apply the inverse blocks to a flattened parameter vector."""
        X = x.reshape(self.shape)
        return np.matmul(self.inverse, X[:, :, None])[:, :, 0].ravel()


def batched_cg(
    matvec: Callable[[np.ndarray], np.ndarray],
    B: np.ndarray,
    precondition: Callable[[np.ndarray], np.ndarray],
    *,
    tol: float,
    max_iter: int,
    X0: np.ndarray | None = None,
) -> tuple[np.ndarray, int]:
    """Solve ``A x_j = b_j`` for every row ``b_j`` of ``B`` by preconditioned conjugate
    gradients, all rows advancing together.

    Each row runs its own textbook PCG (its own step lengths); they only share the
    products with ``A``, so that one call of ``matvec`` multiplies the data once for many
    right-hand sides (BLAS-3 instead of BLAS-2). A row stops once its residual is below
    ``tol`` times its right-hand side's norm; the others go on.

    Parameters
    ----------
    matvec : callable
        ``(m, p) -> (m, p)``: ``A`` (symmetric positive definite) applied to every row.
    B : ndarray of shape (m, p)
        Right-hand sides, one per row.
    precondition : callable
        ``(m, p) -> (m, p)``: an SPD approximation of ``A^{-1}`` applied to every row.
    tol : float
        Relative residual at which a row stops.
    max_iter : int
        Iteration cap; rows not converged by then are returned as they are, with a
        ``RuntimeWarning``.
    X0 : ndarray of shape (m, p) or None
        Starting points (warm start); zeros when None.

    Returns
    -------
    X : ndarray of shape (m, p)
    n_iter : int
        Iterations run (by the slowest row).
    """
    B = np.asarray(B, dtype=np.float64)
    if X0 is None:
        X = np.zeros_like(B)
        R = B.copy()
    else:
        X = np.array(X0, dtype=np.float64)
        R = B - matvec(X)
    target = tol * np.linalg.norm(B, axis=1)
    active = np.flatnonzero(np.linalg.norm(R, axis=1) > target)
    Z = precondition(R[active])
    D = np.zeros_like(B)  # search directions
    D[active] = Z
    rz = np.zeros(B.shape[0])
    rz[active] = np.einsum("ij,ij->i", R[active], Z)
    n_iter = 0
    while active.size and n_iter < max_iter:
        n_iter += 1
        Da = D[active]
        AD = matvec(Da)
        alpha = rz[active] / np.einsum("ij,ij->i", Da, AD)
        X[active] += alpha[:, None] * Da
        Ra = R[active] - alpha[:, None] * AD
        R[active] = Ra
        going = np.linalg.norm(Ra, axis=1) > target[active]
        active, Ra, Da = active[going], Ra[going], Da[going]
        if not active.size:
            break
        Z = precondition(Ra)
        rz_new = np.einsum("ij,ij->i", Ra, Z)
        D[active] = Z + (rz_new / rz[active])[:, None] * Da
        rz[active] = rz_new
    if active.size:
        worst = float(np.max(np.linalg.norm(R[active], axis=1) / target[active])) * tol
        warnings.warn(
            f"conjugate gradients stopped after {n_iter} iterations with {active.size} "
            f"right-hand sides at relative residual up to {worst:.2e} (tol {tol:.0e})",
            RuntimeWarning,
            stacklevel=2,
        )
    return X, n_iter
