"""Embedding data in batches through the cache, and the scikit-learn surrogate."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from salutary.embeddings._cache import EmbeddingCache, resolve_cache
from salutary.embeddings._encoders import (
    Encoder,
    SentenceTransformerEncoder,
    SklearnEncoder,
    TorchEncoder,
    check_batch_size,
)
from salutary.embeddings._fingerprint import fingerprint_array, fingerprint_frame, fingerprint_texts
from salutary.influence import influence_matrix
from salutary.model import LogisticModel

__all__ = ["Embedder", "as_encoder", "embed", "embedding_surrogate", "surrogate_influence"]


def as_encoder(obj: Any) -> Encoder:
    """Wrap ``obj`` in the matching encoder class.

    Parameters
    ----------
    obj : encoder, torch.nn.Module, str, os.PathLike, transformer, Embedder or None
        An object with ``encode`` and ``fingerprint`` is returned as it is; a torch
        module becomes a :class:`TorchEncoder`; a path a
        :class:`SentenceTransformerEncoder`; an object with ``transform`` a
        :class:`SklearnEncoder`; an :class:`Embedder` gives its encoder; None the
        default MiniLM encoder.

    Returns
    -------
    Encoder
    """
    if obj is None:
        return SentenceTransformerEncoder()
    if isinstance(obj, Embedder):
        return as_encoder(obj.encoder)
    if isinstance(obj, (TorchEncoder, SentenceTransformerEncoder, SklearnEncoder)):
        return obj
    if type(obj).__module__.startswith("sentence_transformers"):
        raise TypeError(
            "pass the model's directory (or a SentenceTransformerEncoder), not a loaded "
            "SentenceTransformer: the cache needs to fingerprint its files"
        )
    if callable(getattr(obj, "encode", None)) and hasattr(obj, "fingerprint"):
        return obj
    torch = sys.modules.get("torch")  # a module can only exist if torch was imported
    if torch is not None and isinstance(obj, torch.nn.Module):
        return TorchEncoder(obj)
    if isinstance(obj, (str, os.PathLike)):
        return SentenceTransformerEncoder(obj)
    if callable(getattr(obj, "transform", None)):
        return SklearnEncoder(obj)
    raise TypeError(
        f"cannot use {type(obj).__name__} as an encoder: pass a torch module, a "
        "sentence-transformers model directory, a fitted transformer or an encoder object"
    )


# ------------------------------------------------------------------------------- embed


def _as_data(data: Any) -> tuple[Any, int, Any]:
    """Normalize ``data`` to (sliceable data, n, fingerprint function)."""
    if isinstance(data, (str, bytes)):
        raise TypeError("data is a single string; pass a list of strings")
    module = type(data).__module__
    if module.startswith("pandas"):
        if isinstance(data, pd.DataFrame):
            return data, len(data), fingerprint_frame
        if isinstance(data, pd.Series):
            data = data.to_numpy()
    if hasattr(data, "tocsr"):
        raise TypeError("sparse input is not supported; pass a dense array")
    if isinstance(data, np.ndarray) and data.dtype.kind not in "OUS":
        if data.ndim < 1 or data.shape[0] == 0:
            raise ValueError(f"no samples to embed (array of shape {data.shape})")
        return data, data.shape[0], fingerprint_array
    if isinstance(data, np.ndarray) or isinstance(data, (list, tuple)):
        items = data.tolist() if isinstance(data, np.ndarray) else list(data)
        if not items:
            raise ValueError("no samples to embed (empty sequence)")
        if all(isinstance(t, str) for t in items):
            return items, len(items), fingerprint_texts
        if any(isinstance(t, str) for t in items):
            bad = next(type(t).__name__ for t in items if not isinstance(t, str))
            raise TypeError(f"texts must all be str, found {bad}")
        array = np.asarray(items)
        return _as_data(array)
    raise TypeError(
        f"cannot embed {type(data).__name__}: pass an array, a sequence of str or a DataFrame"
    )


def _slice(data: Any, start: int, stop: int) -> Any:
    return data.iloc[start:stop] if hasattr(data, "iloc") else data[start:stop]


@contextlib.contextmanager
def _progress(show: bool, total: int, what: str) -> Iterator[Any]:
    if not show:
        yield None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    ) as bar:
        yield bar, bar.add_task(what, total=total)


def embed(
    encoder: Any,
    data: Any,
    *,
    cache: EmbeddingCache | bool | None = True,
    progress: bool = True,
    batch_size: int | None = None,
) -> np.ndarray:
    """Embed ``data`` in batches, or return the cached embeddings.

    Parameters
    ----------
    encoder : encoder or anything :func:`as_encoder` accepts
    data : numpy.ndarray, sequence of str or pandas.DataFrame
        Arrays feed :class:`TorchEncoder` (rows are samples), texts
        :class:`SentenceTransformerEncoder`; a scikit-learn encoder takes any of them.
    cache : EmbeddingCache, bool or None, default=True
        True: the default cache (:func:`default_cache_dir`); an :class:`EmbeddingCache`:
        that one; False or None: neither read nor write.
    progress : bool, default=True
        Show a progress bar (on stderr) when there are several batches to encode.
    batch_size : int, optional
        Samples per ``encode`` call; the encoder's ``batch_size`` by default.

    Returns
    -------
    numpy.ndarray
        float32, shape ``(n_samples, d)``. The key is the pair (encoder fingerprint,
        data fingerprint), so changing the model, its settings or any sample embeds anew.

    Examples
    --------
    >>> X = embed(SentenceTransformerEncoder(), ["a cat", "a dog"])  # doctest: +SKIP
    >>> X.shape  # doctest: +SKIP
    (2, 384)
    """
    enc = as_encoder(encoder)
    values, n, fingerprint = _as_data(data)
    size = check_batch_size(enc.batch_size if batch_size is None else batch_size)
    store = resolve_cache(cache)
    key = None
    if store is not None:
        key = store.key(enc.fingerprint, fingerprint(values))
        hit = store.load(key)
        if hit is not None and hit.shape[0] == n:
            return hit
    # Encoders that pad a batch to its longest input (transformers) declare a sort key:
    # encoding inputs of similar length together wastes less work on padding.
    sort_key = getattr(enc, "sort_key", None)
    order = None
    if sort_key is not None and isinstance(values, list):
        order = np.argsort([-sort_key(v) for v in values], kind="stable")
        values = [values[i] for i in order]
    starts = range(0, n, size)
    out: np.ndarray | None = None
    with _progress(progress and len(starts) > 1, n, f"embedding {n} samples") as bar:
        for start in starts:
            stop = min(start + size, n)
            part = np.asarray(enc.encode(_slice(values, start, stop)))
            if part.ndim != 2 or part.shape[0] != stop - start:
                raise ValueError(
                    f"encoder returned shape {part.shape} for a batch of {stop - start} samples"
                )
            if out is None:
                out = np.empty((n, part.shape[1]), dtype=np.float32)
            elif part.shape[1] != out.shape[1]:
                raise ValueError(
                    f"encoder returned {part.shape[1]} dimensions, earlier batches {out.shape[1]}"
                )
            out[start:stop] = part
            if bar is not None:
                bar[0].advance(bar[1], stop - start)
    assert out is not None  # n >= 1
    if order is not None:
        unsorted = np.empty_like(out)
        unsorted[order] = out
        out = unsorted
    if not np.isfinite(out).all():
        raise ValueError("the encoder produced NaN or infinite embeddings")
    if store is not None and key is not None:
        store.save(key, out)
    return out


# --------------------------------------------------------------------------- sklearn


class Embedder(TransformerMixin, BaseEstimator):
    """Scikit-learn step that replaces raw inputs by frozen-encoder embeddings.

    ``fit`` trains nothing (the encoder is frozen); ``transform`` calls :func:`embed`,
    so repeated transforms of the same data come from the cache. ``clone`` shares the
    encoder instead of copying it, so a fitted scikit-learn transformer stays fitted.

    Parameters
    ----------
    encoder : encoder, torch.nn.Module, path, fitted transformer or None, default=None
        Anything :func:`as_encoder` accepts; None is all-MiniLM-L6-v2.
    cache : EmbeddingCache, bool or None, default=True
        See :func:`embed`.
    progress : bool, default=False
        Show a progress bar while embedding.
    batch_size : int, optional
        See :func:`embed`.

    Attributes
    ----------
    encoder_ : Encoder
        The wrapped encoder.

    Examples
    --------
    >>> from sklearn.pipeline import make_pipeline
    >>> from salutary import LogisticModel
    >>> model = make_pipeline(Embedder(), LogisticModel(l2=50))  # doctest: +SKIP
    >>> model.fit(texts, labels).predict(["free money, click here"])  # doctest: +SKIP
    """

    def __init__(
        self,
        encoder: Any = None,
        *,
        cache: EmbeddingCache | bool | None = True,
        progress: bool = False,
        batch_size: int | None = None,
    ) -> None:
        self.encoder = encoder
        self.cache = cache
        self.progress = progress
        self.batch_size = batch_size

    def __sklearn_clone__(self) -> Embedder:
        """Unfitted copy that shares the encoder.

        The encoder is frozen, so ``clone`` (used by pipelines, cross-validation and
        :class:`~salutary.SalutaryLabeler`) neither copies it nor resets a fitted
        scikit-learn transformer to its unfitted state, as a plain clone would.
        """
        return type(self)(**self.get_params(deep=False))

    def fit(self, X: Any, y: Any = None) -> Embedder:
        """Wrap the encoder; nothing is trained.

        Parameters
        ----------
        X : ignored
        y : ignored

        Returns
        -------
        self : Embedder
        """
        self.encoder_ = as_encoder(self.encoder)
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Embed ``X``.

        Parameters
        ----------
        X : array, sequence of str or DataFrame

        Returns
        -------
        numpy.ndarray
            float32, shape ``(n_samples, d)``.
        """
        check_is_fitted(self, "encoder_")
        return embed(
            self.encoder_, X, cache=self.cache, progress=self.progress, batch_size=self.batch_size
        )

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True  # texts for sentence encoders
        tags.requires_fit = True
        return tags


