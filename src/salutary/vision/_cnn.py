"""A small CNN trained offline on CPU, frozen, and used to embed the other image dataset.

No pretrained image network can be installed here, so the image benchmarks use a
stand-in for one: a two-block convolutional network trained in plain PyTorch on one of
the two 28x28 grey-level datasets (MNIST, Fashion-MNIST), frozen, and used without its
classification head to embed the *other* dataset. The convex surrogate (an L2 logistic
model) then works on these embeddings, as the paper does with frozen deep features.

* :func:`train_cnn` trains the network on a source's 60,000 training images (or on any
  :class:`ImageSplit`), deterministically for a seed, records the accuracy on the
  source's 10,000 test images, and caches the weights under ``<cache>/models/`` (the
  same cache root as :class:`salutary.embeddings.EmbeddingCache`).
* :func:`cnn_encoder` wraps the frozen trunk (the network without its head) as a
  :class:`salutary.embeddings.TorchEncoder`.
* :func:`embedded_dataset` trains or loads the network on the other dataset and embeds
  the target's 70,000 images through :func:`salutary.embeddings.embed`, so the
  embeddings are cached too.

``scripts/train_cnn.py`` is the reproducibility record: the cached weights are
reproduced bit for bit by running it with the same seed, thread count and torch build.

torch is imported only inside the functions that need it (through
:func:`salutary._optional.import_optional`), so ``import salutary.vision`` is light.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import pickle
import tempfile
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from salutary._optional import import_optional
from salutary.embeddings import EmbeddingCache, TorchEncoder, default_cache_dir, embed
from salutary.vision._images import ImageSplit, check_source, load_image_split, load_images

if TYPE_CHECKING:
    import torch

__all__ = [
    "CNNConfig",
    "CNN_SOURCE",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_EPOCHS",
    "cnn_encoder",
    "embedded_dataset",
    "model_cache_dir",
    "train_cnn",
]

_M = TypeVar("_M", bound="torch.nn.Module")

DEFAULT_EPOCHS = 5
"""Training epochs of the CNNs behind :func:`embedded_dataset`."""

DEFAULT_BATCH_SIZE = 128
"""Mini-batch size of the CNNs behind :func:`embedded_dataset`."""

CNN_SOURCE = {"mnist": "fashion_mnist", "fashion_mnist": "mnist"}
"""For each target dataset, the dataset its embedding CNN is trained on."""

# Bump when the training procedure changes in a way the hyper-parameters do not show,
# so that stale cached weights are not reused.
_TRAINING_VERSION = 1


@dataclass(frozen=True)
class CNNConfig:
    """Architecture and training hyper-parameters of the small CNN.

    The network is ``conv(k x k, c1) - ReLU - maxpool 2 - conv(k x k, c2) - ReLU -
    maxpool 2 - linear(embedding_dim) - ReLU`` (the *trunk*, whose output is the
    embedding) followed by ``linear(n_classes)`` (the *head*). Convolutions are padded
    to keep the image size; it is trained with Adam on the mean cross-entropy.

    Parameters
    ----------
    image_size : int, default=28
        Side of the square input images; the network takes flat rows of
        ``image_size ** 2`` pixels.
    n_classes : int, default=10
        Number of output classes of the head.
    channels : tuple of int, default=(16, 32)
        Output channels of the two convolutions.
    kernel_size : int, default=5
        Side of the (odd) convolution kernels.
    embedding_dim : int, default=64
        Width of the embedding layer.
    epochs : int, default=5
        Passes over the training images.
    batch_size : int, default=128
        Mini-batch size.
    learning_rate : float, default=1e-3
        Adam step size.
    """

    image_size: int = 28
    n_classes: int = 10
    channels: tuple[int, ...] = (16, 32)
    kernel_size: int = 5
    embedding_dim: int = 64
    epochs: int = DEFAULT_EPOCHS
    batch_size: int = DEFAULT_BATCH_SIZE
    learning_rate: float = 1e-3

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        for name in ("image_size", "n_classes", "kernel_size", "embedding_dim"):
            _check_positive_int(name, getattr(self, name))
        for name in ("epochs", "batch_size"):
            _check_positive_int(name, getattr(self, name))
        if self.image_size < 4:
            raise ValueError(
                f"image_size must be at least 4 (two 2x2 poolings), got {self.image_size}"
            )
        if self.n_classes < 2:
            raise ValueError(f"n_classes must be at least 2, got {self.n_classes}")
        if len(self.channels) != 2 or min(self.channels) < 1:
            raise ValueError(f"channels must be two positive integers, got {self.channels}")
        if self.kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {self.kernel_size}")
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ValueError(f"learning_rate must be a positive number, got {self.learning_rate}")

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-serialisable dict (``channels`` as a list)."""
        d = asdict(self)
        d["channels"] = list(self.channels)
        return d


