"""The per-sample adaptive solver: accurate, and a sample does not depend on its batch."""

from __future__ import annotations

import pytest
import torch

from mrcnf import SolverOptions, quantize
from mrcnf.cnf import PER_SAMPLE
from mrcnf.per_sample import odeint_per_sample
from tests.test_model import TIGHT, images, tiny_model


def test_solves_a_linear_ode_with_different_rates_per_sample() -> None:
    rates = torch.tensor([0.5, -1.0, 3.0], dtype=torch.float64)
    y0 = torch.ones(3, 2, dtype=torch.float64)
    y1 = odeint_per_sample(
        lambda t, y: rates[:, None] * y, y0, t0=0.0, t1=1.0, atol=1e-9, rtol=1e-9
    )
    torch.testing.assert_close(y1, torch.exp(rates)[:, None].expand(3, 2), atol=0, rtol=1e-7)
    back = odeint_per_sample(
        lambda t, y: rates[:, None] * y, y1, t0=1.0, t1=0.0, atol=1e-9, rtol=1e-9
    )
    torch.testing.assert_close(back, y0, atol=1e-7, rtol=0)


def test_time_dependent_right_hand_side_sees_per_sample_times() -> None:
    y0 = torch.zeros(4, 1, dtype=torch.float64)
    y1 = odeint_per_sample(lambda t, y: t[:, None] ** 2, y0, t0=0.0, t1=2.0, atol=1e-10, rtol=1e-10)
    assert y1.flatten().tolist() == pytest.approx([8 / 3] * 4, abs=1e-7)


def test_decoding_agrees_with_a_tight_torchdiffeq_solve() -> None:
    model = tiny_model(2)
    per_sample = SolverOptions(method=PER_SAMPLE, atol=1e-9, rtol=1e-9)
    with torch.no_grad():
        latents = model.density(images(batch=3, size=8)).latents
        torch.testing.assert_close(
            model.sample(latents, solver=per_sample),
            model.sample(latents, solver=TIGHT),
            atol=1e-5,
            rtol=0,
        )


def test_images_are_identical_whatever_the_batch_size() -> None:
    model = tiny_model(3, divergence="hutchinson").float()
    solver = SolverOptions(method=PER_SAMPLE, atol=1e-5, rtol=1e-5)
    latents = model.prior_latents(range(16), height=8, width=8, temperature=1.0)

    def decode(batch_size: int) -> torch.Tensor:
        chunks = [
            model.sample([z[i : i + batch_size] for z in latents], solver=solver)
            for i in range(0, 16, batch_size)
        ]
        return quantize(torch.cat(chunks))

    with torch.no_grad():
        assert torch.equal(decode(7), decode(16))


def test_density_states_are_refused() -> None:
    model = tiny_model(1)
    model.config = type(model.config)(
        **{**model.config.__dict__, "eval_solver": SolverOptions(method=PER_SAMPLE)}
    )
    with pytest.raises(ValueError, match="samples only"), torch.no_grad():
        model.density(images())
