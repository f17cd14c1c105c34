"""Sampling for FID: per-image seeds, batch-size independence, request validation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from repro.sampling import (
    SamplingSettingError,
    check_sampling_request,
    generate_images,
    save_samples,
)
from tests.test_model import tiny_model


def _generate(batch_size: int, seeds: list[int]) -> torch.Tensor:
    model = tiny_model(2, divergence="hutchinson").float()
    return generate_images(
        model,
        seeds=seeds,
        height=8,
        width=8,
        temperature=0.8,
        batch_size=batch_size,
        device=torch.device("cpu"),
    )


def test_images_generated_with_batch_size_7_and_16_are_identical() -> None:
    seeds = list(range(100, 116))
    with_7, with_16 = _generate(7, seeds), _generate(16, seeds)
    assert with_7.dtype == torch.uint8 and with_7.shape == (16, 1, 8, 8)
    assert torch.equal(with_7, with_16)
    assert len({tuple(image.flatten().tolist()) for image in with_7}) == 16


def test_an_image_depends_on_its_own_seed_only() -> None:
    alone = _generate(4, [105])
    among_others = _generate(4, [1, 105, 7])
    assert torch.equal(alone[0], among_others[1])


@pytest.mark.parametrize(("temperature", "count"), [(0.0, 10), (-0.5, 10), (2.01, 10), (1.0, 1)])
def test_temperature_outside_zero_two_or_fewer_than_two_samples_is_refused(
    temperature: float, count: int
) -> None:
    with pytest.raises(SamplingSettingError, match=r"temperature must lie in|at least 2 samples"):
        check_sampling_request(temperature=temperature, num_samples=count)


def test_temperature_two_and_two_samples_are_accepted() -> None:
    check_sampling_request(temperature=2.0, num_samples=2)


def test_samples_are_saved_as_npz_and_png_grid(tmp_path: Path) -> None:
    images = torch.randint(0, 256, (5, 1, 8, 8), dtype=torch.uint8)
    save_samples(images, seeds=[3, 4, 5, 6, 7], stem=tmp_path / "T0.7")
    stored = np.load(tmp_path / "T0.7.npz")
    assert np.array_equal(stored["images"], images.numpy())
    assert stored["seeds"].tolist() == [3, 4, 5, 6, 7]
    assert (tmp_path / "T0.7.png").read_bytes().startswith(b"\x89PNG")
