"""The multi-resolution model: exact likelihood, inversion, sampling, parameter counts."""

from __future__ import annotations

import math

import pytest
import torch

from mrcnf import (
    DIVERGENCES,
    MRCNF,
    MRCNFConfig,
    SolverOptions,
    count_parameters,
    logit_transform,
    split,
)

TIGHT = SolverOptions(method="dopri5", atol=1e-9, rtol=1e-9)
ALPHA = 0.05


def tiny_model(
    resolutions: int,
    *,
    blocks: int = 2,
    width: int = 8,
    solver: SolverOptions = TIGHT,
    seed: int = 0,
    **settings: object,
) -> MRCNF:
    """A float64 grey model with random, clearly non-zero dynamics (last layers re-initialised).

    ``settings`` are further :class:`MRCNFConfig` fields (default: exact divergence, α = 0.05).
    """
    torch.manual_seed(seed)
    config = MRCNFConfig(
        channels=1,
        resolutions=resolutions,
        blocks=blocks,
        width=width,
        train_solver=solver,
        eval_solver=solver,
        **{"logit_alpha": ALPHA, "divergence": "exact", **settings},
    )
    model = MRCNF(config).double().eval()
    for flow in model.flows:
        for block in flow.blocks:
            torch.nn.init.normal_(block.field.layers[-1].conv.weight, std=0.3)
    return model


def images(batch: int = 2, size: int = 4, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 1, size, size, generator=generator, dtype=torch.float64) * 0.9 + 0.05


@pytest.mark.parametrize(
    ("transform", "detail_logit"), [("unimodular", False), ("haar", False), ("haar", True)]
)
@pytest.mark.parametrize("resolutions", [2, 3])
def test_log_prob_equals_change_of_variables_with_brute_force_jacobian(
    resolutions: int, transform: str, detail_logit: bool
) -> None:
    # detail_logit: the authors' Haar arm, details mapped to y/2 + ½ and through a logit.
    model = tiny_model(resolutions, transform=transform, detail_logit=detail_logit)
    x = images(batch=1)

    def latent_map(flat: torch.Tensor) -> torch.Tensor:
        latents = model.density(flat.reshape(x.shape)).latents
        return torch.cat([z.flatten() for z in latents])

    jacobian = torch.autograd.functional.jacobian(latent_map, x.flatten())
    z = latent_map(x.flatten()).detach()
    expected = -0.5 * (z.pow(2) + math.log(2 * math.pi)).sum() + torch.linalg.slogdet(jacobian)[1]
    with torch.no_grad():
        density = model.density(x)
    assert density.log_prob.item() == pytest.approx(expected.item(), abs=1e-4)
    torch.testing.assert_close(torch.stack(density.log_prob_terms).sum(0), density.log_prob)


def test_hutchinson_estimate_averages_to_the_exact_divergence() -> None:
    x = images(batch=1).expand(400, -1, -1, -1)
    exact_model = tiny_model(2)
    hutchinson_model = tiny_model(2, divergence="hutchinson")
    with torch.no_grad():
        exact = exact_model.density(x[:1]).log_prob.item()
        estimates = hutchinson_model.density(x, generator=torch.Generator().manual_seed(3)).log_prob
    standard_error = estimates.std().item() / math.sqrt(len(estimates))
    assert standard_error > 0
    assert abs(estimates.mean().item() - exact) < 3 * standard_error


def test_both_hutchinson_formulations_give_the_same_log_density() -> None:
    x = images(batch=3)
    log_probs = []
    for divergence in ("hutchinson", "hutchinson_autograd"):
        with torch.no_grad():
            density = tiny_model(2, divergence=divergence).density(
                x, generator=torch.Generator().manual_seed(3)
            )
        log_probs.append(density.log_prob)
    torch.testing.assert_close(log_probs[0], log_probs[1], atol=1e-8, rtol=1e-8)


@pytest.mark.parametrize(
    ("transform", "detail_logit"), [("unimodular", False), ("haar", False), ("haar", True)]
)
@pytest.mark.parametrize("resolutions", [1, 2, 3])
def test_sampling_the_latents_of_an_image_returns_the_image(
    resolutions: int, transform: str, detail_logit: bool
) -> None:
    model = tiny_model(
        resolutions, divergence="hutchinson", transform=transform, detail_logit=detail_logit
    )
    x = images(batch=3, size=8)
    with torch.no_grad():
        reconstruction = model.sample(model.density(x).latents)
    torch.testing.assert_close(reconstruction, x, atol=1e-4, rtol=0)


def test_temperature_zero_decodes_the_zero_latent() -> None:
    model = tiny_model(2)
    with torch.no_grad():
        latents = model.prior_latents(
            [5, 6], height=8, width=8, temperature=0.0, dtype=torch.float64
        )
        zero = [torch.zeros_like(z) for z in latents]
        torch.testing.assert_close(model.sample(latents), model.sample(zero))
        assert not torch.equal(model.sample(zero), model.sample([z + 1 for z in zero]))