def embedding_surrogate(
    encoder: Any = None,
    *,
    l2: float = 50.0,
    cache: EmbeddingCache | bool | None = True,
    progress: bool = False,
    batch_size: int | None = None,
) -> Pipeline:
    """The convex surrogate of a frozen network: ``Embedder`` then ``LogisticModel``.

    Parameters
    ----------
    encoder : see :class:`Embedder`
    l2 : float, default=50.0
        Penalty of the logistic model (the paper's setting).
    cache, progress, batch_size : see :class:`Embedder`

    Returns
    -------
    sklearn.pipeline.Pipeline
        Steps ``embedder`` and ``model``; the model is warm-started between fits.
    """
    return Pipeline(
        [
            (
                "embedder",
                Embedder(encoder, cache=cache, progress=progress, batch_size=batch_size),
            ),
            ("model", LogisticModel(l2=l2, warm_start=True)),
        ]
    )


def surrogate_influence(
    pipeline: Pipeline,
    X_train: Any,
    X_val: Any,
    y_val: np.ndarray,
    X_pool: Any,
    **kwargs: Any,
) -> np.ndarray:
    """Influence matrix of a fitted surrogate pipeline, on raw inputs.

    All steps but the last transform the inputs (embeddings come from the cache); the
    last must be an L2 logistic model fitted on the transformed ``X_train``.

    Parameters
    ----------
    pipeline : sklearn.pipeline.Pipeline
        Fitted, e.g. by ``embedding_surrogate(encoder).fit(X_train, y_train)``.
    X_train, X_val, y_val, X_pool
        Raw inputs, as for :func:`salutary.influence_matrix`.
    **kwargs
        Passed to :func:`salutary.influence_matrix` (``sample_weight``, ``solver``,
        ``tol``).

    Returns
    -------
    numpy.ndarray of shape (n_pool, n_classes)
    """
    head = pipeline[:-1]
    model = pipeline[-1]
    features = [np.asarray(head.transform(X), dtype=np.float64) for X in (X_train, X_val, X_pool)]
    return influence_matrix(model, features[0], features[1], y_val, features[2], **kwargs)
