"""Name → loader registry and the single entry point ``load_dataset``."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Protocol

from repro.config import DataConfig
from repro.datasets.cifar10 import load_cifar10
from repro.datasets.imagenet128 import load_imagenet128
from repro.datasets.imagenet_npz import load_downsampled_imagenet
from repro.datasets.mnist import load_mnist
from repro.datasets.splits import ImageSplits
from repro.datasets.transforms import downsample
from repro.paths import data_root


class DatasetLoader(Protocol):
    """Reads one dataset at its native resolution; every option is keyword-only."""

    def __call__(
        self,
        *,
        root: Path,
        download: bool = True,
        limit_train: int | None = None,
        limit_test: int | None = None,
    ) -> ImageSplits: ...


DATASETS: dict[str, DatasetLoader] = {
    "mnist": load_mnist,
    "cifar10": load_cifar10,
    "imagenet32": partial(load_downsampled_imagenet, size=32),
    "imagenet64": partial(load_downsampled_imagenet, size=64),
    "imagenet128": load_imagenet128,
}


# Facts about each dataset's training split: image shape (C, H, W) at native size, image count.
SHAPES: dict[str, tuple[int, int, int]] = {
    "mnist": (1, 32, 32),  # 28×28 padded to 32
    "cifar10": (3, 32, 32),
    "imagenet32": (3, 32, 32),
    "imagenet64": (3, 64, 64),
    "imagenet128": (3, 128, 128),
}
TRAIN_IMAGES: dict[str, int] = {
    "mnist": 50_000,
    "cifar10": 50_000,
    "imagenet32": 1_281_167,
    "imagenet64": 1_281_167,
    "imagenet128": 1_281_167,
}


class UnknownDatasetError(KeyError):
    """A dataset name that is not in ``DATASETS``."""

    def __str__(self) -> str:
        # KeyError would print the repr of its argument, quotes included.
        return str(self.args[0])


def image_shape(data: DataConfig) -> tuple[int, int, int]:
    """C×H×W of the images an experiment's ``data`` section yields (after ``image_size``)."""
    channels, height, width = SHAPES[data.dataset]
    if data.image_size is None:
        return channels, height, width
    return channels, data.image_size, data.image_size


def load_experiment_data(data: DataConfig, *, max_train: int | None = None) -> ImageSplits:
    """The splits an experiment's ``data`` section names (size and limits applied).

    Args:
        data: The experiment's data settings.
        max_train: A further cap on the training images (e.g. FID reference images).
    """
    limits = [n for n in (data.limit_train, max_train) if n is not None]
    return load_dataset(
        data.dataset,
        image_size=data.image_size,
        limit_train=min(limits, default=None),
        limit_test=data.limit_test,
    )


def load_dataset(
    name: str,
    *,
    root: Path | None = None,
    image_size: int | None = None,
    limit_train: int | None = None,
    limit_test: int | None = None,
    download: bool = True,
) -> ImageSplits:
    """Load a registered dataset, optionally truncated and downsampled.

    Args:
        name: A key of ``DATASETS``.
        root: Data root; defaults to ``repro.paths.data_root()``.
        image_size: Side length to downsample to by exact block averaging; ``None`` keeps the
            native size.
        limit_train: Keep only the first this many training images (applied before
            downsampling, and loaders skip files past it).
        limit_test: Keep only the first this many test images.
        download: Allow fetching missing data over the network where the dataset supports it.

    Returns:
        The splits at the requested size.

    Raises:
        UnknownDatasetError: ``name`` is not registered (a ``KeyError``).
        ValueError: A limit is negative, or ``image_size`` is larger than native or does not
            divide it by a power of two.
        DatasetNotFoundError: The dataset is absent and could not be fetched.
        CorruptDatasetError: A dataset file is malformed.
    """
    if name not in DATASETS:
        raise UnknownDatasetError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    for option, limit in (("limit_train", limit_train), ("limit_test", limit_test)):
        if limit is not None and limit < 0:
            raise ValueError(f"{option} must be non-negative, got {limit}")
    splits = DATASETS[name](
        root=data_root() if root is None else root,
        download=download,
        limit_train=limit_train,
        limit_test=limit_test,
    )
    if image_size is None:
        return splits
    return ImageSplits(
        name=splits.name,
        train=downsample(splits.train, image_size),
        test=downsample(splits.test, image_size),
        source=splits.source,
    )