def test_prior_latents_depend_on_the_seed_only() -> None:
    model = tiny_model(3)
    together = model.prior_latents([1, 2, 3], height=8, width=8, temperature=0.7)
    alone = model.prior_latents([2], height=8, width=8, temperature=0.7)
    for level_together, level_alone in zip(together, alone, strict=True):
        torch.testing.assert_close(level_together[1:2], level_alone)
    assert [tuple(z.shape[1:]) for z in together] == model.latent_shapes(8, 8)


@pytest.mark.parametrize("transform", ["unimodular", "haar"])
def test_bits_per_dim_with_zero_dynamics_is_the_standard_normal_of_the_transformed_data(
    transform: str,
) -> None:
    model = tiny_model(2, transform=transform)
    for flow in model.flows:
        for block in flow.blocks:
            torch.nn.init.zeros_(block.field.layers[-1].conv.weight)
            torch.nn.init.zeros_(block.field.layers[-1].conv.bias)
    x = images(batch=2, size=4)
    coarse, details = split(x, kind=transform)
    logits, logit_log_det = logit_transform(coarse, ALPHA)

    # log p(x) = log N(y) + log N(logit(x̄)) + log|dlogit/dx̄| + (Haar only) numel(x̄)·log(1/2)
    def normal(v: torch.Tensor) -> torch.Tensor:
        return (-0.5 * v.pow(2) - 0.5 * math.log(2 * math.pi)).flatten(1).sum(1)

    haar_log_det = coarse[0].numel() * math.log(0.5) if transform == "haar" else 0.0
    log_prob = normal(details) + normal(logits) + logit_log_det + haar_log_det
    expected_bpd = -log_prob / (x[0].numel() * math.log(2)) + 8
    with torch.no_grad():
        torch.testing.assert_close(model.density(x).bits_per_dim(), expected_bpd)


TABLE6 = [
    (1, 2, 158_268),
    (1, 4, 316_536),
    (1, 14, 1_107_876),
    (2, 8, 1_335_744),
    (2, 20, 3_339_360),
    (2, 40, 6_678_720),
    (3, 6, 1_528_812),
    (3, 8, 2_038_416),
    (3, 20, 5_096_040),
]


@pytest.mark.parametrize(("resolutions", "blocks", "expected"), TABLE6)
def test_parameter_count_of_table6_configuration(
    resolutions: int, blocks: int, expected: int
) -> None:
    model = MRCNF(MRCNFConfig(channels=3, resolutions=resolutions, blocks=blocks, width=64))
    assert count_parameters(model) == expected


def _training_gradients(*, adjoint: bool, divergence: str) -> list[torch.Tensor]:
    model = tiny_model(2, divergence=divergence, seed=4).train()
    solver = SolverOptions(method="dopri5", atol=1e-10, rtol=1e-10, adjoint=adjoint)
    model.config = MRCNFConfig(**{**model.config.__dict__, "train_solver": solver})
    # The same probes for both ways of backpropagating.
    density = model.density(images(batch=2), generator=torch.Generator().manual_seed(5))
    loss = (
        density.bits_per_dim().mean()
        + 0.01 * density.kinetic_energy.mean()
        + 0.01 * density.jacobian_frobenius.mean()
    )
    loss.backward()
    return [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("divergence", sorted(DIVERGENCES))
def test_adjoint_and_direct_backpropagation_give_the_same_finite_gradient(divergence: str) -> None:
    direct = _training_gradients(adjoint=False, divergence=divergence)
    adjoint = _training_gradients(adjoint=True, divergence=divergence)
    assert all(torch.isfinite(g).all() for g in direct + adjoint)
    assert sum(g.abs().sum().item() for g in direct) > 0
    for g_direct, g_adjoint in zip(direct, adjoint, strict=True):
        torch.testing.assert_close(g_adjoint, g_direct, atol=1e-4, rtol=1e-4)


def test_function_evaluations_are_counted_and_reset() -> None:
    model = tiny_model(2)
    with torch.no_grad():
        model.density(images())
    assert model.function_evaluations > 0
    model.reset_function_evaluations()
    assert model.function_evaluations == 0


def test_image_size_must_fit_the_number_of_resolutions() -> None:
    with pytest.raises(ValueError, match="divisible by 4"):
        tiny_model(3).density(images(size=6))


@pytest.mark.parametrize("adjoint", [False, True])
def test_training_step_of_a_freshly_initialised_model_has_finite_gradients(adjoint: bool) -> None:
    # Zero-initialised last layers make every error estimate of Δ zero at the first step.
    solver = SolverOptions(method="bosh3", atol=1e-3, rtol=1e-3, adjoint=adjoint)
    torch.manual_seed(0)
    model = MRCNF(MRCNFConfig(channels=1, resolutions=2, blocks=1, width=8, train_solver=solver))
    density = model.train().density(torch.rand(4, 1, 8, 8))
    loss = density.bits_per_dim().mean() + 0.01 * density.jacobian_frobenius.mean()
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_unknown_divergence_is_refused_naming_the_choices() -> None:
    with pytest.raises(ValueError, match="hutchinson_autograd"):
        MRCNF(MRCNFConfig(channels=1, resolutions=1, blocks=1, divergence="hutchinsn"))
