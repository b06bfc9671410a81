"""Registry of classification datasets available offline.

Two real-world datasets are bundled with the package as Parquet files (see
``salutary/data/README.md`` for provenance, licences and checksums):

* ``wine_quality`` (default): UCI Wine Quality, red + white, 6497 x 11, 7 classes.
* ``electrical_grid``: UCI Electrical Grid Stability, 10000 x 12, 2 classes.

Three small datasets shipped with scikit-learn are also registered:
``breast_cancer``, ``digits`` and ``wine``. Nothing is ever downloaded.

Use :func:`load_dataset` for numpy arrays (``X``, ``y``) and :func:`load_frame`
for the same data as a :class:`pandas.DataFrame` (feature columns followed by the
target column).

Adding a dataset
----------------
Write a function returning a DataFrame with the feature columns and the target
column, then call :func:`_register` at import time. Import optional third-party
packages *inside* the loader and go through :func:`_require` so a missing package
gives an error naming the ``pip install`` command; pass the same module name in
``requires`` so :meth:`DatasetInfo.available` reports it without loading.
"""

from __future__ import annotations

import importlib
import importlib.resources
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

    import pandas as pd

__all__ = [
    "DEFAULT_DATASET",
    "Dataset",
    "DatasetInfo",
    "UnknownDatasetError",
    "list_datasets",
    "load_dataset",
    "load_frame",
]

DEFAULT_DATASET = "wine_quality"
"""Name of the dataset used when none is specified."""

_DATA_PACKAGE = "salutary"
_DATA_DIR = "data"


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
    numpy arrays. Every call to :func:`load_dataset` returns fresh arrays.
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
        Number of features (columns of ``X``).
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

    def available(self) -> bool:
        """Return whether the dataset can be loaded without installing anything.

        Checks that the required modules are importable (without importing them)
        and, for bundled datasets, that the data file is present.

        Returns
        -------
        bool
            True if :func:`load_dataset` is expected to succeed.
        """
        for module in self.requires:
            try:
                if importlib.util.find_spec(module) is None:
                    return False
            except (ImportError, ValueError):
                return False
        if self.resource is not None:
            return _resource(self.resource).is_file()
        return True


@dataclass(frozen=True)
class _Entry:
    info: DatasetInfo
    loader: Callable[[], pd.DataFrame]
    target: str


_REGISTRY: dict[str, _Entry] = {}


class UnknownDatasetError(KeyError, ValueError):
    """Raised for a dataset name that is not registered.

    Subclasses both :class:`KeyError` and :class:`ValueError`.
    """

    def __str__(self) -> str:
        """Return the message without the quotes KeyError adds."""
        return str(self.args[0]) if self.args else ""


def _register(info: DatasetInfo, loader: Callable[[], pd.DataFrame], *, target: str) -> None:
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
    """
    if info.name in _REGISTRY:
        raise ValueError(f"dataset {info.name!r} is already registered")
    _REGISTRY[info.name] = _Entry(info=info, loader=loader, target=target)


def _require(module: str, install_hint: str) -> ModuleType:
    """Import ``module`` or raise ImportError naming the install command."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"{module!r} is required for this dataset; run: {install_hint}") from exc


def _resource(filename: str) -> Traversable:
    return importlib.resources.files(_DATA_PACKAGE) / _DATA_DIR / filename


def _read_bundled(filename: str, columns: list[str]) -> pd.DataFrame:
    """Read ``columns`` of a Parquet file bundled in ``salutary/data``."""
    import pyarrow.parquet as pq

    path = _resource(filename)
    if not path.is_file():
        raise FileNotFoundError(
            f"bundled data file {filename!r} is missing from the salutary package; "
            "regenerate it with scripts/build_datasets.py"
        )
    with path.open("rb") as fh:
        table = pq.read_table(fh, columns=columns)
    return table.to_pandas()


def _canonical(name: str) -> str:
    key = name.strip().lower().replace("-", "_")
    if key not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY))
        raise UnknownDatasetError(f"unknown dataset {name!r}; known datasets: {known}")
    return key


def list_datasets() -> list[DatasetInfo]:
    """List the registered datasets.

    Returns
    -------
    list of DatasetInfo
        One entry per dataset, sorted by name. Nothing is loaded.

    Examples
    --------
    >>> [d.name for d in list_datasets() if d.available()]  # doctest: +SKIP
    ['breast_cancer', 'digits', 'electrical_grid', 'wine', 'wine_quality']
    """
    return [_REGISTRY[name].info for name in sorted(_REGISTRY)]


