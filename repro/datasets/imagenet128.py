"""ImageNet128: ILSVRC2012 images resized to 128×128 (there is no official downsampled release).

Images are read from ``<root>/imagenet128/train/`` and ``<root>/imagenet128/val/`` (any
subfolders; ``.jpeg``, ``.jpg`` and ``.png`` in any case), in sorted path order. Each whole image
is converted to RGB and resized to 128×128 with PIL's BOX filter, without cropping: this keeps
the whole scene at the cost of squashing non-square aspect ratios. The first
full pass caches the result as ``<root>/imagenet128/{split}_128.npy``; later loads memory-map
that file. Delete it to rebuild after changing the images.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from repro.datasets.errors import CorruptDatasetError, DatasetNotFoundError, describe
from repro.datasets.splits import ImageSplits
from repro.files import atomic_destination

SIDE = 128
_EXTENSIONS = frozenset({".jpeg", ".jpg", ".png"})


def load_imagenet128(
    *,
    root: Path,
    download: bool = True,
    limit_train: int | None = None,
    limit_test: int | None = None,
) -> ImageSplits:
    """Load ImageNet128 as 3×128×128 uint8 images, resizing and caching on first use.

    Args:
        root: Data root holding ``imagenet128/``.
        download: Ignored: ILSVRC2012 requires a login, so the images are user-provided.
        limit_train: Keep only the first this many training images. Without a cache, only those
            are resized and nothing is cached.
        limit_test: The same for the validation split (used as test).

    Returns:
        The splits; ``source`` is the ``imagenet128`` folder.

    Raises:
        DatasetNotFoundError: A split has neither a cache nor any image.
        CorruptDatasetError: An image cannot be decoded, or a cache has the wrong layout.
    """
    folder = root / "imagenet128"
    return ImageSplits(
        name="imagenet128",
        train=_load_split(folder, "train", limit_train),
        test=_load_split(folder, "val", limit_test),
        source=str(folder),
    )


def _load_split(folder: Path, split: str, limit: int | None) -> torch.Tensor:
    cache = folder / f"{split}_{SIDE}.npy"
    if not cache.is_file():
        images = _image_files(folder / split)
        if not images:
            raise DatasetNotFoundError(
                f"ImageNet128 {split} images",
                folder / split,
                f"put the ILSVRC2012 {split} images (JPEG/PNG, any subfolders) there; they are "
                f"resized to {SIDE}×{SIDE} once and cached as {cache}",
            )
        if limit is not None and limit < len(images):
            selected = images[:limit]
            out = np.empty((len(selected), 3, SIDE, SIDE), dtype=np.uint8)
            return torch.from_numpy(_resize_into(out, selected))
        _write_cache(cache, images)
    # Copy-on-write mapping: pages load lazily and the array is writable, as torch expects.
    try:
        cached = np.load(cache, mmap_mode="c")
    except (OSError, ValueError) as exc:
        raise CorruptDatasetError(cache, f"not a .npy array ({exc}); delete it to rebuild") from exc
    if cached.dtype != np.uint8 or cached.ndim != 4 or cached.shape[1:] != (3, SIDE, SIDE):
        raise CorruptDatasetError(
            cache, f"expected N×3×{SIDE}×{SIDE} uint8, got {describe(cached)}; delete it to rebuild"
        )
    return torch.from_numpy(cached[:limit])


def _image_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(
        path for path in folder.rglob("*") if path.suffix.lower() in _EXTENSIONS and path.is_file()
    )


def _write_cache(cache: Path, images: list[Path]) -> None:
    # Renamed into place only when complete, so an interrupted pass never leaves a cache that
    # looks valid.
    with atomic_destination(cache) as temporary:
        # Streams into a file-backed array: the full train split (~63 GB) would not fit in memory.
        out = np.lib.format.open_memmap(
            temporary, mode="w+", dtype=np.uint8, shape=(len(images), 3, SIDE, SIDE)
        )
        _resize_into(out, images).flush()
        del out  # unmap before the rename; Windows refuses to replace a mapped file


def _resize_into(out: np.ndarray, images: list[Path]) -> np.ndarray:
    for index, path in enumerate(images):
        out[index] = _resize(path)
    return out


def _resize(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as image:
            rgb = image.convert("RGB").resize((SIDE, SIDE), Image.Resampling.BOX)
    except (OSError, ValueError) as exc:  # UnidentifiedImageError is an OSError
        raise CorruptDatasetError(path, f"cannot decode image ({exc})") from exc
    return np.asarray(rgb).transpose(2, 0, 1)
