"""The convex model: L2-regularized logistic regression solved to tight convergence."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from salutary._linear import (
    BlockJacobi,
    LogisticObjective,
    SolveInfo,
    linear_scores,
    probabilities,
)

__all__ = ["LogisticModel"]


class LogisticModel(ClassifierMixin, BaseEstimator):
    """Binary or multinomial logistic regression with an L2 penalty, fit by Newton's method.

    The objective is the *sum* (not the mean) of the weighted cross-entropies plus the
    penalty on the weights; the intercept is not penalized::

        R(W, b) = sum_i w_i * CE(x_i, y_i; W, b) + (l2 / 2) * ||W||^2

    This is scikit-learn's ``LogisticRegression(C=1 / l2)`` objective divided by ``C``, so
    both reach the same optimum. Two classes use one weight vector and a sigmoid (as
    scikit-learn does); three or more use one weight vector per class and a softmax.

    The fit runs Newton's method with a backtracking line search until the largest
    gradient entry is below ``tol`` times the total sample weight: influence functions
    are derived at the exact optimum, so an early stop would bias them.

    Parameters
    ----------
    l2 : float, default=1.0
        Strength of the L2 penalty on the weights (``C = 1 / l2``). Must be > 0 unless
        the data are not separable.
    fit_intercept : bool, default=True
        Whether to fit an (unpenalized) intercept.
    tol : float, default=1e-10
        Convergence threshold on ``max |grad R| / sum(sample_weight)``.
    max_iter : int, default=100
        Maximum number of Newton iterations.
    solver : {"auto", "direct", "cg"}, default="auto"
        How each Newton system is solved: a Cholesky factorization of the dense
        Hessian, or conjugate gradients on Hessian-vector products (large models).
    warm_start : bool, default=False
        Start from the previous solution when refitting with the same classes and
        number of features.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features)
    intercept_ : ndarray of shape (1,) or (n_classes,)
        Zeros when ``fit_intercept=False``. For softmax models the intercepts are
        centred to sum to zero (they are only identified up to a common shift).
    n_features_in_ : int
    n_iter_ : int
        Newton iterations used.
    gradient_norm_ : float
        ``max |grad R| / sum(sample_weight)`` at the solution.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from salutary import LogisticModel
    >>> X, y = load_iris(return_X_y=True)
    >>> model = LogisticModel(l2=1.0).fit(X, y)
    >>> model.predict(X[:3])
    array([0, 0, 0])
    """

    def __init__(
        self,
        l2: float = 1.0,
        *,
        fit_intercept: bool = True,
        tol: float = 1e-10,
        max_iter: int = 100,
        solver: str = "auto",
        warm_start: bool = False,
    ) -> None:
        self.l2 = l2
        self.fit_intercept = fit_intercept
        self.tol = tol
        self.max_iter = max_iter
        self.solver = solver
        self.warm_start = warm_start

    def _objective(
        self, X: np.ndarray, y_index: np.ndarray, sample_weight: np.ndarray | None
    ) -> LogisticObjective:
        return LogisticObjective(
            X, y_index, len(self.classes_), self.l2, self.fit_intercept, sample_weight
        )

    def fit(
        self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> LogisticModel:
        """Fit the model to tight convergence.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            CSR (or convertible) matrices are kept sparse.
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights multiplying each sample's cross-entropy.

        Returns
        -------
        self : LogisticModel
        """
        if self.l2 < 0:
            raise ValueError(f"l2 must be >= 0, got {self.l2}")
        if self.solver not in ("auto", "direct", "cg"):
            raise ValueError(f"solver must be 'auto', 'direct' or 'cg', got {self.solver!r}")
        previous = self._warm_theta() if self.warm_start else None
        X, y = validate_data(self, X, y, accept_sparse="csr", dtype=np.float64, y_numeric=False)
        check_classification_targets(y)
        sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64)
        if np.any(sample_weight < 0):
            raise ValueError("sample_weight must be non-negative")
        classes, y_index = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(
                f"This solver needs samples of at least 2 classes in the data, but the "
                f"data contain only one class: {classes[0]!r}"
            )
        if previous is not None and not (
            np.array_equal(previous[0], classes) and previous[1].shape[1] == self._d1(X)
        ):
            previous = None
        self.classes_ = classes
        obj = self._objective(X, y_index, sample_weight)
        theta = np.zeros((obj.k, obj.d1)) if previous is None else previous[1].copy()
        scale = max(float(sample_weight.sum()), np.finfo(float).tiny)

        # CG preconditioner: Jacobi until a solve proves slow, then block-Jacobi, kept
        # for later Newton steps, for warm-started refits and for the influence factors.
        pre = getattr(self, "_preconditioner", None) if previous is not None else None
        if pre is not None and pre.shape != (obj.k, obj.d1):
            pre = None
        kept = pre

        f, G, P = obj.loss_grad(theta)
        g0 = max(float(np.max(np.abs(G))), np.finfo(float).tiny)
        n_iter = 0
        for n_iter in range(1, self.max_iter + 1):
            if np.max(np.abs(G)) <= self.tol * scale:
                n_iter -= 1
                break
            # Inexact Newton: CG only needs a relative residual that shrinks with the
            # gradient (superlinear convergence); the stopping test stays on the gradient.
            # The second term keeps it superlinear after a warm start, where g0 is
            # already small.
            g = float(np.max(np.abs(G)))
            forcing = min(0.1, np.sqrt(g / g0), np.sqrt(g / scale))
            step, info = obj.solve(P, -G, solver=self.solver, tol=forcing, preconditioner=pre)
            updated = _update_preconditioner(pre, obj, P, info, g / scale, pre is not kept)
            if updated is not pre:
                kept = None
            pre = updated
            slope = float(np.sum(G * step))
            if slope >= 0:  # numerical floor: no descent direction left
                break
            t = 1.0
            for _ in range(60):
                theta_new = theta + t * step
                f_new, G_new, P_new = obj.loss_grad(theta_new)
                if f_new <= f + 1e-4 * t * slope:
                    break
                # Near the optimum the decrease drowns in rounding error of f; there the
                # gradient norm is the honest merit function.
                noise = 64 * np.finfo(float).eps * max(abs(f), 1.0)
                if f_new <= f + noise and np.max(np.abs(G_new)) < np.max(np.abs(G)):
                    break
                t *= 0.5
            else:
                break
            improved = f_new < f or np.max(np.abs(G_new)) < np.max(np.abs(G))
            theta, f, G, P = theta_new, f_new, G_new, P_new
            if not improved:
                break
        self.n_iter_ = n_iter
        self.gradient_norm_ = float(np.max(np.abs(G)) / scale)
        if self.gradient_norm_ > 100 * self.tol:
            warnings.warn(
                f"LogisticModel did not converge: max |gradient| / sum(w) = "
                f"{self.gradient_norm_:.1e} after {n_iter} Newton iterations "
                f"(tol {self.tol:.0e}); increase max_iter or l2",
                ConvergenceWarning,
                stacklevel=2,
            )
        if obj.null is not None:
            theta[:, -1] -= theta[:, -1].mean()
        self._set_theta(theta, X.shape[1])
        self._preconditioner = pre
        return self

    def __getstate__(self) -> dict:
        """Pickle without the cached CG preconditioner (up to 200 MB, rebuilt on demand)."""
        state = super().__getstate__()
        state.pop("_preconditioner", None)
        return state

    def _d1(self, X: np.ndarray) -> int:
        return X.shape[1] + (1 if self.fit_intercept else 0)

    def _warm_theta(self) -> tuple[np.ndarray, np.ndarray] | None:
        if not hasattr(self, "coef_"):
            return None
        return self.classes_, self.theta_

    def _set_theta(self, theta: np.ndarray, n_features: int) -> None:
        if self.fit_intercept:
            self.coef_ = theta[:, :-1].copy()
            self.intercept_ = theta[:, -1].copy()
        else:
            self.coef_ = theta.copy()
            self.intercept_ = np.zeros(theta.shape[0])

    @property
    def theta_(self) -> np.ndarray:
        """Parameters as one ``(k, d + 1)`` matrix ``[W | b]`` (``(k, d)`` without intercept)."""
        check_is_fitted(self)
        if self.fit_intercept:
            return np.hstack([self.coef_, self.intercept_[:, None]])
        return self.coef_.copy()

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Logits: shape (n,) for two classes, (n, n_classes) otherwise."""
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse="csr", dtype=np.float64, reset=False)
        Z = linear_scores(X, self.theta_, self.fit_intercept)
        return Z[:, 0] if Z.shape[1] == 1 else Z

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes), columns in ``classes_`` order."""
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse="csr", dtype=np.float64, reset=False)
        P = probabilities(linear_scores(X, self.theta_, self.fit_intercept))
        if P.shape[1] == 1:
            return np.hstack([1.0 - P, P])
        return P

    def predict_log_proba(self, X: np.ndarray) -> np.ndarray:
        """Logarithm of :meth:`predict_proba`."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Most probable class for each sample."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


def _update_preconditioner(
    pre: BlockJacobi | None,
    obj: LogisticObjective,
    P: np.ndarray,
    info: SolveInfo,
    gradient: float,
    fresh: bool,
) -> BlockJacobi | None:
    """Build or refresh the block-Jacobi preconditioner after a CG solve.

    Built when a Jacobi solve was slow enough that the build pays
    (:meth:`LogisticObjective.block_jacobi_pays`). One built in this fit far from the
    optimum (the normalized gradient has since fallen a thousandfold) is rebuilt once at
    the current probabilities; one kept from an earlier fit is rebuilt when the number
    of rows changed by more than a tenth. ``fresh`` says whether ``pre`` comes from
    this fit.
    """
    if info.solver != "cg":
        return pre
    n = obj.Xa.shape[0]
    if pre is None:
        stale = obj.block_jacobi_pays(info.n_iter)
    elif fresh:
        stale = not pre.refreshed and gradient < 1e-3 * pre.gradient
    else:
        stale = abs(n - pre.n_rows) > 0.1 * pre.n_rows
    if not stale:
        return pre
    new = BlockJacobi(obj, P)
    new.gradient, new.n_rows, new.refreshed = gradient, n, pre is not None and fresh
    return new
