"""Checks the dataset tests share."""

from __future__ import annotations

from pathlib import Path

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
