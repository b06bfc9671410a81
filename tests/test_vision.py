"""The small CNN of salutary.vision: deterministic training, freezing, caching, embedding.

MNIST and Fashion-MNIST are not installed by ``make test``: every test uses scikit-learn's
8x8 digits, upsampled to 24x24 and padded to 28x28 like the real images.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from salutary.embeddings import EmbeddingCache, TorchEncoder, embed  # noqa: E402
from salutary.vision import (  # noqa: E402
    ImageSplit,
    _cnn,  # private modules: the tests patch their functions
    _images,
    cnn_encoder,
    embedded_dataset,
    train_cnn,
)


def _digits_28(transpose: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """sklearn digits as 28x28 images in [0, 1], rows in a fixed random order."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = digits.images / 16.0
    if transpose:  # a second, different "dataset" with the same labels
        images = images.transpose(0, 2, 1)
    images = np.kron(images, np.ones((1, 3, 3)))  # 8x8 -> 24x24
    images = np.pad(images, ((0, 0), (2, 2), (2, 2))).reshape(len(images), 28 * 28)
    order = np.random.default_rng(0).permutation(len(images))
    return images[order].astype(np.float32), digits.target[order].astype(np.int64)


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    return _digits_28()


@pytest.fixture(scope="module")
def small_split(digits) -> ImageSplit:
    X, y = digits
    return ImageSplit("digits", X[:300], y[:300], X[1200:1400], y[1200:1400])


@pytest.fixture(scope="module")
def digits_model(digits):
    """A CNN trained for 3 epochs on 1200 digits, tested on the other 597."""
    X, y = digits
    split = ImageSplit("digits", X[:1200], y[:1200], X[1200:], y[1200:])
    model, metrics = train_cnn(split, epochs=3, batch_size=32, cache=False, progress=False)
    return model, metrics, split


def _state(model) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


def _same_weights(a, b) -> bool:
    sa, sb = _state(a), _state(b)
    return sa.keys() == sb.keys() and all(np.array_equal(sa[k], sb[k]) for k in sa)


@pytest.fixture
def count_fits(monkeypatch) -> list[str]:
    """Record the name of every split the CNN is actually trained on."""
    calls: list[str] = []
    real_fit = _cnn._fit

    def counting_fit(split, *args, **kwargs):
        calls.append(split.name)
        return real_fit(split, *args, **kwargs)

    monkeypatch.setattr(_cnn, "_fit", counting_fit)
    return calls


# ---------------------------------------------------------------------- determinism


def test_same_seed_gives_identical_weights_whatever_the_global_rng(small_split):
    torch.manual_seed(123)
    a, metrics_a = train_cnn(
        small_split, seed=0, epochs=1, batch_size=32, cache=False, progress=False
    )
    torch.manual_seed(456)  # the global RNG must not matter
    b, metrics_b = train_cnn(
        small_split, seed=0, epochs=1, batch_size=32, cache=False, progress=False
    )
    assert _same_weights(a, b)
    assert metrics_a["weights_sha256"] == metrics_b["weights_sha256"]
    assert metrics_a["history"] == metrics_b["history"]


def test_different_seeds_give_different_weights(small_split):
    a, _ = train_cnn(small_split, seed=0, epochs=1, batch_size=32, cache=False, progress=False)
    b, _ = train_cnn(small_split, seed=1, epochs=1, batch_size=32, cache=False, progress=False)
    sa, sb = _state(a), _state(b)
    # Every layer starts from a different initialisation.
    assert all(not np.array_equal(sa[k], sb[k]) for k in sa)


def test_training_restores_the_global_torch_state(small_split):
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    torch.manual_seed(7)
    rng_before = torch.random.get_rng_state().clone()
    deterministic_before = torch.are_deterministic_algorithms_enabled()
    try:
        train_cnn(small_split, epochs=1, threads=1, cache=False, progress=False)
        assert torch.get_num_threads() == 2
        assert torch.equal(torch.random.get_rng_state(), rng_before)
        assert torch.are_deterministic_algorithms_enabled() == deterministic_before
    finally:
        torch.set_num_threads(threads)


# --------------------------------------------------------------------------- learning


def test_classifier_learns_digits(digits_model):
    model, metrics, split = digits_model
    with torch.inference_mode():
        predicted = model(torch.from_numpy(split.X_test)).argmax(dim=1).numpy()
    accuracy = float(np.mean(predicted == split.y_test))
    # 10 classes: chance is 0.1. Seeds 0-9 reach 0.88-0.96 here; 0.75 leaves a wide margin.
    assert accuracy > 0.75
    assert metrics["test_accuracy"] == pytest.approx(accuracy)
    assert metrics["n_train"] == 1200 and metrics["n_test"] == 597
    assert [h["epoch"] for h in metrics["history"]] == [1, 2, 3]


# ------------------------------------------------------------------------- freezing


