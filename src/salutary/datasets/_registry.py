"""The registry of datasets: what a dataset is, how it is registered, found and loaded."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_numeric_dtype

from salutary._io import bundled_file
from salutary._optional import is_installed
from salutary.exceptions import DatasetNotInstalledError, UnknownDatasetError

__all__ = [
    "BENCHMARK_DATASETS",
    "DEFAULT_DATASET",
    "EMBEDDING_DATASETS",
    "Dataset",
    "DatasetInfo",
    "list_datasets",
    "load_dataset",
    "load_frame",
    "register",
    "require_installed",
]

DEFAULT_DATASET = "wine_quality"
"""Name of the dataset used when none is specified."""

BENCHMARK_DATASETS = (
    "wine_quality",
    "electrical_grid",
    "adult",
    "letter",
    "magic",
    "spambase",
    "pima",
    "mnist",
    "fashion_mnist",
)
"""The nine real-world benchmark datasets (seven bundled, two installed separately)."""

EMBEDDING_DATASETS = (
    "bbc_news",
    "twitter_sentiment",
    "spam_assassin",
    "mnist_cnn",
    "fashion_mnist_cnn",
)
"""Datasets whose features are embeddings by a frozen network (need the ``deep`` extra)."""

_KINDS = ("tabular", "image", "text", "embedding")


@dataclass(frozen=True, eq=False)
class Dataset:
    """A classification dataset held in memory.

    Parameters
    ----------
    name : str
        Registry name.
    X : numpy.ndarray
        Feature matrix, float64, shape ``(n_samples, n_features)``.
    y : numpy.ndarray
        Labels, shape ``(n_samples,)``, with their original values (e.g. the
        integer wine quality score or the strings ``"stable"``/``"unstable"``).
    feature_names : list of str
        Names of the columns of ``X``.
    target : str
        Name of the target column.
    description : str
        One-paragraph description with the source of the data.

    Notes
    -----
    Equality and hashing are by identity (``eq=False``) because the fields hold
    numpy arrays. Every call to :func:`load_dataset` returns fresh, writeable arrays.
    """

    name: str
    X: np.ndarray
    y: np.ndarray
    feature_names: list[str]
    target: str
    description: str

    @property
    def n_samples(self) -> int:
        """Number of rows of ``X``."""
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        """Number of columns of ``X``."""
        return int(self.X.shape[1])

    @property
    def classes(self) -> np.ndarray:
        """Sorted unique labels of ``y``."""
        return np.unique(self.y)


@dataclass(frozen=True)
class DatasetInfo:
    """Metadata of a registered dataset, available without loading it.

    Parameters
    ----------
    name : str
        Registry name, as passed to :func:`load_dataset`.
    n_samples : int
        Number of rows.
    n_features : int
        Number of features: columns of ``X`` as returned by :func:`load_dataset`
        (after one-hot encoding of categorical columns).
    n_classes : int
        Number of distinct labels.
    source : str
        Where the data comes from (bundled file or package, original dataset).
    description : str
        Short human-readable description.
    requires : tuple of str
        Importable modules needed to load the dataset.
    install_hint : str
        Command that installs the missing requirements.
    resource : str or None
        File name of the bundled Parquet file in ``salutary/data``, if any.
    kind : {"tabular", "image", "text", "embedding"}
        Type of data: ``"image"`` raw pixels; ``"text"`` sentence embeddings of texts
        (the frame holds the texts); ``"embedding"`` embeddings of images by a frozen
        network (the frame holds the pixels).
    bundled : bool
        Whether the data file ships inside the salutary package.
    n_raw_features : int or None
        Number of feature columns of :func:`load_frame` (before one-hot encoding).
        None (the default) means the same as ``n_features``.
    probe : callable or None
        Cheap zero-argument check (no loading) that the external data files exist.
    """

    name: str
    n_samples: int
    n_features: int
    n_classes: int
    source: str
    description: str
    requires: tuple[str, ...] = ()
    install_hint: str = ""
    resource: str | None = field(default=None, repr=False)
    kind: str = "tabular"
    bundled: bool = False
    n_raw_features: int | None = None
    probe: Callable[[], bool] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Fill in ``n_raw_features`` and validate ``kind``."""
        if self.kind not in _KINDS:
            raise ValueError(f"kind must be one of {', '.join(_KINDS)}, not {self.kind!r}")
        if self.n_raw_features is None:
            object.__setattr__(self, "n_raw_features", self.n_features)

    def available(self) -> bool:
        """Return whether the dataset can be loaded without installing anything.

        Checks that the required modules are importable (without importing them),
        for bundled datasets that the data file is present, and for externally
        installed data that its files exist. Nothing is read.

        Returns
        -------
        bool
            True if :func:`load_dataset` is expected to succeed.
        """
        if not all(is_installed(module) for module in self.requires):
            return False
        if self.resource is not None and not bundled_file(self.resource).is_file():
            return False
        return self.probe is None or bool(self.probe())


