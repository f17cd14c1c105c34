"""The velocity network's explicit vector-Jacobian product against autograd."""

from __future__ import annotations

import pytest
import torch

from mrcnf.cnf import DIVERGENCES
from mrcnf.velocity import VelocityField

CHANNELS, COND, SIZE, BATCH = 3, 2, 5, 4


def random_field(*, conditional: bool, seed: int = 0) -> VelocityField:
    """A float64 field with every layer random (the last one is not zeroed)."""
    torch.manual_seed(seed)
    field = VelocityField(CHANNELS, width=6, cond_channels=COND if conditional else 0).double()
    field.layers[-1].conv.reset_parameters()
    return field


def inputs(*, conditional: bool, per_sample_time: bool, scale: float = 1.0):
    generator = torch.Generator().manual_seed(1)

    def draw(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator, dtype=torch.float64)

    t = torch.rand(BATCH, dtype=torch.float64) if per_sample_time else torch.tensor(0.3).double()
    z = scale * draw(BATCH, CHANNELS, SIZE, SIZE)
    cond = draw(BATCH, COND, SIZE, SIZE) if conditional else None
    return t, z, cond, draw(BATCH, CHANNELS, SIZE, SIZE)


@pytest.mark.parametrize("conditional", [False, True])
@pytest.mark.parametrize("per_sample_time", [False, True])
@pytest.mark.parametrize("scale", [1.0, 50.0])  # 50: pre-activations beyond softplus' threshold
def test_explicit_vector_jacobian_product_equals_autograd(
    conditional: bool, per_sample_time: bool, scale: float
) -> None:
    field = random_field(conditional=conditional)
    t, z, cond, vector = inputs(
        conditional=conditional, per_sample_time=per_sample_time, scale=scale
    )
    z.requires_grad_()
    expected_f = field(t, z, cond)
    (expected_vjp,) = torch.autograd.grad(expected_f, z, vector)
    f, vjp = field.forward_with_vjp(t, z, cond, vector)
    torch.testing.assert_close(f, expected_f, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(vjp, expected_vjp, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("conditional", [False, True])
def test_explicit_and_autograd_hutchinson_have_the_same_training_gradients(
    conditional: bool,
) -> None:
    """The double backward through the divergence (what training differentiates) agrees."""
    results = {}
    for name in ("hutchinson", "hutchinson_autograd"):
        field = random_field(conditional=conditional)
        t, z, cond, probe = inputs(conditional=conditional, per_sample_time=False)
        z.requires_grad_()
        f, divergence, frobenius = DIVERGENCES[name](field, t, z, cond, probe)
        loss = (f.pow(2).mean() + divergence.sum() + frobenius.sum()).square()
        gradients = torch.autograd.grad(loss, [z, *field.parameters()])
        results[name] = (f, divergence, frobenius, *gradients)
    for explicit, autograd in zip(*results.values(), strict=True):
        torch.testing.assert_close(explicit, autograd, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", sorted(DIVERGENCES))
def test_every_estimator_returns_detached_values_outside_grad_mode(name: str) -> None:
    field = random_field(conditional=True)
    t, z, cond, probe = inputs(conditional=True, per_sample_time=False)
    with torch.no_grad():
        outputs = DIVERGENCES[name](field, t, z, cond, probe)
    assert all(not value.requires_grad for value in outputs)
    assert all(torch.isfinite(value).all() for value in outputs)
