"""The model and solver settings: first step, exact end, conditioning, multi-resolution noise, and
the density's per-level inputs and level choice."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torchdiffeq import odeint

from mrcnf import MRCNF, MRCNFSettingError, SolverOptions
from mrcnf.cnf import BlockDynamics, integrate
from mrcnf.likelihood import logit_transform
from mrcnf.per_sample import odeint_per_sample
from mrcnf.velocity import VelocityField
from tests.test_model import TIGHT, tiny_model
from tests.test_model import images as tiny_images

MODERATE = SolverOptions(method="bosh3", atol=1e-6, rtol=1e-6)


def settings_model(
    *,
    resolutions: int = 2,
    solver: SolverOptions = MODERATE,
    divergence: str = "hutchinson",
    seed: int = 0,
    **settings: str,
) -> MRCNF:
    """A float64 one-block model whose velocity networks have small random, non-zero weights."""
    return tiny_model(
        resolutions, blocks=1, width=6, solver=solver, seed=seed, divergence=divergence, **settings
    )


def with_settings(model: MRCNF, **settings: object) -> MRCNF:
    """A copy of ``model`` (same weights) with some configuration fields replaced."""
    twin = MRCNF(dataclasses.replace(model.config, **settings)).double().eval()
    twin.load_state_dict(model.state_dict())
    return twin


def images(batch: int = 2, size: int = 8, seed: int = 1) -> torch.Tensor:
    """tests.test_model's images, 8×8 by default: three levels need two halvings and more."""
    return tiny_images(batch, size, seed)


def probes(seed: int = 7) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# Multi-resolution noise


def _log_prob_and_gradients(
    model: MRCNF, x: torch.Tensor
) -> tuple[list[torch.Tensor], torch.Tensor, list[torch.Tensor | None]]:
    density = model.density(x, generator=probes())
    density.log_prob.sum().backward()
    return density.latents, density.log_prob.detach(), [p.grad for p in model.parameters()]


def test_multiresolution_noise_leaves_log_density_and_gradients_unchanged() -> None:
    standard = settings_model(resolutions=3)
    scaled = with_settings(standard, latent_noise="multiresolution")
    x = images(size=8)
    latents, log_prob, gradients = _log_prob_and_gradients(standard, x)
    scaled_latents, scaled_log_prob, scaled_gradients = _log_prob_and_gradients(scaled, x)
    torch.testing.assert_close(scaled_log_prob, log_prob, atol=1e-10, rtol=0)
    for gradient, scaled_gradient in zip(gradients, scaled_gradients, strict=True):
        torch.testing.assert_close(scaled_gradient, gradient, atol=1e-10, rtol=0)
    assert len(set(scaled.latent_scales)) == 3
    for z, scaled_z, scale in zip(latents, scaled_latents, scaled.latent_scales, strict=True):
        torch.testing.assert_close(scaled_z, scale * z.detach(), atol=1e-12, rtol=0)


@pytest.mark.parametrize("transform", ["unimodular", "haar"])
def test_latent_scales_are_the_spread_of_unit_noise_through_the_transform(transform: str) -> None:
    model = settings_model(resolutions=3, transform=transform, latent_noise="multiresolution")
    noise = torch.randn(1, 1, 512, 512, generator=probes(), dtype=torch.float64)
    pyramid_images, details = model.pyramid(noise)
    empirical = [detail.std().item() for detail in details] + [pyramid_images[-1].std().item()]
    assert model.latent_scales == pytest.approx(empirical, rel=0.03)
    assert settings_model(resolutions=3).latent_scales == (1.0, 1.0, 1.0)


def test_a_seed_decodes_to_the_same_image_with_either_latent_noise() -> None:
    standard = settings_model(resolutions=3, solver=TIGHT)
    scaled = with_settings(standard, latent_noise="multiresolution")
    kwargs = dict(height=8, width=8, temperature=0.8, dtype=torch.float64)
    with torch.no_grad():
        latents = standard.prior_latents([3, 4], **kwargs)
        scaled_latents = scaled.prior_latents([3, 4], **kwargs)
        for z, scaled_z, scale in zip(latents, scaled_latents, scaled.latent_scales, strict=True):
            torch.testing.assert_close(scaled_z, scale * z)
        torch.testing.assert_close(
            scaled.sample(scaled_latents), standard.sample(latents), atol=1e-6, rtol=0
        )
        x = images(size=8)
        reconstruction = scaled.sample(scaled.density(x).latents)
    torch.testing.assert_close(reconstruction, x, atol=1e-4, rtol=0)


# Solver: first step and exact end


def _evaluations(model: MRCNF, x: torch.Tensor) -> int:
    model.reset_function_evaluations()
    with torch.no_grad():
        model.density(x, generator=probes())
    return model.function_evaluations


