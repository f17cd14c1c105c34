"""CIFAR10 in torchvision's ``cifar-10-batches-py`` layout: 50k train and 10k test 32×32 RGB images.

Each batch file is a pickled dict whose ``b"data"`` is N×3072 uint8 in channel-planar order (1024
red, then green, then blue values per image). The files are read here; torchvision is used only to
download and extract the archive when the folder is missing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from repro.datasets.errors import CorruptDatasetError, DatasetNotFoundError, describe
from repro.datasets.safe_pickle import unpickle
from repro.datasets.splits import ImageSplits, concat_first
from repro.network import socket_timeout

FOLDER = "cifar-10-batches-py"
_TRAIN_FILES = tuple(f"data_batch_{index}" for index in range(1, 6))
_TEST_FILES = ("test_batch",)
_SIDE = 32
_SOCKET_TIMEOUT_S = 10.0


def load_cifar10(
    *,
    root: Path,
    download: bool = True,
    limit_train: int | None = None,
    limit_test: int | None = None,
) -> ImageSplits:
    """Load CIFAR10 as 3×32×32 uint8 images.

    Args:
        root: Data root holding ``cifar-10-batches-py/``.
        download: Let torchvision download and extract the archive if any batch file is missing.
        limit_train: Keep only the first this many training images (later batches are not read).
        limit_test: Keep only the first this many test images.

    Returns:
        The splits; ``source`` is the batch folder.

    Raises:
        DatasetNotFoundError: Batch files are missing and could not be downloaded.
        CorruptDatasetError: A batch file is not a pickled dict with N×3072 uint8 ``b"data"``.
    """
    folder = root / FOLDER
    failure = "downloads are disabled"
    if not _is_complete(folder) and download:
        failure = _download(root)
    if not _is_complete(folder):
        raise DatasetNotFoundError(
            "CIFAR10",
            folder,
            f"{failure}; run once with internet access (torchvision downloads it) "
            f"or extract cifar-10-python.tar.gz into {root}",
        )
    return ImageSplits(
        name="cifar10",
        train=torch.from_numpy(concat_first(_read_batches(folder, _TRAIN_FILES), limit_train)),
        test=torch.from_numpy(concat_first(_read_batches(folder, _TEST_FILES), limit_test)),
        source=str(folder),
    )


def _is_complete(folder: Path) -> bool:
    return all((folder / name).is_file() for name in _TRAIN_FILES + _TEST_FILES)


def _download(root: Path) -> str:
    """Fetch the archive with torchvision; return what to report if the files are still missing."""
    # Imported here: torchvision adds about a second to start-up and only downloads need it.
    from torchvision.datasets import CIFAR10

    try:
        with socket_timeout(_SOCKET_TIMEOUT_S):
            CIFAR10(root, train=True, download=True)
    except (OSError, RuntimeError) as exc:
        return f"download failed ({exc})"
    return "torchvision's download finished without them"


def _read_batches(folder: Path, names: tuple[str, ...]) -> Iterator[np.ndarray]:
    for name in names:
        path = folder / name
        with path.open("rb") as stream:
            batch = unpickle(stream, encoding="bytes", origin=path)
        data = batch.get(b"data") if isinstance(batch, dict) else None
        if not (
            isinstance(data, np.ndarray)
            and data.dtype == np.uint8
            and data.ndim == 2
            and data.shape[1] == 3 * _SIDE * _SIDE
        ):
            raise CorruptDatasetError(
                path, f"expected b'data' as N×3072 uint8, got {describe(data)}"
            )
        yield data.reshape(-1, 3, _SIDE, _SIDE)
