"""Fingerprints: SHA-256 digests that identify data and encoders in the embedding cache.

Changing any of these byte streams changes every cache key: they must stay as they are.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from salutary._optional import import_optional

if TYPE_CHECKING:
    import torch

__all__ = [
    "digest",
    "directory_digest",
    "fingerprint_array",
    "fingerprint_frame",
    "fingerprint_module",
    "fingerprint_texts",
]


def digest(*parts: bytes | str) -> hashlib._Hash:
    """SHA-256 of length-prefixed parts (``str`` as UTF-8), open to further ``update``."""
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
    h = digest("array", a.dtype.str, repr(a.shape))
    h.update(np.ascontiguousarray(a).reshape(-1).view(np.uint8).data)  # any dtype, no copy
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
    h = digest("texts", str(len(texts)))
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
    h = digest("frame", repr([(str(c), str(t)) for c, t in frame.dtypes.items()]))
    rows = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    h.update(np.ascontiguousarray(rows).data.cast("B"))
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
    torch = import_optional("torch", what="fingerprint_module")
    cls = type(module)
    h = digest("torch", f"{cls.__module__}.{cls.__qualname__}", repr(module))
    for name, tensor in module.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        h.update(digest(name, str(t.dtype), repr(tuple(t.shape))).digest())
        # Reinterpret as bytes: works for every dtype, including bfloat16.
        h.update(memoryview(t.reshape(-1).view(torch.uint8).numpy()).cast("B"))
    return h.hexdigest()


_DIR_DIGESTS: dict[tuple, str] = {}


def directory_digest(path: Path) -> str:
    """SHA-256 of every file under ``path`` (names and contents), memoized by size/mtime."""
    files = sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    stamp = tuple((str(p.relative_to(path)), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    memo = (str(path.resolve()), stamp)
    if memo not in _DIR_DIGESTS:
        h = digest("directory")
        for p in files:
            h.update(digest(str(p.relative_to(path).as_posix())).digest())
            with p.open("rb") as fh:
                for block in iter(functools.partial(fh.read, 1 << 20), b""):
                    h.update(block)
        _DIR_DIGESTS[memo] = h.hexdigest()
    return _DIR_DIGESTS[memo]
