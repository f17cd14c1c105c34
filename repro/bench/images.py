"""The images a benchmark runs on: no dataset is needed, so timings can be taken anywhere."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from mrcnf import dequantize


def uniform_noise(count: int, shape: tuple[int, int, int], *, seed: int) -> torch.Tensor:
    """uint8 images of independent uniform pixels: what a fresh model sees as well as any."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (count, *shape), generator=generator).to(torch.uint8)


def structured(count: int, shape: tuple[int, int, int], *, seed: int) -> torch.Tensor:
    """uint8 images with structure at every scale: upsampled coarse noise plus fine noise.

    A model trained on them for a few minutes takes several times the function evaluations of a
    fresh one, as trained models do; real-data counts still differ.
    """
    generator = torch.Generator().manual_seed(seed)
    channels, height, width = shape
    coarse = torch.rand(count, channels, height // 4, width // 4, generator=generator)
    smooth = F.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)
    fine = 0.1 * torch.randn(count, channels, height, width, generator=generator)
    return ((smooth + fine).clamp(0, 1) * 255).round().to(torch.uint8)


IMAGES: dict[str, Callable[..., torch.Tensor]] = {
    "noise": uniform_noise,
    "structured": structured,
}


def bench_images(
    kind: str, count: int, shape: tuple[int, int, int], *, seed: int = 0
) -> torch.Tensor:
    """``count`` dequantised images of ``shape`` (on the CPU) of a kind of :data:`IMAGES`.

    Raises:
        KeyError: An unknown kind.
    """
    pixels = IMAGES[kind](count, shape, seed=seed)
    return dequantize(pixels, generator=torch.Generator().manual_seed(seed))