@dataclass(frozen=True)
class _Entry:
    info: DatasetInfo
    loader: Callable[[], pd.DataFrame]
    target: str
    arrays: Callable[[], tuple[np.ndarray, np.ndarray, list[str]]] | None = None


_REGISTRY: dict[str, _Entry] = {}


def register(
    info: DatasetInfo,
    loader: Callable[[], pd.DataFrame],
    *,
    target: str,
    arrays: Callable[[], tuple[np.ndarray, np.ndarray, list[str]]] | None = None,
) -> None:
    """Add a dataset to the registry.

    Parameters
    ----------
    info : DatasetInfo
        Metadata; ``n_samples``/``n_features``/``n_classes`` are checked on load.
    loader : callable
        Zero-argument function returning a DataFrame made of the feature columns
        (in order) and the ``target`` column. It runs only when the dataset is loaded.
    target : str
        Name of the target column in the loader's DataFrame.
    arrays : callable, optional
        Zero-argument function returning ``(X, y, feature_names)`` directly, used by
        :func:`load_dataset` instead of ``loader`` (for large image data, where a
        DataFrame would be wasteful). ``X`` must be a fresh float64 array.
    """
    if info.name in _REGISTRY:
        raise ValueError(f"dataset {info.name!r} is already registered")
    _REGISTRY[info.name] = _Entry(info=info, loader=loader, target=target, arrays=arrays)


def require_installed(modules: tuple[str, ...], install_hint: str) -> None:
    """Raise DatasetNotInstalledError unless every module is installed (none is imported)."""
    for module in modules:
        if not is_installed(module):
            raise DatasetNotInstalledError(
                f"{module!r} is required for this dataset; run: {install_hint}"
            )


def _canonical(name: str) -> str:
    key = name.strip().lower().replace("-", "_")
    if key not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY))
        raise UnknownDatasetError(f"unknown dataset {name!r}; known datasets: {known}")
    return key


def _check_shape(info: DatasetInfo, n: int, d: int, expected_d: int, n_classes: int) -> None:
    if (n, d, n_classes) != (info.n_samples, expected_d, info.n_classes):
        raise RuntimeError(
            f"dataset {info.name!r} has shape {(n, d)} and {n_classes} classes; "
            f"expected {(info.n_samples, expected_d)} and {info.n_classes}"
        )


