"""The exact validation loss one Newton step after adding pairs (salutary-newton's
look-ahead).

Used by :class:`salutary.strategies.NewtonGreedySalutary`. For candidate (sample, label)
pairs, :class:`OneStepLosses` predicts, by one Newton step from the current parameters,
the model after adding each pair to the training set together with the pairs already
accepted, and evaluates the validation loss exactly at that model (not its
linearization). The Hessian systems it solves with come from
:mod:`salutary.influence._newton`. Only the losses that can decide a step's picks are
computed to the end: a pair is dropped once a lower bound of its loss (exact on the rows
computed so far, the tangent on the others: the cross-entropy is convex) exceeds the loss
of the step's last pick.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import log_expit

from salutary._linear import LogisticObjective, linear_scores, probabilities
from salutary._sparse import densify
from salutary.influence._factors import model_parameters
from salutary.influence._newton import GrowingHessian, MatrixFreeHessian, training_system

__all__ = ["OneStepLosses", "cross_entropy_sum", "step_picks"]

#: Logits of the validation set held at once while scoring pairs (64 MB in float64; as
#: much again for the products they are copied from).
_LOGIT_BUDGET = 8_000_000

#: Blocks of validation rows (ends, as shares of the rows, largest curvature first) in
#: which :meth:`OneStepLosses.evaluate` computes a pair's loss, dropping the pair as
#: soon as its lower bound exceeds the step's cut: most pairs leave after a few rows.
_ROW_BLOCKS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0)

#: After which of those blocks the pairs of lowest bound are evaluated to the end, to
#: lower the cut: after the first and the third (measured: finishing after every block
#: cost more than it pruned, on twitter_sentiment, mnist_cnn and adult).
_FINISH = (0, 2)

#: Below this many validation logits (rows times k) every live pair is evaluated in one
#: pass: the bounds and blocks cost more than they save (pima, 231 rows, one logit).
_PRUNE_MIN_LOGITS = 1000

#: Multiply-adds per class from which :meth:`OneStepLosses._exact` computes the logits of
#: all classes in one product (100^3: OpenBLAS's small-matrix kernels stop there).
_JOINT_MIN = 1_000_000

#: Largest ``H^{-1} (e_c (x) x)`` table for all candidates and classes solved for a round
#: (``k d1 * n_cand * k`` entries: 320 MB in float64; kept per pair, so as many times that
#: as labels per candidate); beyond it each greedy step solves against the pairs'
#: gradients instead.
_CANDIDATE_SOLVES_BUDGET = 40_000_000


def cross_entropy_sum(Z: np.ndarray, y: np.ndarray, expected_error: bool = False) -> np.ndarray:
    """Summed cross-entropy per model: ``Z`` is (k, n, models) logits, class-major;
    ``y`` (n,) class indices (in {0, 1} for a single sigmoid logit). ``Z`` is overwritten.

    With ``expected_error`` the sum of ``1 - p_y`` (the expected 0-1 error) instead.
    """
    if Z.shape[0] == 1:
        z = Z[0]
        z[y == 1] *= -1.0  # CE = -log sigmoid(z) for y = 1, -log sigmoid(-z) for y = 0
        log_p = log_expit(-z)  # log-probability of the true class
        if expected_error:
            return np.sum(-np.expm1(log_p), axis=0)
        return -np.sum(log_p, axis=0)
    true = Z[y, np.arange(Z.shape[1]), :]
    if not expected_error:
        true = true.sum(axis=0)
    m = Z.max(axis=0)
    Z -= m
    np.exp(Z, out=Z)
    lse = Z.sum(axis=0)
    np.log(lse, out=lse)
    lse += m
    if expected_error:
        lse -= true  # per-row cross-entropy
        return np.sum(-np.expm1(-lse), axis=0)
    return lse.sum(axis=0) - true


def step_picks(
    losses: np.ndarray, pair_row: np.ndarray, count: int, bar: float = np.inf
) -> list[int]:
    """The pairs one greedy step adds: in order of increasing loss (ties by index), the
    first ``count`` of distinct samples (``pair_row``), stopping at the first loss not
    below ``bar`` (so never an ``inf`` or NaN loss)."""
    picked: list[int] = []
    for j in np.argsort(losses, kind="stable"):
        if len(picked) == count or not losses[j] < bar:
            break
        if all(pair_row[j] != pair_row[i] for i in picked):
            picked.append(int(j))
    return picked


class OneStepLosses:
    """Validation loss one Newton step after adding each of a set of candidate pairs.

    The model starts at the fitted parameters of ``model``. :meth:`evaluate` predicts,
    for every candidate pair still alive, the model after one Newton step with the
    accepted pairs and that pair added to the training set (the Hessian of the training
    set and the accepted pairs, taken at the fitted model; the candidate's own curvature
    is left out, as in the influence function), and the validation objective there.
    :meth:`accept` moves the model to the joint step of some pairs, which then belong
    to the training set for later steps.

    Parameters
    ----------
    model : fitted L2 logistic model
    X_train, y_train : ndarray
        The training set the model was fit on.
    sample_weight : ndarray or None
        Its training weights.
    X_val, y_val : ndarray
        The validation set.
    X_cand : ndarray of shape (n_cand, n_features)
        Candidate samples.
    pair_row, pair_label : ndarray of int, shape (n_pairs,)
        Each pair's candidate (row of ``X_cand``) and label (index into the classes).
    expected_error : bool, default=False
        Evaluate the expected 0-1 error ``sum(1 - p_true)`` instead of the summed
        cross-entropy.
    system : GrowingHessian, MatrixFreeHessian or None, default=None
        The training Hessian at the model, already built
        (:func:`salutary.influence.model_system`, or :func:`matrix_free_system` for
        models too large for it), with no pair added; built here (dense) when None.

    Attributes
    ----------
    theta : ndarray
        The current parameters.
    loss : float
        The validation objective at ``theta``.
    n_exact : list of int
        Pairs whose loss each :meth:`evaluate` computed to the end (the others were
        dropped by their lower bound).
    """

    def __init__(
        self,
        model: object,
        X_train: np.ndarray,
        y_train: np.ndarray,
        sample_weight: np.ndarray | None,
        X_val: np.ndarray,
        y_val: np.ndarray,
        X_cand: np.ndarray,
        pair_row: np.ndarray,
        pair_label: np.ndarray,
        *,
        expected_error: bool = False,
        system: GrowingHessian | MatrixFreeHessian | None = None,
    ) -> None:
        classes, theta, l2, fit_intercept = model_parameters(model)
        K = len(classes)
        self.k = k = 1 if K == 2 else K
        self.d1 = theta.shape[1]
        self.fit_intercept = fit_intercept
        self.expected_error = expected_error
        self.pair_row = pair_row
        n_cand = X_cand.shape[0]
        y_index = np.searchsorted(classes, np.asarray(y_train))
        w_train = np.ones(len(y_index)) if sample_weight is None else np.asarray(sample_weight)
        # Dense: the validation logits of every pair are products with it. Its rows are
        # ordered by their curvature at the fitted model, largest first, so that the
        # first blocks of rows hold most of what the tangent bound of a loss misses
        # (evaluate); the losses are sums over rows, whatever their order.
        y_val_index = np.searchsorted(classes, np.asarray(y_val))
        Xv = densify(X_val)
        Pv = probabilities(linear_scores(Xv, theta, fit_intercept))
        curvature = np.sum(Pv * (1.0 - Pv), axis=1) * (np.einsum("ij,ij->i", Xv, Xv) + 1.0)
        order = np.argsort(-curvature, kind="stable")
        self.y_val_index = y_val_index[order]
        self.val = LogisticObjective(Xv[order], self.y_val_index, K, 0.0, fit_intercept)
        n_val = len(order)
        self.blocks = np.unique(np.ceil(n_val * np.array(_ROW_BLOCKS)).astype(np.intp))
        self.Xc = X_cand
        self.Xc_a = np.hstack([X_cand, np.ones((n_cand, 1))]) if fit_intercept else X_cand
        self.Yc = np.zeros((len(pair_row), k))
        if k == 1:
            self.Yc[:, 0] = pair_label == 1
        else:
            self.Yc[np.arange(len(pair_row)), pair_label] = 1.0
        self.theta = theta
        self.loss = self.objective(theta)
        self.accepted: list[int] = []
        self.n_exact: list[int] = []
        self._logits = np.empty(0)  # working logits of _exact
        # The training set's Hessian is built once, at the fitted model; the accepted
        # pairs' own curvature (at the same point) is added as they join. Building it
        # at every step would cost n d^2 k^2 each time for little change.
        self.train = LogisticObjective(X_train, y_index, K, l2, fit_intercept, w_train)
        self.system: GrowingHessian | MatrixFreeHessian = (
            training_system(self.train, theta) if system is None else system
        )
        # Matrix-free, without the table below: every greedy step solves for each live
        # pair, warm-started from that pair's solve at the step before (row 0: the
        # training gradient's). The accepted pairs' curvature is in the products.
        self.previous: np.ndarray | None = None
        self.Pc0 = probabilities(linear_scores(X_cand, theta, fit_intercept))
        # With one factorization per round, a pair's step needs H^{-1} only against
        # e_c (x) x for its candidate's k classes: solved once here for every candidate
        # (k RHS each) instead of once per pair at every greedy step.
        self.S0: np.ndarray | None = None
        p = k * self.d1
        if self.system.low_rank and p * n_cand * k <= _CANDIDATE_SOLVES_BUDGET:
            E = np.zeros((k, self.d1, n_cand, k))
            for c in range(k):
                E[c, :, :, c] = self.Xc_a.T
            S0 = self.system.solve0(E.reshape(p, n_cand * k)).reshape(p, n_cand, k)
            # Per pair (its candidate's solves), gathered once: the same at every step.
            # Fancy indexing sets the memory layout that evaluate's sums over classes
            # read, and their rounding depends on it.
            self.S0 = S0[:, pair_row, :]

    def objective(self, theta: np.ndarray) -> float:
        """The validation objective at ``theta``."""
        if not self.expected_error:
            return self.val.loss(theta)
        Zt = self.val.logits(theta).T[:, :, None]  # class-major (k, n_val, 1)
        return float(cross_entropy_sum(np.ascontiguousarray(Zt), self.y_val_index, True)[0])

    def evaluate(
        self, alive: np.ndarray, count: int | None = None, abstain: bool = False
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One-Newton-step losses of the pairs where ``alive`` (``inf`` elsewhere).

        With ``count``, only the losses that decide :func:`step_picks` ``(losses,
        pair_row, count, bar)`` are computed exactly (``bar``: :meth:`base_loss` of the
        base step when ``abstain``, else ``inf``); the others get ``inf``, and the picks
        are the same as with every loss computed (except among losses tied to rounding:
        the losses are summed block by block). The validation cross-entropy is a sum
        of terms convex in the parameters, so each term's tangent at :attr:`theta`
        bounds it from below: for a pair's step ``s``, ``L(theta + s)`` is at least the
        exact loss on the rows computed so far plus the tangent ``l_i + g_i . s`` of
        every other row. The rows come in blocks, largest curvature first
        (:data:`_ROW_BLOCKS`); every live pair gets the first block, and after it (and
        after the third, :data:`_FINISH`) the pairs of lowest bound are computed to the
        end. The loss of the ``count``-th pick among the pairs computed so far (or
        ``bar``) is a cut: a pair whose bound exceeds it is dropped, as it cannot come
        before the picks; the others get the next block. The expected 0-1 error is not convex: with
        ``expected_error`` every live pair is evaluated, as with fewer than
        :data:`_PRUNE_MIN_LOGITS` validation logits.

        Parameters
        ----------
        alive : ndarray of bool, shape (n_pairs,)
        count : int or None, default=None
            Pairs the step picks; None: every live loss exactly.
        abstain : bool, default=False
            Whether the step abstains (the bar above): pruning needs it to know which
            losses can be picked.

        Returns
        -------
        losses : ndarray of shape (n_pairs,)
        steps : ndarray of shape (n_pairs, k * d1)
            Each pair's Newton step from :attr:`theta` (with the accepted pairs).
        base : ndarray of shape (k * d1,)
            The step with no pair added.
        """
        k, d1, theta, fit_intercept = self.k, self.d1, self.theta, self.fit_intercept
        pair_row, Xc, Xc_a = self.pair_row, self.Xc, self.Xc_a
        rows = np.asarray(self.accepted, dtype=np.intp)
        sel_rows = pair_row[rows] if len(rows) else np.zeros(0, np.intp)
        # Gradient of the training set plus the accepted pairs at the current model.
        _, G, _ = self.train.loss_grad(theta)
        if len(rows):
            Rs = probabilities(linear_scores(Xc[sel_rows], theta, fit_intercept)) - self.Yc[rows]
            G = G + Rs.T @ Xc_a[sel_rows]
        # Gradient of each candidate pair's cross-entropy at theta: (p - y) (x) x_a.
        Pc = probabilities(linear_scores(Xc, theta, fit_intercept))[pair_row]
        R = Pc - self.Yc  # (pairs, k)
        if self.S0 is not None:
            # H^{-1} ((p - y) (x) x_a) = sum_c (p - y)_c H^{-1} (e_c (x) x_a), then the
            # accepted pairs' curvature by Woodbury.
            correct = self.system.woodbury()
            g0 = self.system.solve0(G.ravel())
            X0 = np.einsum("pjc,jc->pj", self.S0, R) + g0[:, None]
            steps = -correct(X0).T  # (pairs, k d1)
            base = -correct(g0)  # the step with no pair added
        elif isinstance(self.system, MatrixFreeHessian):
            steps, base = self._matrix_free_steps(G, R, alive)
        else:
            solve = self.system.solver()
            Gp = (R[:, :, None] * Xc_a[pair_row][:, None, :]).reshape(len(pair_row), -1)
            steps = -solve((Gp + G.ravel()).T).T  # (pairs, k d1)
            base = -solve(G.ravel())  # the step with no pair added
        steps_c = steps.reshape(len(pair_row), k, d1)
        val = self.val
        Zv = (val.Xa @ theta.T).T  # (k, n_val), class-major
        losses = np.full(len(pair_row), np.inf)
        live = np.flatnonzero(alive)
        if count is None or self.expected_error or Zv.size < _PRUNE_MIN_LOGITS:
            losses[live] = self._exact(live, Zv, steps_c)
            self.n_exact.append(len(live))
            return losses, steps, base
        # Each block's loss and gradient at theta: its rows' tangents.
        P = probabilities(Zv.T)
        R = P - val.Y
        ends = self.blocks
        starts = np.concatenate([[0], ends[:-1]])
        f_block = np.array([
            self._block_loss(Zv[:, a:b, None].copy(), slice(a, b))[0]
            for a, b in zip(starts, ends, strict=True)
        ])  # fmt: skip
        G_block = np.stack([R[a:b].T @ val.Xa[a:b] for a, b in zip(starts, ends, strict=True)])
        tangent = steps[live] @ G_block.reshape(len(ends), -1).T  # (live, blocks)
        bound = f_block.sum() + tangent.sum(axis=1)
        order = np.argsort(bound, kind="stable")
        todo, bound = live[order], bound[order]
        tangent = tangent[order]
        margin = 1e-9 * (abs(f_block.sum()) + 1.0)  # rounding is far below it
        limit = self.base_loss(base) if abstain else np.inf
        cut = limit + margin  # the picks depend only on losses up to it
        exact = np.zeros(len(todo))
        rest = np.arange(len(todo))  # positions in todo still to evaluate
        n_blocks = len(ends)
        for b in range(n_blocks):
            block = self._exact(todo[rest], Zv, steps_c, slice(starts[b], ends[b]))
            exact[rest] += block
            bound[rest] += block - f_block[b] - tangent[rest, b]
            if b == n_blocks - 1:
                break
            if b in _FINISH:
                # Finish the pairs of lowest bound: their losses set (or lower) the cut.
                # At the first block, as many as it takes to hold the step's picks.
                rest = rest[np.argsort(bound[rest], kind="stable")]
                want = count
                while True:
                    done, rest = rest[:want], rest[want:]
                    done = done[bound[done] <= cut]
                    for later in range(b + 1, n_blocks):
                        part = slice(starts[later], ends[later])
                        exact[done] += self._exact(todo[done], Zv, steps_c, part)
                    losses[todo[done]] = exact[done]
                    picked = step_picks(losses, pair_row, count, limit)
                    if len(picked) == count:
                        cut = min(cut, losses[picked[-1]] + margin)
                    if b > 0 or len(picked) == count or cut < np.inf or len(rest) == 0:
                        break
                    want *= 2
            rest = rest[bound[rest] <= cut]
            if len(rest) == 0:
                break
        losses[todo[rest]] = exact[rest]  # those that went through every block
        self.n_exact.append(int(np.sum(np.isfinite(losses))))
        return losses, steps, base

    def _block_loss(self, Z: np.ndarray, rows: slice) -> np.ndarray:
        """Validation objective on ``rows`` for every model: ``Z`` (k, rows, models)
        logits, overwritten."""
        return cross_entropy_sum(Z, self.y_val_index[rows], self.expected_error)

    def _exact(
        self, pairs: np.ndarray, Zv: np.ndarray, steps_c: np.ndarray, rows: slice | None = None
    ) -> np.ndarray:
        """The validation objective after each of ``pairs``' steps, on ``rows`` (all rows
        by default).

        Class-major logits (k, rows, pairs): the reductions over classes then run over
        k contiguous slices instead of k-long rows (NumPy's per-row cost). They come
        from one product of the rows with every pair's steps for all classes, which
        reads the rows once instead of once per class (2 to 7 times faster on raw MNIST's
        validation blocks; each logit is the same dot product), then are copied
        class-major. Small products (below :data:`_JOINT_MIN` multiply-adds per class)
        and a single pair keep one product per class: BLAS takes other kernels for them
        (matrix-vector; OpenBLAS's small-matrix kernels), whose rounding differs, and
        they would gain little.
        """
        rows = slice(None) if rows is None else rows
        k, d1 = self.k, self.d1
        Xa = self.val.Xa[rows]
        n_rows = Xa.shape[0]
        out = np.empty(len(pairs))
        chunk = max(1, _LOGIT_BUDGET // max(n_rows * k, 1))
        for start in range(0, len(pairs), chunk):
            some = pairs[start : start + chunk]
            size = k * n_rows * len(some)
            if self._logits.size < 2 * size:
                # One buffer for every step's logits and products, grown as needed: a
                # fresh array of tens of MB per block costs its page faults each time.
                grown = min(k * n_rows * chunk, max(size, self._logits.size))
                self._logits = np.empty(2 * grown)
            Zp = self._logits[:size].reshape(k, n_rows, len(some))
            if len(some) > 1 and n_rows * len(some) * d1 > _JOINT_MIN:
                products = self._logits[size : 2 * size].reshape(n_rows, len(some) * k)
                np.matmul(Xa, steps_c[some].reshape(-1, d1).T, out=products)
                Zp[...] = products.reshape(n_rows, len(some), k).transpose(2, 0, 1)
            else:
                for c in range(k):
                    np.matmul(Xa, steps_c[some, c, :].T, out=Zp[c])
            Zp += Zv[:, rows, None]
            out[start : start + len(some)] = self._block_loss(Zp, rows)
        return out

    def _matrix_free_steps(
        self, G: np.ndarray, R: np.ndarray, alive: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Newton steps of the live pairs and the base step, by conjugate gradients.

        A pair's step is the base step ``-H^{-1} G`` minus ``H^{-1}`` of its own gradient
        ``r (x) x_a`` (linearity): solving the two apart gives each its own relative
        precision. Steps of pairs not alive are the base step (never read).
        """
        assert isinstance(self.system, MatrixFreeHessian)
        live = np.flatnonzero(alive)
        rows = self.pair_row[live]
        B = np.empty((len(live) + 1, self.k * self.d1))
        B[0] = G.ravel()
        B[1:] = (R[live, :, None] * self.Xc_a[rows][:, None, :]).reshape(len(live), -1)
        first = self.previous is None
        if self.previous is None:
            self.previous = np.zeros((len(self.pair_row) + 1, B.shape[1]))
        at = np.concatenate([[0], live + 1])
        # The previous step's solves start the next ones: one more pair's curvature and
        # a slightly moved model change them little.
        X = self.system.solve(B, X0=None if first else self.previous[at])
        self.previous[at] = X
        base = -X[0]
        steps = np.broadcast_to(base, (len(self.pair_row), base.size)).copy()
        steps[live] -= X[1:]
        return steps, base

    def base_loss(self, base: np.ndarray) -> float:
        """The validation objective after the step with no pair added (``base``)."""
        return self.objective(self.theta + base.reshape(self.k, self.d1))

    def accept(
        self, picked: Sequence[int], losses: np.ndarray, steps: np.ndarray, base: np.ndarray
    ) -> None:
        """Move to the joint step of the ``picked`` pairs and add them to the training set.

        Steps are linear in the added gradients: the joint Newton step is the base step
        plus each pair's own contribution.
        """
        joint = base + np.sum(steps[list(picked)] - base, axis=0)
        self.theta = self.theta + joint.reshape(self.k, self.d1)
        self.loss = self.objective(self.theta) if len(picked) > 1 else losses[picked[0]]
        for j in picked:
            self.accepted.append(j)
            row = self.pair_row[j]
            solved = None if self.S0 is None else self.S0[:, j, :]
            self.system.add(self.Pc0[row], self.Xc_a[row], solved)
