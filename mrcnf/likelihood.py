"""Densities, dequantisation, the logit transform and bits per dimension (docs/method.md §2)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

LOG_TWO_PI = math.log(2 * math.pi)
PIXEL_LEVELS = 256


def normal_log_prob(z: Tensor, std: float) -> Tensor:
    """Per-sample log N(z; 0, std²·I), summed over all but the first dimension.

    Args:
        z: B×… values.
        std: Standard deviation of every coordinate (positive).

    Returns:
        (B,) log-densities.
    """
    return -0.5 * ((z / std).pow(2) + LOG_TWO_PI).flatten(1).sum(1) - z[0].numel() * math.log(std)


def multiresolution_noise_scales(resolutions: int, *, detail_scale: float) -> tuple[float, ...]:
    """Standard deviation, at every level, of one unit-variance noise image at the finest level.

    The 2×2 mean has 1/4 of its input's variance and each detail coefficient (±x1 ± x2 ± x3 ± x4)/c
    has 4/c² of it, so the details of level s have σ_s = 2^(−s)·(2/c) and the coarsest image
    σ_{S−1} = 2^(−(S−1)).

    Args:
        resolutions: Number of levels S.
        detail_scale: The transform's divisor c of the detail coefficients.

    Returns:
        σ_s for every level, finest first.
    """
    details = [2.0**-level * (2 / detail_scale) for level in range(resolutions - 1)]
    return (*details, 2.0 ** -(resolutions - 1))


def dequantize(
    pixels: Tensor, *, bin_centre: bool = False, generator: torch.Generator | None = None
) -> Tensor:
    """Map 8-bit pixels to [0, 1): ``(pixels + u) / 256``.

    Args:
        pixels: uint8 images.
        bin_centre: Use u = 0.5 (RNODE's validation convention) instead of u ~ U[0, 1).
        generator: Source of the uniform noise.

    Returns:
        Float images in [0, 1), float32.
    """
    values = pixels.float()
    if bin_centre:
        return (values + 0.5) / PIXEL_LEVELS
    noise = torch.rand(values.shape, generator=generator, device=values.device)
    return (values + noise) / PIXEL_LEVELS


def quantize(x: Tensor) -> Tensor:
    """Map continuous images to 8-bit pixels: clamp to [0, 1], take the bin each value lies in."""
    return (x.clamp(0, 1) * PIXEL_LEVELS).floor().clamp(max=PIXEL_LEVELS - 1).to(torch.uint8)


def logit_transform(x: Tensor, alpha: float) -> tuple[Tensor, Tensor]:
    """Squeeze [0, 1] into [α, 1-α] and take the logit.

    Args:
        x: Images in [0, 1].
        alpha: Margin that keeps the logit finite.

    Returns:
        ``(v, log_det)``: the logits and the per-sample log|dv/dx| (B,).
    """
    s = alpha + (1 - 2 * alpha) * x
    v = torch.log(s) - torch.log1p(-s)
    log_det = (math.log(1 - 2 * alpha) - torch.log(s) - torch.log1p(-s)).flatten(1).sum(1)
    return v, log_det


def inverse_logit_transform(v: Tensor, alpha: float) -> Tensor:
    """Invert :func:`logit_transform`."""
    return (torch.sigmoid(v) - alpha) / (1 - 2 * alpha)


def bits_per_dim(log_prob: Tensor, dimensions: int) -> Tensor:
    """Bits per dimension of 8-bit data from the log-density of its [0, 1] dequantisation.

    Args:
        log_prob: log p(x) in nats for x ∈ [0, 1]^D.
        dimensions: D = C·H·W of the finest image.

    Returns:
        ``-log p(x) / (D ln 2) + 8``; the 8 bits are the change of variables from {0…255} to [0, 1].
    """
    return -log_prob / (dimensions * math.log(2)) + math.log2(PIXEL_LEVELS)
