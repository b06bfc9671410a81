#!/usr/bin/env python
"""Train the small CNNs used to embed the image datasets, and record their accuracy.

This is the reproducibility record of the cached weights: for each source dataset
(MNIST, Fashion-MNIST) it trains the CNN of :mod:`salutary.vision` on the official 60,000
training images with the given seed on one torch thread, prints the accuracy on the
10,000 test images and the training time, and stores the weights in the model cache
(``$SALUTARY_CACHE_DIR`` or ``~/.cache/salutary``, ``models/``). Weights already in the
cache are loaded instead of retrained; ``--verify`` retrains without the cache and checks
that the new weights are bit-identical to the cached ones.

With ``--embed`` it also embeds each target dataset (MNIST by the Fashion-MNIST CNN and
the reverse), timing the 70,000-image embedding, fills the embedding cache so that
``salutary.vision.embedded_dataset(target)`` returns at once, and runs a sanity check:
the test accuracy of ``LogisticModel(l2=1.0)`` fitted on a random subset of embedded
training images (standardized) against the same on raw pixels.

Usage::

    python scripts/train_cnn.py --seed 0
    python scripts/train_cnn.py --seed 0 --verify
    python scripts/train_cnn.py --seed 0 --embed   # --skip-raw: no raw-pixel baseline
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from salutary.vision import DEFAULT_BATCH_SIZE, DEFAULT_EPOCHS, IMAGE_SOURCES


def _logistic_accuracy(
    X: np.ndarray, y: np.ndarray, n_train_rows: int, n_fit: int, seed: int
) -> tuple[float, float]:
    """Test accuracy and fit time of LogisticModel(l2=1) on ``n_fit`` random training rows."""
    from sklearn.preprocessing import StandardScaler

    from salutary import LogisticModel

    rows = np.random.default_rng(seed).choice(n_train_rows, size=n_fit, replace=False)
    scaler = StandardScaler().fit(X[rows])
    start = time.perf_counter()
    model = LogisticModel(l2=1.0).fit(scaler.transform(X[rows]), y[rows])
    seconds = time.perf_counter() - start
    accuracy = float(np.mean(model.predict(scaler.transform(X[n_train_rows:])) == y[n_train_rows:]))
    return accuracy, seconds


def main(argv: list[str] | None = None) -> int:
    """Train (or load) both CNNs; return the process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="seed of the CNNs (default 0)")
    parser.add_argument(
        "--epochs", type=int, default=DEFAULT_EPOCHS, help=f"epochs (default {DEFAULT_EPOCHS})"
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        help=f"mini-batch size (default {DEFAULT_BATCH_SIZE})",
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (default 1; weights depend on it)"
    )
    parser.add_argument(
        "--sources",
        nargs="+",
        choices=IMAGE_SOURCES,
        default=["fashion_mnist", "mnist"],
        help="datasets to train on (default: fashion_mnist mnist)",
    )
    parser.add_argument(
        "--cache-dir", type=Path, default=None, help="cache root (default $SALUTARY_CACHE_DIR)"
    )
    parser.add_argument(
        "--verify", action="store_true", help="retrain without the cache and compare weights"
    )
    parser.add_argument(
        "--embed", action="store_true", help="embed the other dataset and run the sanity check"
    )
    parser.add_argument(
        "--sanity-n", type=int, default=5000, help="training rows of the sanity check (5000)"
    )
    parser.add_argument(
        "--skip-raw",
        action="store_true",
        help="skip the raw-pixel baseline of the sanity check (minutes per dataset)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)

    import torch

    from salutary.exceptions import DatasetNotInstalledError
    from salutary.vision import CNN_SOURCE, cnn_encoder, train_cnn

    # The machine is shared, and the weights depend on the thread count.
    torch.set_num_threads(args.threads)
    cache = args.cache_dir if args.cache_dir is not None else True
    hyper = {"epochs": args.epochs, "batch_size": args.batch_size, "threads": args.threads}
    progress = not args.quiet
    print(f"torch {torch.__version__}, {args.threads} thread(s), seed {args.seed}")
    try:
        for source in args.sources:
            start = time.perf_counter()
            _, metrics = train_cnn(source, seed=args.seed, cache=cache, progress=progress, **hyper)
            elapsed = time.perf_counter() - start
            per_epoch = ", ".join(f"{h['test_accuracy']:.4f}" for h in metrics["history"])
            print(
                f"CNN on {source}: test accuracy {metrics['test_accuracy']:.4f} "
                f"(per epoch: {per_epoch}); "
                f"training time {metrics['train_seconds']:.1f} s; this call {elapsed:.1f} s; "
                f"weights sha256 {metrics['weights_sha256'][:16]}"
            )
            if args.verify:
                _, fresh = train_cnn(
                    source, seed=args.seed, cache=False, progress=progress, **hyper
                )
                same = fresh["weights_sha256"] == metrics["weights_sha256"]
                print(
                    f"  retrained in {fresh['train_seconds']:.1f} s: weights "
                    f"{'identical' if same else 'DIFFERENT'} "
                    f"(test accuracy {fresh['test_accuracy']:.4f})"
                )
                if not same:
                    return 1
        if args.embed:
            from salutary.embeddings import EmbeddingCache, embed
            from salutary.vision import embedded_dataset, load_image_split

            # embedded_dataset uses the default hyper-parameters: only those fill its cache.
            default_hyper = hyper == {
                "epochs": DEFAULT_EPOCHS,
                "batch_size": DEFAULT_BATCH_SIZE,
                "threads": 1,
            }
            embedding_cache = True if args.cache_dir is None else EmbeddingCache(args.cache_dir)

            for source in args.sources:
                target = next(t for t, s in CNN_SOURCE.items() if s == source)
                encoder = cnn_encoder(
                    source, seed=args.seed, cache=cache, progress=progress, **hyper
                )
                split = load_image_split(target)
                X = np.vstack([split.X_train, split.X_test])  # float32, the original row order
                y = np.concatenate([split.y_train, split.y_test])
                n_train = len(split.y_train)
                start = time.perf_counter()
                Z = embed(encoder, X, cache=False, progress=progress)
                embed_seconds = time.perf_counter() - start
                start = time.perf_counter()
                if default_hyper:
                    # Fill the caches that embedded_dataset(target) reads.
                    Z_cached, _ = embedded_dataset(
                        target, seed=args.seed, cache=embedding_cache, progress=progress
                    )
                    if not np.array_equal(Z_cached, Z):
                        print(f"embedded_dataset({target!r}) differs from the direct embedding")
                        return 1
                fill_seconds = time.perf_counter() - start
                acc_z, fit_z = _logistic_accuracy(Z, y, n_train, args.sanity_n, args.seed)
                raw = "raw pixels skipped"
                if not args.skip_raw:
                    acc_x, fit_x = _logistic_accuracy(X, y, n_train, args.sanity_n, args.seed)
                    raw = f"{acc_x:.4f} on raw pixels (fit {fit_x:.1f} s)"
                print(
                    f"{target} embedded by the {source} CNN: {Z.shape} {Z.dtype} in "
                    f"{embed_seconds:.1f} s (embedded_dataset call {fill_seconds:.1f} s); "
                    f"LogisticModel(l2=1) on {args.sanity_n} training rows -> test accuracy "
                    f"{acc_z:.4f} on embeddings (fit {fit_z:.1f} s), {raw}"
                )
    except (DatasetNotInstalledError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
