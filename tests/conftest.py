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


@pytest.fixture(scope="module")
def client():
    """A client of a real two-process ``distributed.LocalCluster`` on 127.0.0.1, one per
    test module (the modules that use it skip without ``distributed``)."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        processes=True,
        n_workers=2,
        threads_per_worker=1,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",  # None still serves HTTP on 0.0.0.0:8787
    )
    client = Client(cluster, set_as_default=False)
    yield client
    client.close()
    cluster.close()
