"""Checks the dataset tests share."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io
import torch
import torch.nn.functional as F


def assert_one_line_naming(error: BaseException, path: Path) -> None:
    """The error's message is one line and names ``path``."""
    message = str(error)
    assert "\n" not in message
    assert str(path) in message


def reference_downsample(images: torch.Tensor, size: int) -> torch.Tensor:
    """Independent reference: average pooling in float64, rounded half to even."""
    factor = images.shape[-1] // size
    return torch.round(F.avg_pool2d(images.double(), factor)).to(torch.uint8)


def write_svhn(folder: Path, name: str, count: int, seed: int) -> np.ndarray:
    """A MATLAB v5 file as the official ones: X 32×32×3×N uint8 and y; return X."""
    pixels = np.random.default_rng(seed).integers(0, 256, (32, 32, 3, count), dtype=np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    labels = np.arange(1, count + 1, dtype=np.uint8)[:, None] % 10 + 1
    scipy.io.savemat(folder / name, {"X": pixels, "y": labels})
    return pixels
