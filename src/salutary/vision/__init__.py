"""The image datasets, and a small CNN trained on one to embed the other.

No pretrained image network can be installed here, so the image benchmarks use a
stand-in for one: a two-block convolutional network trained in plain PyTorch on one of
the two 28x28 grey-level datasets (MNIST, Fashion-MNIST), frozen, and used without its
classification head to embed the *other* dataset. The convex surrogate (an L2 logistic
model) then works on these embeddings, as the paper does with frozen deep features.

* :func:`read_images` reads the raw pixels of either dataset from its installed files
  (:func:`images_installed` checks for them without reading), and
  :func:`load_image_split` gives their official training and test split;
* :func:`train_cnn` trains the network on a source's 60,000 training images (or on any
  :class:`ImageSplit`), deterministically for a seed, and caches the weights under
  ``<cache>/models/`` (the same cache root as :class:`salutary.embeddings.EmbeddingCache`);
* :func:`cnn_encoder` wraps the frozen trunk as a :class:`salutary.embeddings.TorchEncoder`;
* :func:`embedded_dataset` embeds the target's 70,000 images with the network trained on
  the other dataset, through :func:`salutary.embeddings.embed` and its cache.

The package's modules: ``_images`` (the files, the readers, :class:`ImageSplit`) and
``_cnn`` (the network, its training and its cache). torch is imported only inside the
functions that need it, so ``import salutary.vision`` is light.
"""

from salutary.vision._cnn import (
    CNN_SOURCE,
    DEFAULT_BATCH_SIZE,
    DEFAULT_EPOCHS,
    CNNConfig,
    cnn_encoder,
    embedded_dataset,
    model_cache_dir,
    train_cnn,
)
from salutary.vision._images import (
    FASHION_MNIST_DIR,
    FASHION_MNIST_ENV,
    FASHION_MNIST_INSTALL,
    IMAGE_SIDE,
    IMAGE_SOURCES,
    MNIST_INSTALL,
    N_TRAIN_IMAGES,
    ImageSplit,
    fashion_mnist_paths,
    images_installed,
    load_image_split,
    mnist_path,
    read_images,
)

__all__ = [
    "CNNConfig",
    "CNN_SOURCE",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_EPOCHS",
    "FASHION_MNIST_DIR",
    "FASHION_MNIST_ENV",
    "FASHION_MNIST_INSTALL",
    "IMAGE_SIDE",
    "IMAGE_SOURCES",
    "MNIST_INSTALL",
    "N_TRAIN_IMAGES",
    "ImageSplit",
    "cnn_encoder",
    "embedded_dataset",
    "fashion_mnist_paths",
    "images_installed",
    "load_image_split",
    "mnist_path",
    "model_cache_dir",
    "read_images",
    "train_cnn",
]