def test_trained_model_is_frozen(digits_model):
    model, _, split = digits_model
    assert not any(p.requires_grad for p in model.parameters())
    assert not any(m.training for m in model.modules())
    x = torch.from_numpy(split.X_test[:50])
    with pytest.raises(RuntimeError):  # nothing to differentiate
        model(x).sum().backward()


def test_trunk_embeds_deterministically(digits_model):
    model, _, split = digits_model
    x = torch.from_numpy(split.X_test[:50])
    with torch.inference_mode():
        first = model.trunk(x)
        second = model.trunk(x)
        logits = model(x)
        assert torch.equal(model.head(first), logits)  # the trunk is the network minus its head
    assert first.shape == (50, 64)
    assert torch.equal(first, second)
    assert (first >= 0).all()  # the embedding layer ends in a ReLU


def test_cnn_encoder_embeds_with_the_frozen_trunk(small_split, tmp_path):
    encoder = cnn_encoder(small_split, epochs=1, cache=tmp_path, progress=False)
    model, _ = train_cnn(small_split, epochs=1, cache=tmp_path, progress=False)  # from cache
    with torch.inference_mode():
        direct = model.trunk(torch.from_numpy(small_split.X_test)).numpy()
    assert isinstance(encoder, TorchEncoder)
    embedded = embed(encoder, small_split.X_test, cache=False, progress=False, batch_size=64)
    assert embedded.dtype == np.float32 and embedded.shape == (200, 64)
    np.testing.assert_allclose(embedded, direct, rtol=1e-5, atol=1e-6)


def test_embedding_dim_sets_the_embedding_width(small_split):
    model, metrics = train_cnn(small_split, epochs=1, embedding_dim=16, cache=False, progress=False)
    with torch.inference_mode():
        assert model.trunk(torch.from_numpy(small_split.X_test[:5])).shape == (5, 16)
    assert metrics["config"]["embedding_dim"] == 16


# ---------------------------------------------------------------------------- cache


def test_cached_model_is_loaded_instead_of_retrained(small_split, tmp_path, count_fits):
    model, metrics = train_cnn(small_split, epochs=1, cache=tmp_path, progress=False)
    assert count_fits == ["digits"]
    files = sorted(p.name for p in (tmp_path / "models").iterdir())
    assert len(files) == 2 and files[0].endswith(".json") and files[1].endswith(".pt")
    assert files[0].startswith("cnn-digits-seed0-")
    assert json.loads((tmp_path / "models" / files[0]).read_text()) == metrics

    again, metrics_again = train_cnn(small_split, epochs=1, cache=tmp_path, progress=False)
    assert count_fits == ["digits"]  # loaded, not retrained
    assert _same_weights(model, again) and metrics_again == metrics
    assert not any(p.requires_grad for p in again.parameters()) and not again.training

    train_cnn(small_split, epochs=1, seed=1, cache=tmp_path, progress=False)
    train_cnn(small_split, epochs=2, cache=tmp_path, progress=False)
    assert len(count_fits) == 3  # the seed and the hyper-parameters are part of the key
    assert len(list((tmp_path / "models").glob("*.pt"))) == 3


def test_cache_true_uses_salutary_cache_dir(small_split, tmp_path, monkeypatch, count_fits):
    monkeypatch.setenv("SALUTARY_CACHE_DIR", str(tmp_path / "root"))
    train_cnn(small_split, epochs=1, progress=False)
    train_cnn(small_split, epochs=1, progress=False)
    assert len(count_fits) == 1
    assert len(list((tmp_path / "root" / "models").glob("cnn-digits-*.pt"))) == 1


def test_damaged_cached_weights_are_retrained(small_split, tmp_path, count_fits):
    model, _ = train_cnn(small_split, epochs=1, cache=tmp_path, progress=False)
    (weights,) = (tmp_path / "models").glob("*.pt")
    weights.write_bytes(b"not a torch file")
    again, _ = train_cnn(small_split, epochs=1, cache=tmp_path, progress=False)
    assert len(count_fits) == 2
    assert _same_weights(model, again)
    train_cnn(small_split, epochs=1, cache=tmp_path, progress=False)
    assert len(count_fits) == 2  # the rewritten file is valid
    assert not list((tmp_path / "models").glob(".*"))  # no temporary file left behind


def test_changed_data_is_a_different_cache_entry(small_split, tmp_path, count_fits):
    train_cnn(small_split, epochs=1, cache=tmp_path, progress=False)
    changed = ImageSplit(
        "digits", small_split.X_train[::-1], small_split.y_train[::-1],
        small_split.X_test, small_split.y_test,
    )  # fmt: skip
    train_cnn(changed, epochs=1, cache=tmp_path, progress=False)
    assert len(count_fits) == 2


# ---------------------------------------------------------------- embedded_dataset


