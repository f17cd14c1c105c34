"""The multi-resolution transform: exact inverse, averaging, determinants (docs/method.md §1)."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from mrcnf import TRANSFORMS, merge, split

KINDS = sorted(TRANSFORMS)


@pytest.mark.parametrize("kind", KINDS)
def test_merge_inverts_split_exactly(kind: str) -> None:
    x = torch.randn(3, 2, 8, 6, dtype=torch.float64)
    torch.testing.assert_close(merge(*split(x, kind=kind), kind=kind), x, atol=1e-6, rtol=0)


@pytest.mark.parametrize("kind", KINDS)
def test_coarse_image_is_two_by_two_average_pooling(kind: str) -> None:
    x = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    coarse, details = split(x, kind=kind)
    torch.testing.assert_close(coarse, F.avg_pool2d(x, 2))
    assert details.shape == (2, 9, 4, 4)


@pytest.mark.parametrize("kind", KINDS)
def test_details_of_a_constant_image_are_zero(kind: str) -> None:
    _, details = split(torch.full((1, 3, 4, 4), 0.7, dtype=torch.float64), kind=kind)
    assert details.abs().max().item() == 0.0


def test_details_are_grouped_by_coefficient_type() -> None:
    # Channel 1 differs top to bottom only, so only y1 (top minus bottom) of channel 1 is non-zero.
    x = torch.zeros(1, 2, 2, 2, dtype=torch.float64)
    x[0, 1, 0, :] = 1.0
    _, details = split(x)
    nonzero = details[0, :, 0, 0].ne(0).nonzero().flatten().tolist()
    assert nonzero == [1]
    assert details[0, 1, 0, 0].item() == pytest.approx(2 / 2 ** (2 / 3))


@pytest.mark.parametrize(("kind", "channels"), [(k, c) for k in KINDS for c in (1, 3)])
def test_block_map_determinant_matches_documented_value(kind: str, channels: int) -> None:
    def block_map(flat: torch.Tensor) -> torch.Tensor:
        coarse, details = split(flat.reshape(1, channels, 2, 2), kind=kind)
        return torch.cat([coarse.flatten(), details.flatten()])

    jacobian = torch.autograd.functional.jacobian(block_map, torch.rand(4 * channels).double())
    determinant = torch.linalg.det(jacobian).abs().item()
    expected = {"unimodular": 1.0, "haar": 0.5**channels}[kind]
    assert determinant == pytest.approx(expected, abs=1e-9)
    assert math.log(determinant) == pytest.approx(channels * TRANSFORMS[kind].log_abs_det, abs=1e-9)


@pytest.mark.parametrize("size", [(3, 4), (4, 5)])
def test_split_rejects_odd_sizes(size: tuple[int, int]) -> None:
    with pytest.raises(ValueError, match="even"):
        split(torch.zeros(1, 1, *size))


def test_unknown_kind_and_mismatched_shapes_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown transform"):
        split(torch.zeros(1, 1, 2, 2), kind="daubechies")
    with pytest.raises(ValueError, match="do not fit"):
        merge(torch.zeros(1, 2, 2, 2), torch.zeros(1, 3, 2, 2))