def _check_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


# ----------------------------------------------------------------------------- cache


def model_cache_dir(root: str | os.PathLike[str] | None = None) -> Path:
    """Directory holding the cached CNN weights: ``<root>/models``.

    Parameters
    ----------
    root : path, optional
        Cache root. Default: ``$SALUTARY_CACHE_DIR`` if set, else
        ``~/.cache/salutary`` (the root of :class:`salutary.embeddings.EmbeddingCache`).

    Returns
    -------
    pathlib.Path
        The directory (not created).
    """
    if root is None:
        root = default_cache_dir()
    return Path(root).expanduser() / "models"


def _model_key(
    source: str, data_fingerprint: str | None, seed: int, threads: int, config: CNNConfig
) -> str:
    spec = {
        "version": _TRAINING_VERSION,
        "source": source,
        "data": data_fingerprint,
        "seed": seed,
        "threads": threads,
        "config": config.to_dict(),
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def _atomic_write(path: Path, write: Any) -> None:
    """Call ``write(file_object)`` on a temporary file next to ``path``, then rename it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; the cache is not secret
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _weights_digest(module: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        array = tensor.detach().cpu().contiguous().numpy()
        h.update(f"{name}{array.dtype.str}{array.shape}".encode())
        h.update(array.tobytes())
    return h.hexdigest()


def _load_cached(weights: Path, metrics_path: Path, config: CNNConfig) -> tuple[Any, dict] | None:
    """The cached model and metrics, or None if absent, unreadable or inconsistent."""
    torch = import_optional("torch", what="salutary.vision")
    if not (weights.is_file() and metrics_path.is_file()):
        return None
    try:
        metrics = json.loads(metrics_path.read_text())
        state = torch.load(weights, map_location="cpu", weights_only=True)
        model = _build(config)
        model.load_state_dict(state)
    except (OSError, EOFError, RuntimeError, ValueError, KeyError, pickle.UnpicklingError):
        return None  # a damaged or foreign file: the caller retrains and overwrites it
    if metrics.get("weights_sha256") != _weights_digest(model):
        return None
    return _freeze(model), metrics


# ----------------------------------------------------------------------------- model


def _build(config: CNNConfig) -> torch.nn.Sequential:
    nn = import_optional("torch.nn", what="salutary.vision")
    c1, c2 = config.channels
    k = config.kernel_size
    side = config.image_size // 2 // 2
    trunk = nn.Sequential(
        nn.Unflatten(1, (1, config.image_size, config.image_size)),
        nn.Conv2d(1, c1, k, padding=k // 2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, k, padding=k // 2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(c2 * side * side, config.embedding_dim),
        nn.ReLU(),
    )
    head = nn.Linear(config.embedding_dim, config.n_classes)
    return nn.Sequential(OrderedDict(trunk=trunk, head=head))


def _freeze(model: _M) -> _M:
    model.requires_grad_(False)
    return model.eval()


@contextmanager
def _deterministic_torch(seed: int, threads: int) -> Iterator[None]:
    """Seeded, single-configuration torch state; the caller's state is restored after."""
    torch = import_optional("torch", what="salutary.vision")
    previous_threads = torch.get_num_threads()
    previous_deterministic = torch.are_deterministic_algorithms_enabled()
    previous_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    try:
        # The weights depend on the thread count (reduction order), so it is fixed.
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(True)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            yield
    finally:
        torch.set_num_threads(previous_threads)
        torch.use_deterministic_algorithms(previous_deterministic, warn_only=previous_warn_only)


def _accuracy(model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    torch = import_optional("torch", what="salutary.vision")
    model.eval()
    correct = 0
    with torch.inference_mode():
        for start in range(0, X.shape[0], 1000):
            logits = model(X[start : start + 1000])
            correct += int((logits.argmax(dim=1) == y[start : start + 1000]).sum())
    return correct / X.shape[0]


def _fit(
    split: ImageSplit, config: CNNConfig, seed: int, threads: int, progress: bool
) -> tuple[Any, dict]:
    """Train a fresh network; returns the trained (not yet frozen) model and metrics."""
    torch = import_optional("torch", what="salutary.vision")
    F = import_optional("torch.nn.functional", what="salutary.vision")
    X = torch.from_numpy(np.ascontiguousarray(split.X_train, dtype=np.float32))
    y = torch.from_numpy(np.ascontiguousarray(split.y_train, dtype=np.int64))
    X_test = torch.from_numpy(np.ascontiguousarray(split.X_test, dtype=np.float32))
    y_test = torch.from_numpy(np.ascontiguousarray(split.y_test, dtype=np.int64))
    n = X.shape[0]
    n_batches = -(-n // config.batch_size)
    history: list[dict[str, float]] = []
    start = time.perf_counter()
    with _deterministic_torch(seed, threads), _progress_bar(progress) as bar:
        task = (
            bar.add_task(f"CNN on {split.name}", total=config.epochs * n_batches)
            if bar is not None
            else None
        )
        model = _build(config)
        optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
        # An explicit generator makes the shuffling independent of the global RNG.
        generator = torch.Generator().manual_seed(seed)
        for epoch in range(config.epochs):
            model.train()
            order = torch.randperm(n, generator=generator)
            total_loss = 0.0
            for b in range(n_batches):
                idx = order[b * config.batch_size : (b + 1) * config.batch_size]
                loss = F.cross_entropy(model(X[idx]), y[idx])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total_loss += loss.detach().item() * len(idx)
                if bar is not None:
                    bar.advance(task)
            test_accuracy = _accuracy(model, X_test, y_test)
            history.append(
                {"epoch": epoch + 1, "train_loss": total_loss / n, "test_accuracy": test_accuracy}
            )
            if bar is not None:
                bar.update(
                    task,
                    description=(
                        f"CNN on {split.name}: epoch {epoch + 1}/{config.epochs}, "
                        f"test accuracy {test_accuracy:.4f}"
                    ),
                )
    seconds = time.perf_counter() - start
    metrics = {
        "source": split.name,
        "n_train": int(n),
        "n_test": int(X_test.shape[0]),
        "test_accuracy": history[-1]["test_accuracy"],
        "train_seconds": seconds,
        "history": history,
    }
    return model, metrics


@contextmanager
def _progress_bar(enabled: bool) -> Iterator[Any]:
    if not enabled:
        yield None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=True,
    ) as bar:
        yield bar


# ------------------------------------------------------------------------------- API


def train_cnn(
    source: str | ImageSplit,
    *,
    seed: int = 0,
    epochs: int = DEFAULT_EPOCHS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    learning_rate: float = 1e-3,
    embedding_dim: int = 64,
    threads: int | None = None,
    cache: bool | str | os.PathLike[str] | None = True,
    progress: bool = True,
) -> tuple[torch.nn.Sequential, dict[str, Any]]:
    """Train the small CNN on a source's training images, or load it from the cache.

    Training is deterministic: the same seed, hyper-parameters, thread count and torch
    build give bit-identical weights. The global torch RNG, thread count and
    deterministic-algorithms flag are restored afterwards.

    Parameters
    ----------
    source : {"mnist", "fashion_mnist"} or ImageSplit
        A registered image dataset (trained on its first 60,000 rows, tested on the last
        10,000) or explicit arrays.
    seed : int, default=0
        Seeds the initialisation and the shuffling.
    epochs, batch_size, learning_rate, embedding_dim
        See :class:`CNNConfig`.
    threads : int, optional
        torch threads used for training. Default 1: the weights depend on the thread
        count, and 1 is the setting the cached weights are reproduced with.
    cache : bool or path, default=True
        ``True``: cache the weights under ``model_cache_dir()``; a path: under
        ``<path>/models``; ``False`` or ``None``: neither read nor write the cache. The
        key is the source (its name, plus a hash of the arrays for an
        :class:`ImageSplit`), the seed, the thread count and the configuration.
    progress : bool, default=True
        Show a progress bar while training.

    Returns
    -------
    model : torch.nn.Sequential
        Frozen (eval mode, no parameter requires grad), with children ``trunk`` (flat
        images ``(B, side * side)`` to embeddings ``(B, embedding_dim)``) and ``head``
        (embeddings to logits).
    metrics : dict
        ``test_accuracy``, ``train_seconds``, per-epoch ``history``, the ``config``,
        ``seed``, ``threads``, ``key`` (the cache key), ``weights_sha256`` and the torch
        version. A cached model returns the metrics recorded when it was trained.

    Raises
    ------
    ValueError
        If the source name, the seed or a hyper-parameter is invalid.
    salutary.exceptions.DatasetNotInstalledError
        If a registered source must be trained on but is not installed.
    """
    torch = import_optional("torch", what="salutary.vision")
    _check_seed(seed)
    threads = 1 if threads is None else threads
    _check_positive_int("threads", threads)
    if isinstance(source, ImageSplit):
        name, data_fingerprint, split = source.name, source.fingerprint(), source
    else:
        name, data_fingerprint, split = check_source(source), None, None
    image_size, n_classes = (split.image_size, split.n_classes) if split else (28, 10)
    config = CNNConfig(
        image_size=image_size,
        n_classes=n_classes,
        embedding_dim=embedding_dim,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
    )
    key = _model_key(name, data_fingerprint, seed, threads, config)

    directory = (
        None
        if cache is None or cache is False
        else (model_cache_dir() if cache is True else model_cache_dir(cache))
    )
    weights_path = metrics_path = None
    if directory is not None:
        stem = f"cnn-{name}-seed{seed}-{key[:16]}"
        weights_path, metrics_path = directory / f"{stem}.pt", directory / f"{stem}.json"
        cached = _load_cached(weights_path, metrics_path, config)
        if cached is not None:
            return cached

    if split is None:
        split = load_image_split(name)
    model, metrics = _fit(split, config, seed, threads, progress)
    model = _freeze(model)
    metrics.update(
        seed=seed,
        threads=threads,
        config=config.to_dict(),
        key=key,
        weights_sha256=_weights_digest(model),
        torch_version=torch.__version__,
    )
    if weights_path is not None and metrics_path is not None:
        state = model.state_dict()
        _atomic_write(weights_path, lambda f: torch.save(state, f))
        text = json.dumps(metrics, indent=2, sort_keys=True) + "\n"
        _atomic_write(metrics_path, lambda f: f.write(text.encode()))
    return model, metrics


def _check_seed(seed: object) -> None:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")


def _cache_root(cache: EmbeddingCache | bool | None) -> Path | None:
    """The cache root shared by the embeddings and the models, or None for no cache."""
    if cache is None or cache is False:
        return None
    if cache is True:
        return default_cache_dir()
    if not isinstance(cache, EmbeddingCache):
        raise TypeError(
            f"cache must be an EmbeddingCache, True, False or None, got {type(cache).__name__}"
        )
    return cache.root


def cnn_encoder(
    source: str | ImageSplit,
    *,
    seed: int = 0,
    cache: bool | str | os.PathLike[str] | None = True,
    progress: bool = True,
    **hyperparameters: Any,
) -> TorchEncoder:
    """The frozen trunk of the CNN trained on ``source``, as an encoder for ``embed``.

    Parameters
    ----------
    source, seed, cache, progress
        As for :func:`train_cnn` (``cache`` is the model cache).
    **hyperparameters
        Other keyword arguments of :func:`train_cnn` (``epochs``, ``threads``, ...).

    Returns
    -------
    salutary.embeddings.TorchEncoder
        Maps flat images ``(B, side * side)`` to float32 embeddings
        ``(B, embedding_dim)``. Its fingerprint is the SHA-256 of the weights, so
        embeddings cached with it are tied to these exact weights.
    """
    model, metrics = train_cnn(source, seed=seed, cache=cache, progress=progress, **hyperparameters)
    trunk = cast("torch.nn.Module", model.trunk)
    return TorchEncoder(trunk, fingerprint=f"salutary.vision.cnn:{metrics['weights_sha256']}")


def embedded_dataset(
    target: str,
    *,
    seed: int = 0,
    cache: EmbeddingCache | bool | None = True,
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Embed all images of one dataset with the frozen CNN trained on the other.

    ``"mnist"`` is embedded by the CNN trained on Fashion-MNIST, ``"fashion_mnist"`` by
    the one trained on MNIST (default hyper-parameters, one thread, ``seed``). The CNN is
    loaded from the model cache or trained (:func:`train_cnn`); the embeddings go
    through :func:`salutary.embeddings.embed` and its cache.

    Parameters
    ----------
    target : {"mnist", "fashion_mnist"}
        Dataset to embed; its rows keep their order (60,000 training, then 10,000 test).
    seed : int, default=0
        Seed of the CNN.
    cache : EmbeddingCache, bool or None, default=True
        ``True``: default cache root for both the model and the embeddings; an
        ``EmbeddingCache``: its directory for the embeddings and ``<its root>/models``
        for the model; ``False`` or ``None``: no cache is read or written.
    progress : bool, default=True
        Show progress bars for training and embedding.

    Returns
    -------
    X : numpy.ndarray
        float32 embeddings, shape ``(70000, 64)``.
    y : numpy.ndarray
        int64 labels 0..9.

    Raises
    ------
    ValueError
        If ``target`` is not one of :data:`IMAGE_SOURCES`.
    TypeError
        If ``cache`` is not an ``EmbeddingCache``, a bool or None.
    salutary.exceptions.DatasetNotInstalledError
        If the target, or the source of an untrained CNN, is not installed.
    """
    target = check_source(target)
    root = _cache_root(cache)
    encoder = cnn_encoder(
        CNN_SOURCE[target], seed=seed, cache=root if root is not None else False, progress=progress
    )
    X, y, _ = load_images(target)
    embeddings = embed(encoder, X.astype(np.float32), cache=cache, progress=progress)
    return embeddings, y
