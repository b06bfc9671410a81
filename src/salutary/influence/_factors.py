"""Influence of labeling a pool sample on the validation loss, in closed form.

For a fitted L2 logistic model with parameters ``Theta = [W | b]``, let ``H`` be the
Hessian of the training objective and ``g_V`` the gradient of the summed validation
cross-entropy. Adding ``(x, c)`` with weight ``eps`` changes the validation loss by
``-eps * I(x, c)`` to first order, with::

    I(x, c) = grad l(x, c)^T H^{-1} g_V = p(x)^T s(x) - s_c(x),   s(x) = V [x, 1]

where ``V`` is ``H^{-1} g_V`` reshaped like ``Theta``. ``V`` (the *factors*) is computed
once per round by :class:`InfluenceFactors`; scoring any number of pool samples against
it costs one matrix product, the same as predicting them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.special import expit
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_array, check_is_fitted

from salutary._chunks import CHUNK_SIZE, map_chunks
from salutary._linear import LogisticObjective, SolveInfo, probabilities

__all__ = ["InfluenceFactors", "influence_matrix", "model_parameters"]


def model_parameters(model: Any) -> tuple[np.ndarray, np.ndarray, float, bool]:
    """``(classes, theta, l2, fit_intercept)`` of a fitted L2 logistic model.

    Accepts :class:`salutary.LogisticModel` and scikit-learn's ``LogisticRegression``
    with a pure L2 penalty (its ``C`` is ``1 / l2``).
    """
    check_is_fitted(model)
    fit_intercept = bool(getattr(model, "fit_intercept", True))
    if hasattr(model, "l2"):
        l2 = float(model.l2)
    elif hasattr(model, "C"):
        l1_ratio = getattr(model, "l1_ratio", 0.0)
        penalty = getattr(model, "penalty", "l2")
        if (l1_ratio not in (None, 0, 0.0)) or penalty not in ("l2", "deprecated"):
            raise ValueError("influence needs a pure L2 penalty (l1_ratio=0)")
        l2 = 1.0 / float(model.C)
    else:
        raise TypeError(
            f"{type(model).__name__} is not an L2 logistic model: use salutary.LogisticModel"
        )
    coef = np.asarray(model.coef_, dtype=np.float64)
    if fit_intercept:
        theta = np.hstack([coef, np.asarray(model.intercept_, dtype=np.float64)[:, None]])
    else:
        theta = coef.copy()
    return np.asarray(model.classes_), theta, l2, fit_intercept


def _class_index(classes: np.ndarray, y: np.ndarray, what: str) -> np.ndarray:
    """Positions of the labels ``y`` in the sorted ``classes``; ValueError naming ``what``
    for a label the model was not trained on."""
    y = np.asarray(y)
    idx = np.searchsorted(classes, y)
    idx = np.clip(idx, 0, len(classes) - 1)
    bad = classes[idx] != y
    if np.any(bad):
        unseen = np.unique(y[bad])
        raise ValueError(
            f"{what} contains labels the model was not trained on: "
            f"{', '.join(map(repr, unseen[:5].tolist()))} (model classes: "
            f"{', '.join(map(repr, classes.tolist()))})"
        )
    return idx


class InfluenceFactors(BaseEstimator):
    """Influence factors of one fitted model: computed once, then score any pool.

    Parameters
    ----------
    solver : {"auto", "direct", "cg"}, default="auto"
        ``direct``: Cholesky of the dense Hessian (plus the rank-one fix of the intercept
        null space), ``O((k d)^3)``. ``cg``: preconditioned conjugate gradients on
        matrix-free Hessian-vector products, ``O(n k d)`` per iteration. ``auto`` picks
        the one with the smaller operation count, and ``cg`` beyond 4,000 parameters.
    tol : float, default=1e-10
        Relative residual at which conjugate gradients stop.
    max_iter : int or None, default=None
        Conjugate-gradient iteration cap.
    n_jobs : int or None, default=None
        Threads that score a pool, each on its own chunks with a single-threaded BLAS
        product (as scikit-learn's k-means does). ``None``: as many as BLAS would use
        now (so ``threadpoolctl.threadpool_limits(1)`` makes scoring serial too);
        ``-1``: all CPUs. Results do not depend on it: every chunk is computed alone.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    factors_ : ndarray of shape (k, n_features + 1) or (k, n_features)
        ``H^{-1} g_V`` reshaped like the model parameters (``k = 1`` for binary models).
    theta_ : ndarray
        The model parameters the factors were computed at.
    solve_info_ : SolveInfo
        Solver used, iterations and relative residual.

    Examples
    --------
    >>> factors = InfluenceFactors().fit(model, X_train, X_val, y_val)  # doctest: +SKIP
    >>> influence = factors.score(X_pool)          # (n_pool, n_classes)  # doctest: +SKIP
    >>> labels, gains = factors.best_labels(X_pool)                       # doctest: +SKIP
    """

    def __init__(
        self,
        solver: str = "auto",
        tol: float = 1e-10,
        max_iter: int | None = None,
        n_jobs: int | None = None,
    ):
        self.solver = solver
        self.tol = tol
        self.max_iter = max_iter
        self.n_jobs = n_jobs

    def fit(
        self,
        model: object,
        X_train: np.ndarray,
        X_val: np.ndarray,
        y_val: np.ndarray,
        *,
        y_train: np.ndarray | None = None,
        sample_weight: np.ndarray | None = None,
        X_hessian: Any = None,
        hessian_solve: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> InfluenceFactors:
        """Compute ``V = H^{-1} g_V`` for a fitted model.

        Parameters
        ----------
        model : LogisticModel or sklearn LogisticRegression (L2), fitted on ``X_train``
        X_train : array-like of shape (n_train, n_features)
            The training set; only its features enter the Hessian.
        X_val, y_val : array-like
            Labeled validation set whose summed cross-entropy the influence refers to.
        y_train : ignored
            Accepted for symmetry; the Hessian of a logistic loss does not depend on the
            labels.
        sample_weight : array-like of shape (n_train,), default=None
            Training weights the model was fit with.
        X_hessian : array-like of shape (n_rows, n_features), default=None
            Rows whose curvature at the model's probabilities replaces the training
            set's in the Hessian, ``sum_x (diag p - p p^T) (x) x x^T`` plus the L2 term
            (``sample_weight`` then does not enter it). The authors' code takes the
            unlabeled pool here; ``None`` uses ``X_train``, the textbook influence.
        hessian_solve : callable or None, default=None
            ``b -> H^{-1} b`` for the training Hessian at the model (with the intercepts'
            null-direction fix, as the direct solver), already factorized by the caller:
            used instead of ``solver`` (``salutary-newton`` factorizes it anyway).

        Returns
        -------
        self : InfluenceFactors
        """
        classes, theta, l2, fit_intercept = model_parameters(model)
        X_train = check_array(X_train, accept_sparse="csr", dtype=np.float64)
        X_val = check_array(X_val, accept_sparse="csr", dtype=np.float64)
        d = theta.shape[1] - (1 if fit_intercept else 0)
        parts = [("X_train", X_train), ("X_val", X_val)]
        if X_hessian is not None:
            X_hessian = check_array(X_hessian, accept_sparse="csr", dtype=np.float64)
            parts.append(("X_hessian", X_hessian))
            # The curvature is taken over these rows instead, unweighted.
            X_train, sample_weight = X_hessian, None
        for name, X in parts:
            if X.shape[1] != d:
                raise ValueError(f"{name} has {X.shape[1]} features, the model {d}")
        y_val_index = _class_index(classes, np.asarray(y_val), "y_val")
        n_classes = len(classes)
        train = LogisticObjective(
            X_train,
            np.zeros(X_train.shape[0], np.intp),
            n_classes,
            l2,
            fit_intercept,
            sample_weight,
        )
        val = LogisticObjective(X_val, y_val_index, n_classes, 0.0, fit_intercept)
        _, g_val, _ = val.loss_grad(theta)
        P_train = probabilities(train.logits(theta))
        # A preconditioner the model built while fitting (same parameter shape) is
        # reused: any SPD preconditioner leaves the solution unchanged.
        pre = getattr(model, "_preconditioner", None)
        if pre is not None and pre.shape != (train.k, train.d1):
            pre = None
        if hessian_solve is not None and X_hessian is None:
            b = g_val.ravel()
            v = np.asarray(hessian_solve(b), dtype=np.float64)
            factors = v.reshape(train.k, train.d1)
            # The residual by one matrix-free product: the dense Hessian may be gone
            # (factorized in place).
            Hv = train.hvp(P_train, factors).ravel()
            if train.null is not None:
                Hv += train.null * (train.null @ v)
            res = np.linalg.norm(Hv - b) / max(np.linalg.norm(b), np.finfo(float).tiny)
            info = SolveInfo("direct", 1, float(res))
        else:
            factors, info = train.solve(
                P_train,
                g_val,
                solver=self.solver,
                tol=self.tol,
                max_iter=self.max_iter,
                preconditioner=pre,
            )
        self.__dict__.pop("_weights_cache", None)
        self.classes_ = classes
        self.theta_ = theta
        self.fit_intercept_ = fit_intercept
        self.factors_ = factors
        self.solve_info_: SolveInfo = info
        self.validation_gradient_ = g_val
        return self

    def _map_chunks(
        self,
        X: np.ndarray,
        chunk_size: int,
        work: Callable[[int, np.ndarray, np.ndarray], None],
    ) -> None:
        """``work(start, X[start:start + chunk_size], buffer)`` for every chunk, each
        thread with a scratch buffer of its own (:func:`salutary._chunks.map_chunks`)."""
        size = max(int(chunk_size), 1)
        map_chunks(X, size, work, lambda: self._buffer(size, X.dtype), n_jobs=self.n_jobs)

    def _weights(self, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray | None]:
        """``[W; V]^T`` (d x 2k) and the stacked intercepts (2k x 1), cast once per dtype."""
        cache = self.__dict__.setdefault("_weights_cache", {})
        key = np.dtype(dtype).str
        if key not in cache:
            both = np.vstack([self.theta_, self.factors_])
            W, b = (both[:, :-1], both[:, -1]) if self.fit_intercept_ else (both, None)
            cache[key] = (
                np.ascontiguousarray(W.T, dtype=dtype),
                None if b is None else b.astype(dtype)[:, None],
            )
        return cache[key]

    def _logits_and_s(self, X: np.ndarray, buf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Class-major logits ``Z`` and ``S = V [x, 1]``, each ``(k, m)``, for a chunk.

        One product with ``[W; V]`` reads the chunk once. BLAS is fastest with the pool
        as the left operand, so the ``(m, 2k)`` result is then transposed into ``buf``:
        every later step runs over ``k`` contiguous rows of length ``m`` rather than
        ``m`` rows of length ``k``, where NumPy's per-row overhead would cost as much as
        the product itself.
        """
        Wt, b = self._weights(X.dtype)
        out = buf[:, : X.shape[0]]
        out[...] = (X @ Wt).T
        if b is not None:
            out += b
        k = self.theta_.shape[0]
        return out[:k], out[k:]

    def _buffer(self, chunk_size: int, dtype: np.dtype) -> np.ndarray:
        return np.empty((2 * self.theta_.shape[0], chunk_size), dtype=dtype)

    def _influence_chunk(self, X: np.ndarray, buf: np.ndarray) -> np.ndarray:
        """Influence of a chunk, class-major ``(n_classes, m)``."""
        Z, S = self._logits_and_s(X, buf)
        if S.shape[0] == 1:
            # Sigmoid model: the class-0 logit is fixed at 0, so s = [0, s_1] and
            # p^T s - s_c gives sigma * s_1 for class 0 and (sigma - 1) * s_1 for class 1.
            sig = expit(Z[0])
            s1 = S[0]
            return np.stack([sig * s1, (sig - 1.0) * s1])
        return self._ps(Z, S)[None, :] - S

    @staticmethod
    def _ps(Z: np.ndarray, S: np.ndarray) -> np.ndarray:
        """``p^T s`` per column, with ``p = softmax(Z)`` over rows; overwrites ``Z``."""
        Z -= Z.max(axis=0)
        np.exp(Z, out=Z)
        return np.einsum("ij,ij->j", Z, S) / Z.sum(axis=0)

    def _best_chunk(self, X: np.ndarray, buf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        Z, S = self._logits_and_s(X, buf)
        if S.shape[0] == 1:
            sig = expit(Z[0])
            s1 = S[0]
            label = (s1 < 0).astype(np.intp)  # argmin of s = [0, s_1]
            return label, np.where(s1 < 0, (sig - 1.0) * s1, sig * s1)
        s_min = S.min(axis=0)
        # argmin over rows, first minimum as np.argmin gives, without argmin(axis=0)'s
        # strided pass: k contiguous comparisons, the last one written wins.
        label = np.zeros(S.shape[1], dtype=np.intp)
        for c in range(S.shape[0] - 1, 0, -1):
            label[S[c] == s_min] = c
        label[S[0] == s_min] = 0
        return label, self._ps(Z, S) - s_min

    def score(self, X_pool: Any, *, chunk_size: int = CHUNK_SIZE) -> np.ndarray:
        """Influence matrix of shape ``(n_pool, n_classes)``, columns in ``classes_`` order.

        Entry ``[j, c]`` is the first-order predicted decrease of the summed validation
        cross-entropy when ``(X_pool[j], classes_[c])`` is added with weight 1.

        Parameters
        ----------
        X_pool : array or sparse matrix of shape (n_pool, n_features)
            Any number of rows; call it on chunks of a larger pool as they arrive.
        chunk_size : int, default=4096
            Rows scored per matrix product (bounds the scratch memory).

        Returns
        -------
        ndarray of shape (n_pool, n_classes)
        """
        check_is_fitted(self, "factors_")
        X_pool = _check_pool(X_pool)
        out = np.empty((X_pool.shape[0], len(self.classes_)), dtype=X_pool.dtype)

        def work(start: int, chunk: np.ndarray, buf: np.ndarray) -> None:
            out[start : start + chunk.shape[0]] = self._influence_chunk(chunk, buf).T

        self._map_chunks(X_pool, chunk_size, work)
        _check_finite(out)
        return out

    def best_labels(
        self, X_pool: Any, *, chunk_size: int = CHUNK_SIZE
    ) -> tuple[np.ndarray, np.ndarray]:
        """Salutary label (class index into ``classes_``) and its influence, per sample.

        The label maximizing ``I(x, c) = p^T s - s_c`` is ``argmin_c s_c`` and does not
        depend on ``p``; its score is never negative.

        Parameters
        ----------
        X_pool : array or sparse matrix of shape (n_pool, n_features)
        chunk_size : int, default=4096
            Rows scored per matrix product.

        Returns
        -------
        labels : ndarray of int, shape (n_pool,)
            Indices into ``classes_``.
        scores : ndarray of shape (n_pool,)
            The influence of each sample with its salutary label.
        """
        check_is_fitted(self, "factors_")
        X_pool = _check_pool(X_pool)
        n = X_pool.shape[0]
        labels = np.empty(n, dtype=np.intp)
        scores = np.empty(n, dtype=X_pool.dtype)

        def work(start: int, chunk: np.ndarray, buf: np.ndarray) -> None:
            stop = start + chunk.shape[0]
            labels[start:stop], scores[start:stop] = self._best_chunk(chunk, buf)

        self._map_chunks(X_pool, chunk_size, work)
        _check_finite(scores)
        return labels, scores


def _check_pool(X_pool: Any) -> Any:
    # Finiteness is checked on the scores instead (N values, not N x D): NaN or
    # infinity anywhere in a row makes its scores non-finite, and a separate pass over
    # the pool would cost a third of the scoring itself.
    return check_array(
        X_pool,
        accept_sparse="csr",
        dtype=(np.float64, np.float32),
        ensure_all_finite=False,
        input_name="X_pool",
    )


def _check_finite(scores: np.ndarray) -> None:
    bad = ~np.isfinite(scores)
    if bad.any():
        row = int(np.flatnonzero(bad.reshape(len(scores), -1).any(axis=1))[0])
        raise ValueError(
            f"X_pool row {row} gives a non-finite influence: it contains NaN or "
            "infinity, or values too large for the model"
        )


def influence_matrix(
    model: object,
    X_train: np.ndarray,
    X_val: np.ndarray,
    y_val: np.ndarray,
    X_pool: np.ndarray,
    *,
    sample_weight: np.ndarray | None = None,
    solver: str = "auto",
    tol: float = 1e-10,
) -> np.ndarray:
    """Predicted decrease of the validation loss for every pool sample and class.

    Parameters
    ----------
    model : LogisticModel or sklearn LogisticRegression (L2), fitted on ``X_train``
    X_train : array-like of shape (n_train, n_features)
        Training set the model was fit on (defines the Hessian).
    X_val, y_val : array-like
        Labeled validation set.
    X_pool : array-like of shape (n_pool, n_features)
        Candidate samples.
    sample_weight : array-like of shape (n_train,), default=None
        Training weights the model was fit with.
    solver : {"auto", "direct", "cg"}, default="auto"
        See :class:`InfluenceFactors`.
    tol : float, default=1e-10
        Conjugate-gradient relative residual.

    Returns
    -------
    ndarray of shape (n_pool, n_classes)
        Entry ``[j, c]`` is the first-order predicted *decrease* of the summed validation
        cross-entropy when ``(X_pool[j], model.classes_[c])`` is added to the training
        set with weight 1. Positive means helpful.
    """
    factors = InfluenceFactors(solver=solver, tol=tol).fit(
        model, X_train, X_val, y_val, sample_weight=sample_weight
    )
    return factors.score(X_pool)
