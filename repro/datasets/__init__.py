"""Datasets of the MRCNF experiments as uint8 image tensors.

``load_dataset(name, ...)`` returns :class:`ImageSplits` for any name in ``DATASETS``: ``mnist``,
``cifar10``, ``imagenet32``, ``imagenet64`` and ``imagenet128``. Files live under
``repro.paths.data_root()`` unless a root is given; see each loader module for its layout.
"""

from __future__ import annotations

from repro.datasets.errors import CorruptDatasetError, DatasetNotFoundError
from repro.datasets.registry import (
    DATASETS,
    SHAPES,
    TRAIN_IMAGES,
    DatasetLoader,
    UnknownDatasetError,
    image_shape,
    load_dataset,
    load_experiment_data,
)
from repro.datasets.splits import ImageSplits
from repro.datasets.transforms import downsample, random_horizontal_flip

__all__ = [
    "DATASETS",
    "SHAPES",
    "TRAIN_IMAGES",
    "CorruptDatasetError",
    "DatasetLoader",
    "DatasetNotFoundError",
    "ImageSplits",
    "UnknownDatasetError",
    "downsample",
    "image_shape",
    "load_dataset",
    "load_experiment_data",
    "random_horizontal_flip",
]
