"""TinyImageNet: 64×64 RGB images of 200 ImageNet classes, 100,000 train and 10,000 validation.

Read from ``<root>/tiny-imagenet-200/``, the folder ``tiny-imagenet-200.zip`` unpacks to. The
training split is ``train/<wnid>/images/*.JPEG`` in sorted path order. The test split is the
validation split (``val/images/*.JPEG``, 50 per class), in the order ``val/val_annotations.txt``
lists it (``val_0.JPEG`` first): a decision (docs/method.md §8), since the archive's own
``test/`` images carry no labels and the released validation split has a fixed index. A split
limited to 0 images is not read. Grey JPEGs (the archive has some) become RGB by repeating the
channel. Nothing is downloaded: no checksum of the archive is published to check one against.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from repro.datasets.errors import CorruptDatasetError, DatasetNotFoundError
from repro.datasets.splits import ImageSplits

FOLDER = "tiny-imagenet-200"
URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
ANNOTATIONS = Path("val") / "val_annotations.txt"
SIDE = 64


def load_tiny_imagenet(
    *,
    root: Path,
    download: bool = True,
    limit_train: int | None = None,
    limit_test: int | None = None,
) -> ImageSplits:
    """Load TinyImageNet as 3×64×64 uint8 images (validation split as test).

    Args:
        root: Data root holding ``tiny-imagenet-200/``.
        download: Ignored: the archive is user-provided (see the module docstring).
        limit_train: Keep only the first this many training images (0: not read).
        limit_test: Keep only the first this many validation images (0: not read).

    Returns:
        The splits; ``source`` is the ``tiny-imagenet-200`` folder.

    Raises:
        DatasetNotFoundError: The images of a split that is read, or the validation index, are
            missing.
        CorruptDatasetError: An image cannot be decoded or is not 64×64.
    """
    folder = root / FOLDER
    return ImageSplits(
        name="tinyimagenet",
        train=_decode(_train_files, folder, limit_train),
        test=_decode(_validation_files, folder, limit_test),
        source=str(folder),
    )


def _missing(what: str, folder: Path) -> DatasetNotFoundError:
    return DatasetNotFoundError(
        f"TinyImageNet {what}",
        folder,
        f"download {URL} and extract it into {folder.parent} (it unpacks to {FOLDER}/)",
    )


def _train_files(folder: Path) -> list[Path]:
    files = sorted(folder.glob("train/*/images/*.JPEG"))
    if not files:
        raise _missing("training images (train/<wnid>/images/*.JPEG)", folder)
    return files


def _validation_files(folder: Path) -> list[Path]:
    index = folder / ANNOTATIONS
    try:
        lines = index.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise _missing(f"validation index ({ANNOTATIONS})", folder) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CorruptDatasetError(index, f"cannot read the index ({exc})") from exc
    # Each line: file name, wnid, bounding box, tab-separated.
    return [folder / "val" / "images" / line.split("\t", 1)[0] for line in lines if line.strip()]


def _decode(listing: Callable[[Path], list[Path]], folder: Path, limit: int | None) -> torch.Tensor:
    if limit == 0:
        return torch.empty((0, 3, SIDE, SIDE), dtype=torch.uint8)
    files = listing(folder)[:limit]
    out = np.empty((len(files), 3, SIDE, SIDE), dtype=np.uint8)
    for index, path in enumerate(files):
        out[index] = _image(path, folder)
    return torch.from_numpy(out)


def _image(path: Path, folder: Path) -> np.ndarray:
    if not path.is_file():
        raise _missing(f"image {path.name} (listed in {ANNOTATIONS})", folder)
    try:
        with Image.open(path) as image:
            rgb = image.convert("RGB")
    except (OSError, ValueError) as exc:  # UnidentifiedImageError is an OSError
        raise CorruptDatasetError(path, f"cannot decode image ({exc})") from exc
    if rgb.size != (SIDE, SIDE):
        raise CorruptDatasetError(path, f"expected a {SIDE}×{SIDE} image, got {rgb.size}")
    return np.asarray(rgb).transpose(2, 0, 1)
