"""SVHN (Street View House Numbers), cropped digits: 73,257 train and 26,032 test 32×32 RGB images.

The official files are ``train_32x32.mat`` and ``test_32x32.mat`` from
http://ufldl.stanford.edu/housenumbers/, read from ``<root>/svhn/``: MATLAB v5 files whose ``X``
is 32×32×3×N uint8 (height, width, channel, image) and ``y`` the labels (not needed here). A split
limited to 0 images is neither read nor required, so scoring out-of-distribution images needs only
the test file. A missing file is downloaded when allowed and checked against the md5 below (the
sums torchvision's SVHN downloader pins; no sha256 of the official files is published); files
already present are read as they are.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from scipy.io import loadmat
from scipy.io.matlab import MatReadError

from repro.datasets.errors import CorruptDatasetError, DatasetNotFoundError, describe
from repro.datasets.splits import ImageSplits
from repro.network import socket_timeout

FOLDER = "svhn"
URL = "http://ufldl.stanford.edu/housenumbers/"
TRAIN_FILE, TEST_FILE = "train_32x32.mat", "test_32x32.mat"
MD5 = {
    TRAIN_FILE: "e26dedcc434d2e4c54c9b2d4a06d8373",
    TEST_FILE: "eb5a983be6a315427106f1b164d9cef3",
}
_SIDE = 32
_SOCKET_TIMEOUT_S = 10.0


def load_svhn(
    *,
    root: Path,
    download: bool = True,
    limit_train: int | None = None,
    limit_test: int | None = None,
) -> ImageSplits:
    """Load SVHN as 3×32×32 uint8 images.

    Args:
        root: Data root holding ``svhn/``.
        download: Fetch a missing file from the official site (md5-checked).
        limit_train: Keep only the first this many training images (0: the file is not read).
        limit_test: Keep only the first this many test images (0: the file is not read).

    Returns:
        The splits; ``source`` is the ``svhn`` folder.

    Raises:
        DatasetNotFoundError: A file that is needed is missing and could not be downloaded.
        CorruptDatasetError: A file is not a MATLAB file with 32×32×3×N uint8 ``X``.
    """
    folder = root / FOLDER
    return ImageSplits(
        name="svhn",
        train=_split(folder, TRAIN_FILE, limit_train, download=download),
        test=_split(folder, TEST_FILE, limit_test, download=download),
        source=str(folder),
    )


def _split(folder: Path, name: str, limit: int | None, *, download: bool) -> torch.Tensor:
    if limit == 0:
        return torch.empty((0, 3, _SIDE, _SIDE), dtype=torch.uint8)
    path = folder / name
    failure = "downloads are disabled"
    if not path.is_file() and download:
        failure = _download(folder, name)
    if not path.is_file():
        raise DatasetNotFoundError(
            f"SVHN {name}",
            folder,
            f"{failure}; download {URL}{name} (md5 {MD5[name]}) into {folder}",
        )
    return torch.from_numpy(_read(path, limit))


def _download(folder: Path, name: str) -> str:
    """Fetch one file, md5-checked; return what to report if it is still missing."""
    # Imported here: torchvision adds about a second to start-up and only downloads need it.
    from torchvision.datasets.utils import download_url

    try:
        with socket_timeout(_SOCKET_TIMEOUT_S):
            download_url(f"{URL}{name}", folder, filename=name, md5=MD5[name])
    except (OSError, RuntimeError) as exc:  # RuntimeError: the md5 did not match
        (folder / name).unlink(missing_ok=True)
        return f"download failed ({exc})"
    return "the download finished without it"


def _read(path: Path, limit: int | None) -> np.ndarray:
    try:
        pixels = loadmat(path, variable_names=["X"]).get("X")
    except (OSError, ValueError, NotImplementedError, MatReadError) as exc:
        raise CorruptDatasetError(path, f"not a MATLAB v5 file with 'X' ({exc})") from exc
    if not (
        isinstance(pixels, np.ndarray)
        and pixels.dtype == np.uint8
        and pixels.ndim == 4
        and pixels.shape[:3] == (_SIDE, _SIDE, 3)
    ):
        raise CorruptDatasetError(path, f"expected 'X' as 32×32×3×N uint8, got {describe(pixels)}")
    # Height, width, channel, image -> image, channel, height, width; the limit before the copy.
    return np.ascontiguousarray(pixels[..., :limit].transpose(3, 2, 0, 1))