def _encode(frame: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Return float64 ``X`` and its column names, one-hot encoding non-numeric columns.

    Numeric (and boolean) columns are converted to float64 as they are. Any other
    column is one-hot encoded in place with its distinct values (as strings) sorted,
    giving columns named ``"<column>=<value>"`` (a missing value becomes ``"nan"``).
    The encoding depends only on the values present, so it is deterministic for a
    given dataset.
    """
    n = len(frame)
    blocks: list[np.ndarray] = []
    names: list[str] = []
    for column in frame.columns:
        series = frame[column]
        if is_numeric_dtype(series.dtype) or is_bool_dtype(series.dtype):
            blocks.append(series.to_numpy(dtype=np.float64).reshape(n, 1))
            names.append(str(column))
            continue
        codes, categories = pd.factorize(series.astype(str), sort=True, use_na_sentinel=False)
        onehot = np.zeros((n, len(categories)), dtype=np.float64)
        onehot[np.arange(n), codes] = 1.0
        blocks.append(onehot)
        names.extend(f"{column}={category}" for category in categories)
    if not blocks:
        return np.empty((n, 0), dtype=np.float64), names
    return np.ascontiguousarray(np.hstack(blocks)), names


def list_datasets() -> list[DatasetInfo]:
    """List the registered datasets.

    Returns
    -------
    list of DatasetInfo
        One entry per dataset, sorted by name. Nothing is loaded.

    Examples
    --------
    >>> [d.name for d in list_datasets() if d.bundled]  # doctest: +SKIP
    ['adult', 'electrical_grid', 'letter', 'magic', 'pima', 'spambase', 'wine_quality']
    """
    return [_REGISTRY[name].info for name in sorted(_REGISTRY)]


def load_frame(name: str = DEFAULT_DATASET) -> pd.DataFrame:
    """Load a dataset as a DataFrame of its raw values.

    Parameters
    ----------
    name : str, default "wine_quality"
        Registered dataset name (case-insensitive; ``-`` is treated as ``_``).

    Returns
    -------
    pandas.DataFrame
        The raw feature columns followed by the target column
        (:attr:`Dataset.target`). Categorical columns keep their string values and
        image pixels their ``uint8`` 0..255 intensities; for all other datasets the
        feature columns are those of :attr:`Dataset.feature_names`. Reference-only
        columns of the bundled files (such as ``color`` for ``wine_quality`` or
        ``split`` for ``adult``) are not included.

    Raises
    ------
    UnknownDatasetError
        If ``name`` is not registered (a subclass of KeyError and ValueError).
    DatasetNotInstalledError
        If the package or files the dataset is read from are missing (a subclass of
        ImportError; the message names the install command).
    """
    entry = _REGISTRY[_canonical(name)]
    frame = entry.loader()
    features = [c for c in frame.columns if c != entry.target]
    n_raw = entry.info.n_raw_features
    assert n_raw is not None  # set in DatasetInfo.__post_init__
    _check_shape(entry.info, len(frame), len(features), n_raw, int(frame[entry.target].nunique()))
    return frame


def load_dataset(name: str = DEFAULT_DATASET) -> Dataset:
    """Load a dataset as numpy arrays.

    Parameters
    ----------
    name : str, default "wine_quality"
        Registered dataset name (case-insensitive; ``-`` is treated as ``_``).
        See :func:`list_datasets`.

    Returns
    -------
    Dataset
        ``X`` as float64 of shape ``(n_samples, n_features)`` (categorical columns
        one-hot encoded, image pixels scaled to [0, 1]) and ``y`` with the original
        label values. Use :func:`load_frame` for a DataFrame of the raw values.

    Raises
    ------
    UnknownDatasetError
        If ``name`` is not registered (a subclass of KeyError and ValueError); the
        message lists the known names.
    DatasetNotInstalledError
        If the package or files the dataset is read from are missing (a subclass of
        ImportError; the message names the install command).

    Examples
    --------
    >>> ds = load_dataset("wine_quality")
    >>> ds.X.shape, len(ds.classes)
    ((6497, 11), 7)
    """
    key = _canonical(name)
    entry = _REGISTRY[key]
    info = entry.info
    if entry.arrays is not None:
        X, y, features = entry.arrays()
    else:
        frame = load_frame(key)
        features_raw = [c for c in frame.columns if c != entry.target]
        X, features = _encode(frame[features_raw])
        y = frame[entry.target].to_numpy()
        if y.dtype == object or not np.issubdtype(y.dtype, np.number):
            y = y.astype(str)
    _check_shape(info, X.shape[0], X.shape[1], info.n_features, len(np.unique(y)))
    return Dataset(
        name=key,
        X=X,
        y=y,
        feature_names=features,
        target=entry.target,
        description=info.description,
    )
