"""Resolution changes and augmentation on uint8 image batches (N×C×H×W)."""

from __future__ import annotations

import torch

from repro.datasets.errors import DatasetSettingError

# Images per step of downsample: bounds the int64 block sums to ~100 MB even at 128×128.
_CHUNK = 1024


def downsample(images: torch.Tensor, size: int) -> torch.Tensor:
    """Shrink square uint8 images to ``size``×``size`` by exact block averaging.

    Repeated exact 2×2 averaging equals one mean over each factor×factor block, so the mean is
    taken once in integer arithmetic and rounded once to the nearest integer (ties to even);
    rounding after every halving would compound rounding errors.

    Args:
        images: uint8 tensor N×C×H×W with H == W.
        size: Target side length; H / size must be a power of two (1 returns ``images``).

    Returns:
        uint8 tensor N×C×size×size on the same device.

    Raises:
        DatasetSettingError: ``size`` is not H divided by a power of two (a ``ValueError``).
        ValueError: ``images`` is not square uint8 N×C×H×W.
    """
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[-1] != images.shape[-2]:
        raise ValueError(
            f"expected square uint8 N×C×H×W images, got {images.dtype} {tuple(images.shape)}"
        )
    count, channels, native = images.shape[:3]
    check_downsample_size(native, size)
    factor = native // size
    if factor == 1:
        return images
    out = torch.empty(count, channels, size, size, dtype=torch.uint8, device=images.device)
    for start in range(0, count, _CHUNK):
        blocks = images[start : start + _CHUNK].reshape(-1, channels, size, factor, size, factor)
        sums = blocks.sum(dim=(3, 5), dtype=torch.int64)
        # Dividing by a power of two is exact in float64, so torch.round sees the true mean.
        out[start : start + _CHUNK] = torch.round(sums.double() / factor**2).to(torch.uint8)
    return out


def check_downsample_size(native: int, size: int) -> None:
    """Raise :class:`DatasetSettingError` unless ``native / size`` is a power of two (1 included).

    Args:
        native: Side length of the images.
        size: Requested side length.
    """
    factor = native // size if size > 0 else 0
    if factor > 0 and native == factor * size and factor & (factor - 1) == 0:
        return
    choices = [native]
    while choices[-1] % 2 == 0:
        choices.append(choices[-1] // 2)
    raise DatasetSettingError(
        f"image size {size} does not fit {native}×{native} images: use {native} divided by a "
        f"power of two ({', '.join(map(str, choices))})"
    )


def random_horizontal_flip(images: torch.Tensor, *, generator: torch.Generator) -> torch.Tensor:
    """Mirror each image left-right with probability 1/2.

    Args:
        images: Batch with the image index first and width last (e.g. N×C×H×W), any dtype.
        generator: Source of the coin flips; the same generator state gives the same flips.

    Returns:
        A new tensor shaped like ``images``.
    """
    flips = torch.rand(images.shape[0], generator=generator, device=generator.device) < 0.5
    flips = flips.to(images.device).view(-1, *([1] * (images.dim() - 1)))
    return torch.where(flips, images.flip(-1), images)