def test_first_step_gives_the_evaluations_of_torchdiffeq_with_that_first_step() -> None:
    # 1/6: the first step of the authors' training solver.
    solver = SolverOptions(method="bosh3", atol=1e-5, rtol=1e-5, first_step=1 / 6)
    model = settings_model(resolutions=1, solver=solver)
    x = images()
    evaluations = _evaluations(model, x)
    # The block keeps the probe of that solve: integrate the same dynamics directly.
    block = model.flows[0].blocks[0]
    block.nfe = 0
    logits = logit_transform(x, model.config.logit_alpha)[0]
    state = (logits, torch.zeros(len(x), dtype=torch.float64))
    times = torch.tensor([0.0, 1.0], dtype=torch.float64)
    with torch.no_grad():
        odeint(
            block, state, times, method="bosh3", atol=1e-5, rtol=1e-5, options={"first_step": 1 / 6}
        )
    assert block.nfe == evaluations
    automatic = with_settings(model, eval_solver=dataclasses.replace(solver, first_step=None))
    assert _evaluations(automatic, x) != evaluations


def _second_evaluation_time(*, t0: float, t1: float, first_step: float) -> float:
    times: list[float] = []

    def decay(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        times.append(t[0].item())
        return -y

    y0 = torch.ones(1, 1, dtype=torch.float64)
    odeint_per_sample(decay, y0, t0=t0, t1=t1, atol=1e-6, rtol=1e-6, first_step=first_step)
    return times[1]


def test_per_sample_solver_tries_the_first_step_it_is_given() -> None:
    # The second evaluation of a Bogacki–Shampine step is at the middle of the first step.
    assert _second_evaluation_time(t0=0.0, t1=1.0, first_step=0.2) == pytest.approx(0.1)
    assert _second_evaluation_time(t0=1.0, t1=0.0, first_step=0.2) == pytest.approx(0.9)


def _block(seed: int = 0) -> BlockDynamics:
    torch.manual_seed(seed)
    field = VelocityField(1, width=6).double()
    torch.nn.init.normal_(field.layers[-1].conv.weight, std=0.3)
    block = BlockDynamics(field)
    block.probe = torch.randn(2, 1, 8, 8, dtype=torch.float64)
    return block


@pytest.mark.parametrize("exact_end", [False, True])
def test_exact_end_makes_the_last_step_end_at_the_interval_end(exact_end: bool) -> None:
    block = _block()
    steps: dict[str, list[float]] = {"forward": [], "reverse": [], "adjoint": []}
    solver = SolverOptions(method="bosh3", atol=1e-3, rtol=1e-3, adjoint=True, exact_end=exact_end)
    x = images().requires_grad_()
    zeros = torch.zeros(2, dtype=torch.float64)
    # torchdiffeq reports (step start, step length > 0) of every accepted step.
    block.callback_accept_step = lambda t0, y0, dt: steps["forward"].append((t0 + dt).item())
    block.callback_accept_step_adjoint = lambda t0, y0, dt: steps["adjoint"].append(
        (t0 - dt).item()
    )
    z, _ = integrate(block, (x, zeros), solver=solver)
    z.sum().backward()
    block.callback_accept_step = lambda t0, y0, dt: steps["reverse"].append((t0 - dt).item())
    with torch.no_grad():
        integrate(block, (x,), solver=solver, reverse=True)
    ends = {"forward": 1.0, "reverse": 0.0, "adjoint": 0.0}
    for direction, end in ends.items():
        assert (steps[direction][-1] == pytest.approx(end, abs=1e-12)) == exact_end, direction


def test_exact_end_reduces_the_error_of_a_loose_solve() -> None:
    reference_model = settings_model(solver=TIGHT, divergence="exact", seed=3)
    x = images(batch=4)
    with torch.no_grad():
        reference = reference_model.density(x).log_prob
        errors = {}
        for exact_end in (False, True):
            loose = SolverOptions(method="bosh3", atol=1e-3, rtol=1e-3, exact_end=exact_end)
            log_prob = with_settings(reference_model, eval_solver=loose).density(x).log_prob
            errors[exact_end] = (log_prob - reference).abs().max().item()
    assert errors[True] < 0.1 * errors[False]


@pytest.mark.parametrize("setting", [{"first_step": 0.1}, {"exact_end": True}])
@pytest.mark.parametrize("grid", [{"method": "rk4", "step_size": 0.25}, {"method": "euler"}])
def test_adaptive_settings_are_refused_for_a_fixed_grid(setting: dict, grid: dict) -> None:
    with pytest.raises(MRCNFSettingError, match=next(iter(setting))) as error:
        SolverOptions(**grid, **setting)
    assert "\n" not in str(error.value)


# Conditioning


def _conditioning_inputs(model: MRCNF) -> list[torch.Tensor]:
    """Record the conditioning channels that level 0's first convolution receives."""
    seen: list[torch.Tensor] = []
    state_channels = 3 * model.config.channels
    first = model.flows[0].blocks[0].field.layers[0].conv
    # The first convolution's input is [time, state, conditioning image].
    first.register_forward_pre_hook(lambda _, args: seen.append(args[0][:, 1 + state_channels :]))
    return seen


CONDITIONINGS = {"raw": lambda coarse: coarse, "centred": lambda coarse: 2 * coarse - 1}


@pytest.mark.parametrize("conditioning", sorted(CONDITIONINGS))
def test_conditioning_feeds_the_coarse_image_raw_or_centred(conditioning: str) -> None:
    model = settings_model(conditioning=conditioning)
    expected = CONDITIONINGS[conditioning]
    seen = _conditioning_inputs(model)
    x = images()
    with torch.no_grad():
        latents = model.density(x).latents
        torch.testing.assert_close(seen[-1], expected(model.pyramid(x)[0][1]), rtol=0, atol=0)
        decoded = model.sample([torch.zeros_like(z) for z in latents])
    torch.testing.assert_close(seen[-1], expected(model.pyramid(decoded)[0][1]))


# Levels: choosing which to integrate


def test_integrating_level_0_alone_gives_its_parameters_the_full_gradient() -> None:
    model = settings_model(resolutions=3)
    x = images()
    model.density(x, generator=probes()).log_prob.sum().backward()
    full = [p.grad.clone() for p in model.flows[0].parameters()]
    model.zero_grad(set_to_none=True)
    # Through forward, as DistributedDataParallel calls it.
    density = model(x, generator=probes(), levels=[0])
    density.log_prob.sum().backward()
    assert density.levels == (0,)
    assert len(density.log_prob_terms) == len(density.latents) == 1
    for gradient, parameter in zip(full, model.flows[0].parameters(), strict=True):
        torch.testing.assert_close(parameter.grad, gradient, atol=1e-10, rtol=0)
    assert all(p.grad is None for flow in model.flows[1:] for p in flow.parameters())


def test_the_probes_of_a_level_do_not_depend_on_which_levels_are_integrated() -> None:
    model = settings_model(resolutions=3)
    x = images()
    with torch.no_grad():
        full = model.density(x, generator=probes())
        middle = model.density(x, generator=probes(), levels=[1])
        # Without the skipped level's probes, level 1 would draw level 0's probes instead.
        other_probes = model.density(x, generator=probes(seed=8), levels=[1])
    torch.testing.assert_close(middle.log_prob, full.log_prob_terms[1], atol=1e-12, rtol=0)
    torch.testing.assert_close(middle.latents[0], full.latents[1], atol=1e-12, rtol=0)
    assert not torch.allclose(other_probes.log_prob, middle.log_prob, atol=1e-6)
    assert middle.levels == (1,)


@pytest.mark.parametrize("levels", [[3], [-1], [], [1, 1]])
def test_levels_outside_the_model_are_refused(levels: list[int]) -> None:
    with pytest.raises(MRCNFSettingError, match="levels"):
        settings_model(resolutions=3).density(images(), levels=levels)


# One image per level


def test_equal_copies_per_level_give_the_density_of_the_single_image() -> None:
    model = settings_model(resolutions=3)
    x = images()
    with torch.no_grad():
        single = model.density(x, generator=probes())
        copies = model.density(torch.stack([x] * 3, dim=1), generator=probes())
    assert torch.equal(copies.log_prob, single.log_prob)
    for term, single_term in zip(copies.log_prob_terms, single.log_prob_terms, strict=True):
        assert torch.equal(term, single_term)
    assert copies.dimensions == single.dimensions


def test_each_level_sees_only_its_own_copy() -> None:
    model = settings_model(resolutions=3)
    copies = torch.stack([images(seed=seed) for seed in (1, 2, 3)], dim=1)
    with torch.no_grad():
        base = model.density(copies, generator=probes()).log_prob_terms
        for changed in range(3):
            altered = copies.clone()
            altered[:, changed] = images(seed=10 + changed)
            terms = model.density(altered, generator=probes()).log_prob_terms
            for level, (term, base_term) in enumerate(zip(terms, base, strict=True)):
                assert torch.equal(term, base_term) == (level != changed), (changed, level)


@pytest.mark.parametrize("shape", [(2, 8, 8), (2, 2, 1, 8, 8), (2, 3, 1, 1, 8, 8)])
def test_other_input_shapes_are_refused(shape: tuple[int, ...]) -> None:
    with pytest.raises(MRCNFSettingError, match="B×3×C×H×W"):
        settings_model(resolutions=3).density(torch.rand(shape, dtype=torch.float64))
