"""The out-of-distribution sets ``ood.datasets`` may name: one registry entry each.

A set is a registered dataset's test split, or the in-distribution test images themselves, either
optionally transformed (with numpy: nothing here imports torch). Each set fills the columns of
one published set (``column``): the smoke profile's offline sets stand for SVHN and TinyImageNet.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Transform = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def _invert(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return 255 - images


def _uniform_noise(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, images.shape, dtype=np.uint8)


@dataclass(frozen=True)
class OodSet:
    """One out-of-distribution set.

    Attributes:
        description: What the images are, for result files, tables and figures.
        column: The published set (``svhn`` or ``tinyimagenet``) whose table columns it fills.
        dataset: A key of ``repro.datasets.DATASETS`` whose test split is read at the model's
            size; None: the in-distribution test images.
        transform: Applied to those uint8 N×C×H×W images with a generator seeded from
            ``ood.seed``; None: the images as read.
    """

    description: str
    column: str
    dataset: str | None = None
    transform: Transform | None = None


OOD_SETS: dict[str, OodSet] = {
    "svhn": OodSet("SVHN test split", column="svhn", dataset="svhn"),
    "tinyimagenet": OodSet(
        "TinyImageNet validation split, block-averaged to the model's size",
        column="tinyimagenet",
        dataset="tinyimagenet",
    ),
    # Offline stand-ins, made from the in-distribution test images (the smoke profile's MNIST
    # digits): the same content looking unlike the training images for SVHN's digits, images of
    # no content at all for TinyImageNet's other content.
    "inverted": OodSet(
        "the in-distribution test images inverted (255 − x)", column="svhn", transform=_invert
    ),
    "noise": OodSet(
        "uniform noise shaped as the in-distribution test images (every pixel 0-255)",
        column="tinyimagenet",
        transform=_uniform_noise,
    ),
}
