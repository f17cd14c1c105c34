"""The value every loader returns, and the helper that assembles a split from file batches."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch


# eq=False: a generated __eq__ would compare tensors with ==, which raises instead of answering.
@dataclass(frozen=True, eq=False)
class ImageSplits:
    """Train and test images of one dataset.

    Attributes:
        name: Registry name of the dataset, e.g. ``"cifar10"``.
        train: uint8 tensor N×C×H×W, contiguous.
        test: uint8 tensor N×C×H×W with the same C×H×W as ``train``.
        source: Human-readable origin: a path, or the package a copy came from.

    Raises:
        ValueError: On construction, if the tensors break the layout above.
    """

    name: str
    train: torch.Tensor
    test: torch.Tensor
    source: str

    def __post_init__(self) -> None:
        for split, images in (("train", self.train), ("test", self.test)):
            if images.dtype != torch.uint8 or images.dim() != 4 or not images.is_contiguous():
                raise ValueError(
                    f"{self.name} {split} images must be contiguous uint8 N×C×H×W, "
                    f"got {images.dtype} of shape {tuple(images.shape)}"
                )
        if self.train.shape[1:] != self.test.shape[1:]:
            raise ValueError(
                f"{self.name} train images are {tuple(self.train.shape[1:])} "
                f"but test images are {tuple(self.test.shape[1:])}"
            )


def concat_first(batches: Iterable[np.ndarray], limit: int | None) -> np.ndarray:
    """Concatenate batches along axis 0, stopping once ``limit`` rows are taken.

    ``batches`` is consumed lazily, so files after the limit are never read.

    Args:
        batches: Non-empty iterable of arrays with equal trailing shapes.
        limit: Number of leading rows to keep; ``None`` keeps all.

    Returns:
        A new array with ``min(limit, total)`` rows.
    """
    taken: list[np.ndarray] = []
    count = 0
    for batch in batches:
        taken.append(batch if limit is None else batch[: limit - count])
        count += len(taken[-1])
        if limit is not None and count >= limit:
            break
    return np.concatenate(taken)
