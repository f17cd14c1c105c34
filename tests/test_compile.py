"""Compiled velocity networks (torch.compile) compute what the eager ones do, to 1e-6."""

from __future__ import annotations

import pytest
import torch

from mrcnf import MRCNFConfig, SolverOptions
from tests.test_model import images, tiny_model

# Fixed steps: an adaptive solver could round its way to other steps, which is not what is tested.
RK4 = SolverOptions(method="rk4", step_size=0.25)


def _pair() -> tuple:
    """Two float32 copies of one tiny model, the second compiled, in training mode."""
    models = []
    for _ in range(2):
        model = tiny_model(2, blocks=1, solver=RK4, divergence="hutchinson").float().train()
        model.config = MRCNFConfig(**{**model.config.__dict__, "train_solver": RK4})
        models.append(model)
    models[1].compile_velocity_fields()
    return models


@pytest.mark.slow
def test_compiled_velocity_fields_give_the_eager_bits_per_dim_gradients_and_samples() -> None:
    x = images(batch=3, size=4).float()
    results = []
    for model in _pair():
        density = model.density(x, regularize=True, generator=torch.Generator().manual_seed(2))
        loss = density.bits_per_dim().mean() + 0.01 * density.kinetic_energy.mean()
        loss.backward()
        with torch.no_grad():
            latents = model.prior_latents(range(3), height=4, width=4, temperature=1.0)
            samples = model.eval().sample(latents)
        gradients = torch.cat([p.grad.flatten() for p in model.parameters()])
        results.append((density.bits_per_dim().detach(), gradients, samples))
    (eager_bpd, eager_grad, eager_samples), (bpd, grad, samples) = results
    torch.testing.assert_close(bpd, eager_bpd, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(samples, eager_samples, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(grad, eager_grad, atol=1e-6, rtol=1e-5)