@pytest.fixture
def fake_image_datasets(monkeypatch):
    """Stand-ins for the two registered datasets: digits (as "fashion_mnist") and
    transposed digits (as "mnist"), 1000 rows each, the first 800 for training."""
    data = {"fashion_mnist": _digits_28(), "mnist": _digits_28(transpose=True)}

    def load(name):
        X, y = data[name]
        return X[:1000].astype(np.float64), y[:1000].copy(), 800

    monkeypatch.setattr(_images, "load_images", load)  # for train_cnn
    monkeypatch.setattr(_cnn, "load_images", load)  # for embedded_dataset
    return data


def test_embedded_dataset_uses_the_other_datasets_cnn(
    fake_image_datasets, tmp_path, count_fits, monkeypatch
):
    cache = EmbeddingCache(tmp_path)
    X, y = embedded_dataset("mnist", cache=cache, progress=False)
    assert count_fits == ["fashion_mnist"]
    assert X.dtype == np.float32 and X.shape == (1000, 64)
    assert y.dtype == np.int64
    np.testing.assert_array_equal(y, fake_image_datasets["mnist"][1][:1000])
    assert len(list((tmp_path / "models").glob("cnn-fashion_mnist-seed0-*.pt"))) == 1
    assert len(list((tmp_path / "embeddings").glob("*.npz"))) == 1

    # Oracle: the cached fashion_mnist CNN's trunk applied directly to the mnist pixels.
    model, metrics = train_cnn("fashion_mnist", cache=tmp_path, progress=False)
    assert metrics["n_train"] == 800 and metrics["n_test"] == 200
    with torch.inference_mode():
        direct = model.trunk(torch.from_numpy(fake_image_datasets["mnist"][0][:1000])).numpy()
    np.testing.assert_allclose(X, direct, rtol=1e-5, atol=1e-6)

    # A second call reads both caches: no training, no encoding.
    encoded: list[int] = []
    real_encode = TorchEncoder.encode
    monkeypatch.setattr(
        TorchEncoder, "encode", lambda self, batch: encoded.append(1) or real_encode(self, batch)
    )
    X_again, y_again = embedded_dataset("mnist", cache=cache, progress=False)
    assert count_fits == ["fashion_mnist"] and encoded == []
    np.testing.assert_array_equal(X_again, X)
    np.testing.assert_array_equal(y_again, y)

    embedded_dataset("fashion_mnist", cache=cache, progress=False)
    assert count_fits == ["fashion_mnist", "mnist"]


def test_embedded_dataset_without_cache_writes_nothing(
    fake_image_datasets, tmp_path, monkeypatch, count_fits
):
    monkeypatch.setenv("SALUTARY_CACHE_DIR", str(tmp_path / "root"))
    X, _ = embedded_dataset("fashion_mnist", cache=False, progress=False)
    assert X.shape == (1000, 64)
    assert count_fits == ["mnist"]
    assert not (tmp_path / "root").exists()


# ----------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: train_cnn("cifar10"), "unknown image dataset 'cifar10'"),
        (lambda: embedded_dataset("svhn"), "unknown image dataset 'svhn'"),
        (lambda: train_cnn("mnist", seed=-1), "seed must be a non-negative integer"),
        (lambda: train_cnn("mnist", epochs=0), "epochs must be a positive integer"),
        (lambda: train_cnn("mnist", batch_size=2.5), "batch_size must be a positive integer"),
        (lambda: train_cnn("mnist", threads=0), "threads must be a positive integer"),
        (lambda: train_cnn("mnist", learning_rate=-1.0), "learning_rate must be a positive"),
    ],
)
def test_bad_arguments_fail_before_any_work(call, message, count_fits):
    with pytest.raises(ValueError, match=message):
        call()
    assert count_fits == []


def test_bad_cache_argument_is_a_type_error():
    with pytest.raises(TypeError, match="cache must be an EmbeddingCache"):
        embedded_dataset("mnist", cache="/tmp/somewhere")


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ((np.zeros((4, 780)), np.zeros(4, int), np.zeros((2, 780)), np.zeros(2, int)), "square"),
        ((np.zeros((4, 784)), np.zeros(3, int), np.zeros((2, 784)), np.zeros(2, int)), "y_train"),
        ((np.zeros((4, 784)), -np.ones(4, int), np.zeros((2, 784)), np.zeros(2, int)), "non-neg"),
        ((np.zeros((4, 784)), np.zeros(4), np.zeros((2, 784)), np.zeros(2, int)), "integer"),
        ((np.zeros((4, 784)), np.zeros(4, int), np.zeros((2, 729)), np.zeros(2, int)), "columns"),
        ((np.full((4, 784), np.nan), np.zeros(4, int), np.zeros((2, 784)), np.zeros(2, int)),
         "finite"),
        ((np.zeros((4, 784)), np.arange(4), np.zeros((2, 784)), np.array([0, 7])), "absent"),
        ((np.zeros((0, 784)), np.zeros(0, int), np.zeros((2, 784)), np.zeros(2, int)),
         "non-empty"),
    ],
)  # fmt: skip
def test_image_split_rejects_bad_arrays(arrays, message):
    with pytest.raises(ValueError, match=message):
        ImageSplit("bad", *arrays)
