"""Bits per dimension: the standard error exact and independent of how work is shared, and both
ways for the solver to end at t = 1 reported."""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field

import pytest
import torch

from mrcnf import MRCNF, dequantize
from mrcnf.config import MRCNFConfig, SolverOptions
from repro.distributed import SINGLE_PROCESS, World
from repro.eval_bpd import (
    PROBE_STREAM,
    dequantize_images,
    evaluate_bits_per_dim,
    measure_bits_per_dim,
)
from repro.runtime import generator

CPU = torch.device("cpu")
SEED = 5
# A fixed grid keeps the tests fast; the adaptive default would make each image's steps depend on
# its batch, which the batch-size test must exclude.
FIXED_GRID = SolverOptions(method="rk4", step_size=0.5)


def _model(
    *,
    divergence: str = "hutchinson",
    dtype: torch.dtype = torch.float32,
    solver: SolverOptions = FIXED_GRID,
) -> MRCNF:
    model = MRCNF(
        MRCNFConfig(
            channels=1,
            resolutions=2,
            blocks=1,
            width=8,
            divergence=divergence,
            eval_solver=solver,
        )
    )
    # A new model's last layers are zero (an identity flow); perturb them so that the dynamics,
    # and with them the Hutchinson probes, change each image's bpd.
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn(parameter.shape, generator=_torch_seed(1)))
    return model.to(dtype).eval()


def _torch_seed(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _images(count: int, size: int) -> torch.Tensor:
    return torch.randint(
        0, 256, (count, 1, size, size), dtype=torch.uint8, generator=_torch_seed(2)
    )


@torch.no_grad()
def _per_image_bpd(model: MRCNF, images: torch.Tensor, *, batch_size: int) -> torch.Tensor:
    """Each image's bpd, uniform then bin-centre, from model.density on the inputs and probes the
    evaluation uses: image i's own noise stream, batch b's probe stream."""
    uniform, centre = [], []
    for index, start in enumerate(range(0, len(images), batch_size)):
        pixels = images[start : start + batch_size]
        inputs = (
            dequantize_images(pixels, seed=SEED, first=start),
            dequantize(pixels, bin_centre=True),
        )
        for values, x in zip((uniform, centre), inputs, strict=True):
            probes = generator(CPU, SEED, PROBE_STREAM, index)
            values.append(model.density(x, generator=probes).bits_per_dim().double())
    return torch.stack([torch.cat(uniform), torch.cat(centre)])


def _evaluate(
    model: MRCNF, images: torch.Tensor, *, batch_size: int, world: World = SINGLE_PROCESS
):
    return evaluate_bits_per_dim(
        model, images, batch_size=batch_size, seed=SEED, device=CPU, world=world
    )


def test_standard_error_is_the_spread_of_the_per_image_values() -> None:
    model, images = _model(), _images(40, 8)
    measured = _evaluate(model, images, batch_size=16)
    uniform, centre = _per_image_bpd(model, images, batch_size=16)
    assert uniform.std() > 1e-3  # the images differ, so the check below is not 0 == 0
    assert measured["bpd"] == pytest.approx(uniform.mean().item(), rel=1e-9)
    assert measured["bpd_bin_centre"] == pytest.approx(centre.mean().item(), rel=1e-9)
    expected = [
        values.std(correction=1).item() / len(images) ** 0.5 for values in (uniform, centre)
    ]
    got = [measured["bpd_standard_error"], measured["bpd_bin_centre_standard_error"]]
    assert got == pytest.approx(expected, rel=1e-9)


def test_a_single_image_has_no_standard_error() -> None:
    measured = _evaluate(_model(), _images(1, 8), batch_size=16)
    assert measured["bpd_standard_error"] is None
    assert measured["bpd_bin_centre_standard_error"] is None


@dataclass(frozen=True)
class _TwoProcesses(World):
    """Rank 0 of two processes whose rank-1 sums were recorded, in order, by an earlier run as
    rank 1 (one sum per pass over the images)."""

    recorded: list[torch.Tensor] = field(default_factory=list)

    def sum(self, value: torch.Tensor) -> torch.Tensor:
        if self.rank == 1:
            self.recorded.append(value)
            return value
        return value + self.recorded.pop(0)

    def maximum(self, value: float) -> float:
        return value


def test_standard_error_does_not_depend_on_the_number_of_processes() -> None:
    model, images = _model(), _images(40, 8)
    alone = _evaluate(model, images, batch_size=16)
    recorded: list[torch.Tensor] = []
    _evaluate(model, images, batch_size=16, world=_TwoProcesses(1, 2, recorded))
    shared = _evaluate(model, images, batch_size=16, world=_TwoProcesses(0, 2, recorded))
    for key in ("bpd", "bpd_standard_error", "bpd_bin_centre_standard_error"):
        assert shared[key] == pytest.approx(alone[key], rel=1e-9)


def test_standard_error_does_not_depend_on_the_batch_size() -> None:
    # Exact divergence and a fixed grid in float64: an image's bpd depends on itself and its own
    # noise alone, so any change would come from how the sums are accumulated.
    model, images = _model(divergence="exact", dtype=torch.float64), _images(40, 4)
    results = [_evaluate(model, images, batch_size=size) for size in (16, 7, 40)]
    for key in ("bpd", "bpd_standard_error", "bpd_bin_centre_standard_error"):
        values = [result[key] for result in results]
        assert values == pytest.approx([values[0]] * len(values), rel=1e-9)
    assert results[0]["bpd_standard_error"] > 0


# Loose tolerances: stepping past t = 1 and interpolating back then differs clearly from ending
# a step exactly there.
ADAPTIVE = SolverOptions(method="bosh3", atol=1e-2, rtol=1e-2)


@pytest.mark.parametrize("exact_end", [False, True])
def test_bpd_is_the_configured_ending_and_the_other_ending_is_reported_beside_it(
    exact_end: bool,
) -> None:
    images = _images(4, 8)
    configured = dataclasses.replace(ADAPTIVE, exact_end=exact_end)
    model = _model(solver=configured)
    twin = copy.deepcopy(model)
    other_solver = dataclasses.replace(configured, exact_end=not exact_end)
    twin.config = dataclasses.replace(model.config, eval_solver=other_solver)
    measured = _evaluate(model, images, batch_size=4)
    other = measure_bits_per_dim(
        twin, images, dequantization="uniform", batch_size=4, seed=SEED, device=CPU
    )
    chosen, other_key = ("bpd_exact_end", "bpd_interpolated_end")[:: 1 if exact_end else -1]
    assert measured["exact_end"] is exact_end
    assert measured[chosen] == measured["bpd"]
    # The other ending is what a solver configured that way gives, on the same noise and probes.
    assert measured[other_key] == pytest.approx(other.bpd, rel=1e-9)
    assert abs(measured[other_key] - measured["bpd"]) > 1e-6
    assert model.config.eval_solver == configured  # the model's own solver is back


def test_a_fixed_grid_ends_exactly_at_one_and_has_no_interpolated_end() -> None:
    measured = _evaluate(_model(), _images(4, 8), batch_size=4)
    assert measured["exact_end"] is True
    assert (measured["bpd_exact_end"], measured["bpd_interpolated_end"]) == (measured["bpd"], None)
