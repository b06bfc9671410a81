"""The embedding cache on disk: one ``.npz`` file per (encoder, data) pair."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from salutary.embeddings._fingerprint import digest

__all__ = ["CACHE_ENV", "DEFAULT_CACHE_DIR", "EmbeddingCache", "default_cache_dir", "resolve_cache"]

CACHE_ENV = "SALUTARY_CACHE_DIR"
"""Environment variable naming the cache root (default ``~/.cache/salutary``)."""

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
        return digest(_CACHE_FORMAT, encoder_fingerprint, data_fingerprint).hexdigest()

    def path(self, key: str) -> Path:
        """Return the file of ``key`` (which need not exist)."""
        invalid = f"invalid cache key {key!r}: expected 64 hexadecimal digits"
        if not isinstance(key, str):  # callers may pass anything
            raise ValueError(invalid)
        if not _KEY_RE.fullmatch(key):
            raise ValueError(invalid)
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


def resolve_cache(cache: EmbeddingCache | bool | None) -> EmbeddingCache | None:
    """The cache that ``cache`` means: True the default one, False or None none."""
    if cache is None or cache is False:
        return None
    if cache is True:
        return EmbeddingCache()
    if isinstance(cache, EmbeddingCache):
        return cache
    raise TypeError(f"cache must be an EmbeddingCache, True, False or None, not {cache!r}")
