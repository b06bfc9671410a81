"""Salutary labeling of a sparse TF-IDF pool: time and peak memory, never densified.

Usage::

    python benchmarks/bench_sparse.py [--docs 100000] [--features 262144] [--classes 5]
        [--labeled 2000] [--validation 1000] [--rounds 2] [--budget 100]
        [--strategy salutary]

Synthetic corpus: each document draws 80 tokens from a Zipf background vocabulary
(97%) or its class's 200 topic words (3%), hashed into ``--features`` columns;
scikit-learn's ``TfidfTransformer`` weights the counts (CSR, L2-normalized rows). Then
``SalutaryLabeler`` (``LogisticModel(l2=1)``, an explicit validation set) labels
``--rounds`` rounds of ``--budget`` documents of the pool. Prints the sizes, seconds per
stage, the test accuracy before and after, and the process's peak resident memory
(``ru_maxrss``) next to what the pool alone would take as a dense float64 array.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfTransformer

from salutary import LogisticModel, SalutaryLabeler


def corpus(n: int, d: int, k: int, seed: int) -> tuple[sp.csr_matrix, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, size=n)
    tokens = 80
    background = rng.zipf(1.3, size=(n, tokens)) % d
    topics = rng.integers(0, d, size=(k, 200))
    topical = topics[y[:, None], rng.integers(0, 200, size=(n, tokens))]
    cols = np.where(rng.random((n, tokens)) < 0.03, topical, background).ravel()
    rows = np.repeat(np.arange(n), tokens)
    counts = sp.coo_matrix((np.ones(n * tokens), (rows, cols)), shape=(n, d)).tocsr()
    counts.sum_duplicates()
    return TfidfTransformer().fit_transform(counts).tocsr(), y


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--features", type=int, default=2**18)
    ap.add_argument("--classes", type=int, default=5)
    ap.add_argument("--labeled", type=int, default=2000)
    ap.add_argument("--validation", type=int, default=1000)
    ap.add_argument("--test", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--budget", type=int, default=100)
    ap.add_argument("--strategy", default="salutary")
    args = ap.parse_args()
    t0 = time.perf_counter()
    X, y = corpus(args.docs, args.features, args.classes, seed=0)
    t_corpus = time.perf_counter() - t0
    a, b = args.labeled, args.labeled + args.validation
    c = args.docs - args.test
    X_fit, X_val, X_test = X[:c], X[a:b], X[c:]
    keep = np.ones(c, dtype=bool)
    keep[a:b] = False  # the validation rows are given separately
    X_fit, y_fit = X_fit[keep], np.where(np.arange(c) < a, y[:c], -1)[keep]
    n_pool = int(np.sum(y_fit == -1))
    dense_gib = n_pool * args.features * 8 / 2**30
    print(
        f"{args.docs:,} documents x {args.features:,} features, {X.nnz:,} non-zeros "
        f"({X.data.nbytes + X.indices.nbytes + X.indptr.nbytes:,} bytes); "
        f"{a} labeled, {args.validation} validation, {n_pool:,} pool, {args.test} test; "
        f"{args.classes} classes, {args.classes * (args.features + 1):,} parameters"
    )
    print(f"corpus: {t_corpus:.1f} s; pool as a dense float64 array would be {dense_gib:,.0f} GiB")
    t0 = time.perf_counter()
    initial = LogisticModel(l2=1.0).fit(X_fit[:a], y_fit[:a])
    print(f"initial fit: {time.perf_counter() - t0:.1f} s, test accuracy "
          f"{initial.score(X_test, y[c:]):.4f}")  # fmt: skip
    t0 = time.perf_counter()
    labeler = SalutaryLabeler(
        LogisticModel(l2=1.0, warm_start=True), budget=args.budget, rounds=args.rounds,
        strategy=args.strategy, random_state=0, train_on_validation=False,
    ).fit(X_fit, y_fit, X_val, y[a:b])  # fmt: skip
    seconds = time.perf_counter() - t0
    added = labeler.labeled_iter_ > 0
    agree = float(np.mean(labeler.transduction_[added] == y[:c][keep][added]))
    print(
        f"salutary labeling ({args.strategy}, {args.rounds} x {args.budget}): {seconds:.1f} s "
        f"({seconds / args.rounds:.1f} s per round), test accuracy "
        f"{labeler.score(X_test, y[c:]):.4f}, labels right {agree:.0%}"
    )
    print(f"peak resident memory: {peak_mib():,.0f} MiB")


if __name__ == "__main__":
    main()
