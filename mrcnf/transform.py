"""The multi-resolution image transform (docs/method.md §1).

Each 2×2 block (x1 top-left, x2 top-right, x3 bottom-left, x4 bottom-right) maps to its mean and
three detail coefficients::

    mean = (x1 + x2 + x3 + x4) / 4
    y1   = (x1 + x2 - x3 - x4) / c      top minus bottom
    y2   = (x1 - x2 + x3 - x4) / c      left minus right
    y3   = (x1 - x2 - x3 + x4) / c      diagonal

The rows of this map are orthogonal, so ``|det| = (1/2)·(2/c)³``. MRCNF's choice ``c = 2^(2/3)``
makes the determinant exactly one (``c³ = 4``): the change of variables adds no term. The Haar
wavelet (``c = 2``) has ``|det| = 1/2`` per block and channel, a log-determinant the density
must add.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from mrcnf.config import MRCNFSettingError


@dataclass(frozen=True)
class TransformKind:
    """One variant of the 2×2 transform.

    Attributes:
        name: Registry name.
        detail_scale: The divisor ``c`` of the detail coefficients.
    """

    name: str
    detail_scale: float

    @property
    def log_abs_det(self) -> float:
        """log|det| of the map from one 2×2 block of one channel to (mean, y1, y2, y3)."""
        return math.log(0.5) + 3 * math.log(2.0 / self.detail_scale)


TRANSFORMS: dict[str, TransformKind] = {
    "unimodular": TransformKind("unimodular", 2.0 ** (2.0 / 3.0)),
    "haar": TransformKind("haar", 2.0),
}


def get_transform(kind: str) -> TransformKind:
    """Look up a transform variant by name.

    Raises:
        MRCNFSettingError: If ``kind`` is not registered.
    """
    try:
        return TRANSFORMS[kind]
    except KeyError:
        raise MRCNFSettingError(
            f"unknown transform kind {kind!r}; choose one of {sorted(TRANSFORMS)}"
        ) from None


def split(x: Tensor, *, kind: str = "unimodular") -> tuple[Tensor, Tensor]:
    """Split images into their 2×2-average image and detail coefficients.

    Args:
        x: B×C×H×W images with even H and W.
        kind: ``"unimodular"`` (MRCNF) or ``"haar"``.

    Returns:
        ``(coarse, details)``: B×C×H/2×W/2 averages and B×3C×H/2×W/2 details, grouped by
        coefficient type (all channels of y1, then of y2, then of y3).

    Raises:
        ValueError: If H or W is odd, or ``kind`` is unknown.
    """
    c = get_transform(kind).detail_scale
    height, width = x.shape[-2:]
    if height % 2 or width % 2:
        raise ValueError(f"split needs even image sizes, got {height}×{width}")
    x1, x2 = x[..., 0::2, 0::2], x[..., 0::2, 1::2]
    x3, x4 = x[..., 1::2, 0::2], x[..., 1::2, 1::2]
    coarse = (x1 + x2 + x3 + x4) / 4
    y1 = (x1 + x2 - x3 - x4) / c
    y2 = (x1 - x2 + x3 - x4) / c
    y3 = (x1 - x2 - x3 + x4) / c
    return coarse, torch.cat([y1, y2, y3], dim=1)


def merge(coarse: Tensor, details: Tensor, *, kind: str = "unimodular") -> Tensor:
    """Invert :func:`split` exactly.

    Args:
        coarse: B×C×h×w average images.
        details: B×3C×h×w detail coefficients, grouped as :func:`split` returns them.
        kind: The variant used by :func:`split`.

    Returns:
        B×C×2h×2w images.

    Raises:
        ValueError: If the shapes do not fit together, or ``kind`` is unknown.
    """
    c = get_transform(kind).detail_scale
    channels = coarse.shape[1]
    if details.shape[1] != 3 * channels or details.shape[2:] != coarse.shape[2:]:
        raise ValueError(
            f"details of shape {tuple(details.shape)} do not fit coarse images of shape "
            f"{tuple(coarse.shape)} (expected B×{3 * channels}×{coarse.shape[2]}×{coarse.shape[3]})"
        )
    y1, y2, y3 = (d * (c / 4) for d in details.split(channels, dim=1))
    x1 = coarse + y1 + y2 + y3
    x2 = coarse + y1 - y2 - y3
    x3 = coarse - y1 + y2 - y3
    x4 = coarse - y1 - y2 + y3
    top = torch.stack([x1, x2], dim=-1).flatten(-2)
    bottom = torch.stack([x3, x4], dim=-1).flatten(-2)
    return torch.stack([top, bottom], dim=-2).flatten(-3, -2)
