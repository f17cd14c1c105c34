"""The entry points that read a registered dataset and bring it to an experiment's size."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from repro.datasets.errors import DatasetSettingError
from repro.datasets.registry import dataset_spec
from repro.datasets.splits import ImageSplits
from repro.datasets.transforms import check_downsample_size, downsample
from repro.paths import data_root

if TYPE_CHECKING:
    from repro.config import DataConfig


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

    Settings are checked before any file is read.

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
        DatasetSettingError: A limit is negative, or ``image_size`` is larger than native or
            does not divide it by a power of two (a ``ValueError``).
        DatasetNotFoundError: The dataset is absent and could not be fetched.
        CorruptDatasetError: A dataset file is malformed.
        AmbiguousDatasetError: A dataset file occurs twice in its folder.
    """
    spec = dataset_spec(name)
    for option, limit in (("limit_train", limit_train), ("limit_test", limit_test)):
        if limit is not None and limit < 0:
            raise DatasetSettingError(
                f"{option} must be non-negative, got {limit}; use 0 or more, or none for all"
            )
    if image_size is not None:
        check_downsample_size(spec.shape[-1], image_size)
    splits = spec.load(
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
