"""Test images with their pixels shuffled in k×k patches, the paper's FID calibration input.

The paper's "pixels shuffled in k×k patches" is read as: the image is cut into k×k patches whose
positions are permuted, each patch's content (and a pixel's channels) left intact. Only this
reading fits its numbers, which fall as k grows: k = 1 permutes every pixel (FID 340) and k = 32,
the whole CIFAR10 image, leaves it unchanged (3.15); shuffling pixels within each patch would
make k = 1 the unchanged image instead (docs/method.md §8).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from repro.errors import ReproError
from repro.runtime import generator


class PatchSizeError(ReproError, ValueError):
    """A patch size that does not tile the images (one line naming the sizes that do)."""


def image_seeds(seed: int, count: int) -> list[int]:
    """The shuffling seeds of the first ``count`` images of a split: image i has ``seed + i``,
    so an image's permutation does not depend on how many are shuffled, or in which batch."""
    return list(range(seed, seed + count))


def shuffle_patches(images: torch.Tensor, *, patch: int, seeds: Sequence[int]) -> torch.Tensor:
    """Permute the positions of each image's ``patch``×``patch`` patches.

    Image i's permutation is drawn from a generator seeded with ``seeds[i]`` alone
    (:func:`repro.runtime.generator`), so it does not depend on the batch. A patch moves whole,
    all its channels with it; ``patch`` equal to the image side leaves the image unchanged.

    Args:
        images: uint8 N×C×H×W images.
        patch: The patch side k; it must divide H and W.
        seeds: One seed per image.

    Returns:
        A new uint8 N×C×H×W tensor on the CPU.

    Raises:
        PatchSizeError: ``patch`` does not divide H and W, or is not positive.
        ValueError: ``images`` is not uint8 N×C×H×W, or ``seeds`` does not hold one per image.
    """
    if images.dtype != torch.uint8 or images.dim() != 4:
        raise ValueError(f"images must be uint8 N×C×H×W, got {images.dtype} {tuple(images.shape)}")
    if len(seeds) != len(images):
        raise ValueError(f"need one seed per image: {len(seeds)} seeds for {len(images)} images")
    count, channels, height, width = images.shape
    if patch < 1 or height % patch or width % patch:
        sizes = [k for k in range(1, min(height, width) + 1) if height % k == 0 == width % k]
        raise PatchSizeError(
            f"patch size {patch} does not tile {height}×{width} images: use one of "
            f"{', '.join(map(str, sizes))}"
        )
    rows, columns = height // patch, width // patch
    # N×C×H×W -> N×(rows·columns)×C×k×k: one entry per patch, in reading order.
    blocks = images.cpu().reshape(count, channels, rows, patch, columns, patch)
    blocks = blocks.permute(0, 2, 4, 1, 3, 5).reshape(count, rows * columns, channels, patch, patch)
    orders = [torch.randperm(rows * columns, generator=generator("cpu", seed)) for seed in seeds]
    order = torch.stack(orders) if orders else torch.empty(0, rows * columns, dtype=torch.long)
    shuffled = blocks[torch.arange(count)[:, None], order]
    shuffled = shuffled.reshape(count, rows, columns, channels, patch, patch)
    return shuffled.permute(0, 3, 1, 4, 2, 5).reshape(count, channels, height, width).contiguous()
