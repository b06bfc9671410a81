from __future__ import annotations

import numpy as np
import pytest

from salutary.datasets import (
    DEFAULT_DATASET,
    Dataset,
    UnknownDatasetError,
    list_datasets,
    load_dataset,
    load_frame,
)

# name -> (n_samples, n_features, n_classes)
EXPECTED = {
    "wine_quality": (6497, 11, 7),
    "electrical_grid": (10000, 12, 2),
    "breast_cancer": (569, 30, 2),
    "digits": (1797, 64, 10),
    "wine": (178, 13, 3),
}


def test_registry_names() -> None:
    assert {info.name for info in list_datasets()} == set(EXPECTED)
    assert DEFAULT_DATASET == "wine_quality"


@pytest.mark.parametrize("info", list_datasets(), ids=lambda info: info.name)
def test_list_datasets_metadata(info) -> None:
    assert info.available()
    assert (info.n_samples, info.n_features, info.n_classes) == EXPECTED[info.name]
    assert info.source and info.description


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_load_dataset(name: str) -> None:
    n, d, k = EXPECTED[name]
    ds = load_dataset(name)
    assert isinstance(ds, Dataset)
    assert ds.name == name
    assert ds.X.dtype == np.float64
    assert ds.X.shape == (n, d)
    assert ds.y.shape == (n,)
    assert len(ds.feature_names) == d
    assert ds.target not in ds.feature_names
    assert not np.isnan(ds.X).any()
    assert np.isfinite(ds.X).all()
    assert len(np.unique(ds.y)) == k == len(ds.classes)
    assert ds.description


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_load_frame_matches_arrays(name: str) -> None:
    ds = load_dataset(name)
    frame = load_frame(name)
    assert list(frame.columns) == [*ds.feature_names, ds.target]
    assert not frame.isna().any().any()
    np.testing.assert_array_equal(frame[ds.feature_names].to_numpy(dtype=np.float64), ds.X)
    np.testing.assert_array_equal(frame[ds.target].to_numpy().astype(ds.y.dtype), ds.y)


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
