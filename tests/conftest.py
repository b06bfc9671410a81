from __future__ import annotations

import numpy as np
import pytest


def make_classification_data(
    n: int, d: int, k: int, seed: int, *, shift: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian features, labels drawn from a random softmax model (not separable)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) + shift
    W = rng.normal(size=(k, d))
    logits = X @ W.T + rng.normal(size=k)
    P = np.exp(logits - logits.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    y = np.array([rng.choice(k, p=p) for p in P])
    return X, y


@pytest.fixture
def make_data():
    return make_classification_data
