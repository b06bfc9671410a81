"""Exact solves with the training Hessian through its kernel, for few training rows.

The training part of the Hessian of L2 logistic regression, ``sum_i w_i C_i (x) xa_i
xa_i^T`` with ``C_i = diag(p_i) - p_i p_i^T``, has rank at most ``n k`` (``n`` rows,
``k`` logits). When that is well below the number of parameters ``k d1`` (raw pixels
of a few hundred labeled images), :class:`KernelHessian` solves ``H^{-1} B`` without
forming ``H``: the weights' block is the penalty plus a product of rank ``n k``, whose
inverse follows from the Woodbury identity with an ``(n k) x (n k)`` matrix built from
the Gram matrix of the training features, and the ``k`` intercepts are eliminated by
a ``k x k`` Schur complement. One Cholesky factorization of ``(n k)^2`` entries per
round replaces that of ``(k d1)^2``.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from salutary._linear import LogisticObjective, probabilities
from salutary._sparse import is_sparse
from salutary.influence._newton import (
    GrowingHessian,
    curvature_factors,
    factorized_once,
    training_objective,
    training_system,
)

__all__ = ["KERNEL_MAX_SHARE", "KernelHessian", "kernel_pays", "model_system"]

#: The kernel path is taken when the training rows times the logits are at most this
#: share of the parameters (``n k <= KERNEL_MAX_SHARE * k d1``). Its factorization costs
#: ``(n k)^3 / 3`` against ``(k d1)^3 / 3``, but each solve about ``2 (n k)^2 + 4 n k d``
#: per right-hand side against ``2 (k d1)^2``: measured (BENCHMARKS.md), the solves break
#: even near three quarters; at one half the whole is about 3 times faster, the solves
#: alone twice, a margin for rounds with many right-hand sides.
KERNEL_MAX_SHARE = 0.5

#: Entries of the largest working array of one group of right-hand sides (64 MB in
#: float64); more columns are solved in several groups.
_SOLVE_BUDGET = 8_000_000


def kernel_pays(train: LogisticObjective) -> bool:
    """Whether the round's Hessian of ``train`` is solved by :class:`KernelHessian`.

    Only where the dense Hessian would be factorized once per round
    (:func:`salutary.influence.factorized_once`), with dense features, a positive
    penalty (the weights' block must be definite without the data), and at most
    :data:`KERNEL_MAX_SHARE` times as many training rows times logits as parameters.
    """
    n = train.Xa.shape[0]
    return (
        factorized_once(train.n_params)
        and not is_sparse(train.Xa)
        and train.l2 > 0
        and n * train.k <= KERNEL_MAX_SHARE * train.n_params
    )


class KernelHessian(GrowingHessian):
    """:class:`GrowingHessian` (factorized once, pairs by Woodbury) without the dense Hessian.

    With the weights ``W`` (``k d`` entries) and the intercepts ``b`` (``k``) apart, the
    training Hessian is ``[[M, E], [E^T, F]]`` where ``M = l2 I + J^T J``, ``J`` the
    ``n k`` rows ``sqrt(w_i) A_i^T (x) x_i^T`` (``C_i = A_i A_i^T``, ``A_i = diag(sqrt
    p_i) - p_i sqrt(p_i)^T``; ``sqrt(p (1 - p))`` for one sigmoid logit), ``E = J^T
    L^T`` and ``F = L L^T`` plus the intercepts' null-direction fix, ``L`` the ``k x n
    k`` matrix of the ``sqrt(w_i) A_i``. Then ``M^{-1} = (I - J^T (l2 I + J J^T)^{-1}
    J) / l2``, where ``J J^T`` is the Gram matrix of the features times ``A_i^T A_j``
    block by block, factorized once; the intercepts follow from the Schur complement
    ``S = F - E^T M^{-1} E = l2 L (l2 I + J J^T)^{-1} L^T`` plus the fix (``k x k``).
    Exact up to rounding: the same systems as the dense path.

    Parameters
    ----------
    train : LogisticObjective
        The training objective, with dense features and ``l2 > 0`` (its labels do not
        matter).
    theta : ndarray of shape (k, d1)
        The parameters at which the Hessian is taken.

    Raises
    ------
    numpy.linalg.LinAlgError
        When the kernel matrix or the Schur complement is not positive definite to
        working precision.
    """

    def __init__(self, train: LogisticObjective, theta: np.ndarray) -> None:
        # GrowingHessian.__init__ would factorize a dense matrix: only its pair lists.
        self.low_rank = True
        self.U: list[np.ndarray] = []
        self.Y: list[np.ndarray] = []
        k, d1, l2 = train.k, train.d1, train.l2
        self.k, self.d1, self.l2 = k, d1, l2
        self.intercept = train.fit_intercept
        self.d = d = d1 - 1 if train.fit_intercept else d1
        # Contiguous weights' features: every solve multiplies by them and their transpose.
        self.X = X = np.ascontiguousarray(np.asarray(train.Xa)[:, :d])
        n = X.shape[0]
        A = curvature_factors(probabilities(train.logits(theta)))
        A *= np.sqrt(train.w)[:, None, None]
        self.A = A  # (n, k, k): sqrt(w_i) A_i
        # J J^T entry ((i, m), (j, l)) = (x_i . x_j) sum_c A_i[c, m] A_j[c, l].
        L = A.transpose(1, 0, 2).reshape(k, n * k)
        K = L.T @ L
        K.reshape(n, k, n, k)[...] *= (X @ X.T)[:, None, :, None]
        K[np.diag_indices_from(K)] += l2
        self.kernel = scipy.linalg.cho_factor(K, lower=True, overwrite_a=True, check_finite=False)
        if self.intercept:
            # E = J^T L^T is the Hessian's weights-intercepts block and L L^T (+ the
            # null fix) its intercepts' block. As J^T (l2 I + J J^T)^{-1} = M^{-1} J^T,
            # M^{-1} E = J^T Gamma and the Schur
            # complement is l2 L Gamma (+ null fix), Gamma = (l2 I + J J^T)^{-1} L^T:
            # definite by construction, without subtracting nearly equal matrices.
            self.L = L
            Gamma = scipy.linalg.cho_solve(self.kernel, L.T, check_finite=False)
            self.ME = self._back(Gamma.reshape(n, k, k)).reshape(k * d, k)
            S = l2 * (L @ Gamma)
            if train.null is not None:
                at = train.null.reshape(k, d1)[:, -1]
                S += np.outer(at, at)
            self.schur = scipy.linalg.cho_factor((S + S.T) / 2.0, lower=True)

    def _back(self, alpha: np.ndarray) -> np.ndarray:
        """``J^T alpha`` for ``alpha`` of shape ``(n, k, r)``: shape ``(k, d, r)``."""
        beta = np.matmul(self.A, alpha)  # (n, k, r)
        return np.matmul(self.X.T, beta.transpose(1, 0, 2))

    def _weights_solve(self, f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``M^{-1} f`` for the weights' block, ``f`` of shape ``(k, d, r)``, and
        ``alpha = (l2 I + J J^T)^{-1} J f`` (shape ``(n k, r)``)."""
        n, k = self.X.shape[0], self.k
        r = f.shape[2]
        XF = np.matmul(self.X, f)  # (k, n, r): x_i . f_c
        T = np.matmul(self.A.transpose(0, 2, 1), XF.transpose(1, 0, 2))  # J f, (n, k, r)
        alpha = scipy.linalg.cho_solve(self.kernel, T.reshape(n * k, r), check_finite=False)
        back = self._back(alpha.reshape(n, k, r))
        back -= f
        back /= -self.l2
        return back, alpha

    def _solve(self, B: np.ndarray) -> np.ndarray:
        """``H^{-1} B`` for ``B`` of shape ``(k d1, r)``."""
        k, d, r = self.k, self.d, B.shape[1]
        B3 = B.reshape(k, self.d1, r)
        if not self.intercept:
            return self._weights_solve(B3)[0].reshape(k * d, r)
        y, alpha = self._weights_solve(B3[:, :d, :])
        # Intercepts from the Schur complement (E^T M^{-1} f = L alpha), then the
        # weights corrected for them.
        v = scipy.linalg.cho_solve(self.schur, B3[:, d, :] - self.L @ alpha)
        y -= (self.ME @ v).reshape(k, d, r)
        out = np.empty((k, self.d1, r))
        out[:, :d, :] = y
        out[:, d, :] = v
        return out.reshape(k * self.d1, r)

    def solve0(self, B: np.ndarray) -> np.ndarray:
        """``H^{-1} B`` with no pair added (``B`` of shape ``(k d1,)`` or ``(k d1, r)``)."""
        B = np.asarray(B, dtype=np.float64)
        rows = B[:, None] if B.ndim == 1 else B
        out = np.empty(rows.shape)
        n_k = self.X.shape[0] * self.k
        step = max(1, _SOLVE_BUDGET // max(rows.shape[0], n_k))
        for start in range(0, rows.shape[1], step):
            cols = slice(start, start + step)
            out[:, cols] = self._solve(rows[:, cols])
        return out[:, 0] if B.ndim == 1 else out


def model_system(
    model: object, X_train: np.ndarray, sample_weight: np.ndarray | None
) -> GrowingHessian:
    """The training Hessian of a fitted model on its training set, ready to grow by
    accepted pairs: :class:`KernelHessian` where :func:`kernel_pays`, otherwise the
    dense :func:`salutary.influence.training_system`.
    """
    train, theta = training_objective(model, X_train, sample_weight)
    if kernel_pays(train):
        try:
            return KernelHessian(train, theta)
        except np.linalg.LinAlgError:
            pass  # singular to working precision: the dense path reports or handles it
    return training_system(train, theta)
