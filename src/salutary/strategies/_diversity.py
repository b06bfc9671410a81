"""Diversity sampling: BADGE and CoreSet (oracle labels).

Both need every pool row at once, as a dense array: a sparse pool is densified, and a
Dask pool is refused.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from salutary._sparse import densify
from salutary._validation import Integral, Interval
from salutary.pool import top_k
from salutary.strategies._base import Selection, Strategy

__all__ = ["BadgeSampling", "CoreSetSampling", "augment"]


def augment(X: np.ndarray) -> np.ndarray:
    return np.hstack([X, np.ones((X.shape[0], 1), dtype=X.dtype)])


class BadgeSampling(Strategy):
    """BADGE (Ash et al., 2020): k-means++ seeding on gradient embeddings (oracle labels).

    The embedding of ``x`` is the gradient of the loss at the model's predicted label,
    ``(p - e_yhat) (x) [x, 1]``, which is large for uncertain samples and points in
    diverse directions for diverse ones. Distances between these Kronecker products are
    computed from the two factors, never materializing the ``K (D + 1)`` embeddings.
    """

    name = "badge"

    def _select(
        self, model, X_train, y_train, pool, budget, *, X_val, y_val, sample_weight, trusted, rng
    ):
        X_pool = pool.to_numpy()
        proba = model.predict_proba(X_pool)
        R = proba.copy()
        R[np.arange(len(R)), proba.argmax(axis=1)] -= 1.0
        Xa = augment(np.asarray(densify(X_pool), dtype=np.float64))
        r2, x2 = np.sum(R * R, axis=1), np.sum(Xa * Xa, axis=1)
        norms = r2 * x2
        n = len(norms)
        budget = min(budget, n)
        chosen = [int(top_k(norms, 1, rng)[0])]  # first center: the largest gradient
        dist = np.full(n, np.inf)
        for _step in range(1, budget):
            j = chosen[-1]
            d = norms + norms[j] - 2.0 * (R @ R[j]) * (Xa @ Xa[j])
            dist = np.minimum(dist, np.maximum(d, 0.0))
            dist[chosen] = 0.0
            total = dist.sum()
            if total <= 0:  # every remaining point coincides with a center
                rest = np.setdiff1d(np.arange(n), chosen)
                chosen.extend(rng.choice(rest, size=budget - len(chosen), replace=False))
                break
            chosen.append(int(rng.choice(n, p=dist / total)))
        idx = np.asarray(chosen, dtype=np.intp)
        return Selection(indices=idx, scores=np.sqrt(norms[idx]))


class CoreSetSampling(Strategy):
    """CoreSet (Sener & Savarese, 2018): greedy k-center on the features (oracle labels).

    Repeatedly picks the pool sample farthest from the training set and the samples
    already picked. For a linear model the features are its last-layer embedding.
    """

    name = "coreset"

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "chunk_size": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, chunk_size: int = 2048) -> None:
        self.chunk_size = chunk_size

    def _select(
        self, model, X_train, y_train, pool, budget, *, X_val, y_val, sample_weight, trusted, rng
    ):
        X_pool = np.asarray(densify(pool.to_numpy()), dtype=np.float64)
        X_train = np.asarray(densify(X_train), dtype=np.float64)
        p2 = np.sum(X_pool**2, axis=1)
        t2 = np.sum(X_train**2, axis=1)
        dist = np.empty(len(X_pool))
        for s in range(0, len(X_pool), self.chunk_size):
            block = p2[s : s + self.chunk_size, None] + t2[None, :]
            block -= 2.0 * X_pool[s : s + self.chunk_size] @ X_train.T
            dist[s : s + self.chunk_size] = block.min(axis=1)
        dist = np.maximum(dist, 0.0)
        chosen, scores = [], []
        for _step in range(min(budget, len(X_pool))):
            j = int(top_k(dist, 1, rng)[0])
            chosen.append(j)
            scores.append(np.sqrt(dist[j]))
            d = np.maximum(p2 + p2[j] - 2.0 * (X_pool @ X_pool[j]), 0.0)
            dist = np.minimum(dist, d)
            dist[chosen] = -1.0  # never again
        return Selection(indices=np.asarray(chosen, dtype=np.intp), scores=np.asarray(scores))
