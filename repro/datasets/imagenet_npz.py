"""Downsampled ImageNet (32×32 and 64×64), as released in ``.npz`` batches.

Each file's ``data`` array is N × (3·H·W) uint8 in channel-planar order. The train split is
``train_data_batch_1.npz`` … ``train_data_batch_10.npz`` and the validation split (used as test)
is ``val_data.npz``. The archives unpack into differently named folders
(``Imagenet32_train_npz/``, ``Imagenet64_train_part1_npz/``, …), so files are found by name
anywhere below ``<root>/imagenet{size}/``.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from repro.datasets.errors import (
    AmbiguousDatasetError,
    CorruptDatasetError,
    DatasetNotFoundError,
    describe,
)
from repro.datasets.splits import ImageSplits, concat_first

_TRAIN_BATCHES = range(1, 11)
_TRAIN_TEMPLATE = "train_data_batch_{}.npz"
# Numeric order: batch 10 comes after batch 9, not after batch 1.
_TRAIN_FILES = tuple(_TRAIN_TEMPLATE.format(index) for index in _TRAIN_BATCHES)
_TEST_FILES = ("val_data.npz",)


def load_downsampled_imagenet(
    *,
    size: int,
    root: Path,
    download: bool = True,
    limit_train: int | None = None,
    limit_test: int | None = None,
) -> ImageSplits:
    """Load ImageNet{size} as 3×size×size uint8 images.

    Args:
        size: Image side of the release, 32 or 64.
        root: Data root holding ``imagenet{size}/``.
        download: Ignored: image-net.org requires a login, so the files are user-provided.
        limit_train: Keep only the first this many training images (later files are not read).
        limit_test: Keep only the first this many validation images.

    Returns:
        The splits; ``source`` is the ``imagenet{size}`` folder.

    Raises:
        DatasetNotFoundError: Any of the eleven files is missing.
        CorruptDatasetError: A file is not an ``.npz`` with N×(3·size·size) uint8 ``data``.
        AmbiguousDatasetError: A file name occurs more than once below the folder.
    """
    folder = root / f"imagenet{size}"
    paths = _locate(folder, size)
    return ImageSplits(
        name=f"imagenet{size}",
        train=torch.from_numpy(concat_first(_read(paths, _TRAIN_FILES, size), limit_train)),
        test=torch.from_numpy(concat_first(_read(paths, _TEST_FILES, size), limit_test)),
        source=str(folder),
    )


def _locate(folder: Path, size: int) -> dict[str, Path]:
    found: dict[str, list[Path]] = {}
    if folder.is_dir():
        for path in sorted(folder.rglob("*.npz")):
            found.setdefault(path.name, []).append(path)
    batches = [str(index) for index in _TRAIN_BATCHES if _TRAIN_TEMPLATE.format(index) not in found]
    # Shell brace style keeps the message short: train_data_batch_{1,2,10}.npz.
    missing = [_TRAIN_TEMPLATE.format("{" + ",".join(batches) + "}")] if batches else []
    missing += [name for name in _TEST_FILES if name not in found]
    if missing:
        raise DatasetNotFoundError(
            f"ImageNet{size} files {' and '.join(missing)}",
            folder,
            f"download the Imagenet{size} train and val npz archives (Downsampled ImageNet, "
            f"image-net.org) and extract them into {folder}",
        )
    duplicated = {name: paths for name, paths in found.items() if len(paths) > 1}
    if duplicated:
        name, paths = next(iter(duplicated.items()))
        raise AmbiguousDatasetError(f"ImageNet{size}", name, paths)
    return {name: paths[0] for name, paths in found.items()}


def _read(paths: dict[str, Path], names: tuple[str, ...], size: int) -> Iterator[np.ndarray]:
    width = 3 * size * size
    for name in names:
        path = paths[name]
        try:
            with np.load(path) as archive:
                data = archive["data"]
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            raise CorruptDatasetError(path, f"cannot read the 'data' array ({exc})") from exc
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != width:
            raise CorruptDatasetError(
                path, f"expected 'data' as N×{width} uint8, got {describe(data)}"
            )
        yield data.reshape(-1, 3, size, size)
