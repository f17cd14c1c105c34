"""Datasets of the MRCNF experiments as uint8 image tensors.

``load_dataset(name, ...)`` returns :class:`ImageSplits` for any name in ``DATASETS``: ``mnist``,
``cifar10``, ``imagenet32``, ``imagenet64``, ``imagenet128``, and the out-of-distribution sets
``svhn`` and ``tinyimagenet``; ``DATASETS[name]`` is the :class:`DatasetSpec` with its display
name, shape, image count and loader. Files live under
``repro.paths.data_root()`` unless a root is given; see each loader module for its layout.

Importing this package does not import torch: the names that need it are imported on first
access (PEP 562), so code reading only the registry (tables) stays torch-free.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from repro.datasets.errors import (
    AmbiguousDatasetError,
    CorruptDatasetError,
    DatasetNotFoundError,
    DatasetSettingError,
    UnknownDatasetError,
)
from repro.datasets.registry import DATASETS, DatasetLoader, DatasetSpec, dataset_spec, image_shape

if TYPE_CHECKING:
    from repro.datasets.load import load_dataset, load_experiment_data
    from repro.datasets.splits import ImageSplits
    from repro.datasets.transforms import downsample, random_horizontal_flip

# Public names that need torch → the submodule defining each, imported on first access.
_LAZY = {
    "ImageSplits": "repro.datasets.splits",
    "downsample": "repro.datasets.transforms",
    "load_dataset": "repro.datasets.load",
    "load_experiment_data": "repro.datasets.load",
    "random_horizontal_flip": "repro.datasets.transforms",
}

__all__ = [
    "DATASETS",
    "AmbiguousDatasetError",
    "CorruptDatasetError",
    "DatasetLoader",
    "DatasetNotFoundError",
    "DatasetSettingError",
    "DatasetSpec",
    "ImageSplits",
    "UnknownDatasetError",
    "dataset_spec",
    "downsample",
    "image_shape",
    "load_dataset",
    "load_experiment_data",
    "random_horizontal_flip",
]


def __getattr__(name: str) -> object:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