def load_frame(name: str = DEFAULT_DATASET) -> pd.DataFrame:
    """Load a dataset as a DataFrame.

    Parameters
    ----------
    name : str, default "wine_quality"
        Registered dataset name (case-insensitive; ``-`` is treated as ``_``).

    Returns
    -------
    pandas.DataFrame
        The feature columns (same order as :attr:`Dataset.feature_names`) followed
        by the target column (:attr:`Dataset.target`). Reference-only columns of the
        bundled files (such as ``color`` for ``wine_quality``) are not included.

    Raises
    ------
    UnknownDatasetError
        If ``name`` is not registered (a subclass of KeyError and ValueError).
    ImportError
        If an optional package needed by the dataset is missing.
    """
    entry = _REGISTRY[_canonical(name)]
    frame = entry.loader()
    info = entry.info
    features = [str(c) for c in frame.columns if c != entry.target]
    n_classes = int(frame[entry.target].nunique())
    if (len(frame), len(features), n_classes) != (
        info.n_samples,
        info.n_features,
        info.n_classes,
    ):
        raise RuntimeError(
            f"dataset {info.name!r} has shape {(len(frame), len(features))} and {n_classes} "
            f"classes; expected {(info.n_samples, info.n_features)} and {info.n_classes}"
        )
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
        ``X`` as float64 of shape ``(n_samples, n_features)`` and ``y`` with the
        original label values. Use :func:`load_frame` for a DataFrame.

    Raises
    ------
    UnknownDatasetError
        If ``name`` is not registered (a subclass of KeyError and ValueError); the
        message lists the known names.
    ImportError
        If an optional package needed by the dataset is missing.

    Examples
    --------
    >>> ds = load_dataset("wine_quality")
    >>> ds.X.shape, len(ds.classes)
    ((6497, 11), 7)
    """
    key = _canonical(name)
    entry = _REGISTRY[key]
    frame = load_frame(key)
    features = [str(c) for c in frame.columns if c != entry.target]
    X = np.ascontiguousarray(frame[features].to_numpy(dtype=np.float64))
    y = frame[entry.target].to_numpy()
    if y.dtype == object or not np.issubdtype(y.dtype, np.number):
        y = y.astype(str)
    return Dataset(
        name=key,
        X=X,
        y=y,
        feature_names=features,
        target=entry.target,
        description=entry.info.description,
    )


# --------------------------------------------------------------------------- bundled

_WINE_FILE = "wine_quality.parquet"
_WINE_FEATURES = [
    "fixed_acidity",
    "volatile_acidity",
    "citric_acid",
    "residual_sugar",
    "chlorides",
    "free_sulfur_dioxide",
    "total_sulfur_dioxide",
    "density",
    "ph",
    "sulphates",
    "alcohol",
]
_GRID_FILE = "electrical_grid_stability.parquet"
_GRID_FEATURES = [f"{p}{i}" for p in ("tau", "p", "g") for i in range(1, 5)]


def _load_wine_quality() -> pd.DataFrame:
    return _read_bundled(_WINE_FILE, [*_WINE_FEATURES, "quality"])


def _load_electrical_grid() -> pd.DataFrame:
    return _read_bundled(_GRID_FILE, [*_GRID_FEATURES, "stabf"])


_register(
    DatasetInfo(
        name="wine_quality",
        n_samples=6497,
        n_features=11,
        n_classes=7,
        source=(
            "bundled salutary/data/wine_quality.parquet; UCI Wine Quality "
            "(Cortez et al. 2009), CC BY 4.0"
        ),
        description=(
            "Wine Quality (UCI; Cortez et al. 2009): 11 physico-chemical measurements of "
            "1599 red and 4898 white Portuguese 'Vinho Verde' wines; target `quality` is "
            "the median sensory score, integers 3..9 (7 classes, heavily imbalanced)."
        ),
        resource=_WINE_FILE,
    ),
    _load_wine_quality,
    target="quality",
)

_register(
    DatasetInfo(
        name="electrical_grid",
        n_samples=10000,
        n_features=12,
        n_classes=2,
        source=(
            "bundled salutary/data/electrical_grid_stability.parquet; UCI Electrical Grid "
            "Stability Simulated Data (Arzamasov et al. 2018), CC BY 4.0"
        ),
        description=(
            "Electrical Grid Stability Simulated Data (UCI; Arzamasov et al. 2018): "
            "reaction times (tau1-4), power balances (p1-4) and price elasticities (g1-4) "
            "of a 4-node star grid; target `stabf` is 'stable'/'unstable'. The leaking "
            "`stab` column is not included."
        ),
        resource=_GRID_FILE,
    ),
    _load_electrical_grid,
    target="stabf",
)

# ----------------------------------------------------------------------- scikit-learn

_SKLEARN_HINT = "pip install scikit-learn"


def _sklearn_loader(function: str) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        sk_datasets = _require("sklearn.datasets", _SKLEARN_HINT)
        return getattr(sk_datasets, function)(as_frame=True).frame

    load.__name__ = f"_load_{function}"
    return load


def _register_sklearn(name: str, shape: tuple[int, int], n_classes: int, text: str) -> None:
    _register(
        DatasetInfo(
            name=name,
            n_samples=shape[0],
            n_features=shape[1],
            n_classes=n_classes,
            source=f"scikit-learn bundled data (sklearn.datasets.load_{name})",
            description=text,
            requires=("sklearn",),
            install_hint=_SKLEARN_HINT,
        ),
        _sklearn_loader(f"load_{name}"),
        target="target",
    )


_register_sklearn(
    "breast_cancer",
    (569, 30),
    2,
    "Breast Cancer Wisconsin (Diagnostic) from scikit-learn: 30 features of cell nuclei; "
    "target 0 = malignant, 1 = benign.",
)
_register_sklearn(
    "digits",
    (1797, 64),
    10,
    "Optical recognition of handwritten digits from scikit-learn: 8x8 images with pixel "
    "values 0..16; target is the digit 0..9.",
)
_register_sklearn(
    "wine",
    (178, 13),
    3,
    "Wine recognition from scikit-learn: 13 chemical measurements of wines from three "
    "cultivars; target 0..2.",
)
