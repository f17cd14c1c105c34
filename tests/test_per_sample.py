"""The per-sample adaptive solver: accurate, a sample does not depend on its batch, and every way
of running its steps (checked once per several steps, replayed as a CUDA graph) gives the same
result bit for bit."""

from __future__ import annotations

import pytest
import torch

from mrcnf import SolverOptions, quantize
from mrcnf.cnf import PER_SAMPLE
from mrcnf.per_sample import PerSampleExecution, odeint_per_sample
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


CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _decoded(model, latents, solver, execution: PerSampleExecution) -> torch.Tensor:
    with torch.no_grad():
        return model.sample(latents, solver=solver, execution=execution)


@pytest.mark.parametrize("steps_per_check", [2, 3, 8])
def test_checking_for_the_end_once_per_several_steps_changes_no_bit(steps_per_check: int) -> None:
    model = tiny_model(3, divergence="hutchinson").float()
    solver = SolverOptions(method=PER_SAMPLE, atol=1e-5, rtol=1e-5)
    latents = model.prior_latents(range(6), height=8, width=8, temperature=1.0)
    one_at_a_time = _decoded(model, latents, solver, PerSampleExecution())
    chunked = _decoded(model, latents, solver, PerSampleExecution(steps_per_check=steps_per_check))
    assert torch.equal(chunked, one_at_a_time)


def test_finished_samples_stay_put_through_the_extra_steps_of_a_chunk() -> None:
    rates = torch.tensor([0.1, 4.0], dtype=torch.float64)  # the first finishes in far fewer steps
    y0 = torch.ones(2, 3, dtype=torch.float64)
    solve = dict(t0=0.0, t1=1.0, atol=1e-8, rtol=1e-8)
    alone = odeint_per_sample(lambda t, y: rates[:1, None] * y, y0[:1], **solve)
    chunked = odeint_per_sample(
        lambda t, y: rates[:, None] * y,
        y0,
        execution=PerSampleExecution(steps_per_check=16),
        **solve,
    )
    assert torch.equal(chunked[:1], alone)


def test_the_step_limit_holds_when_steps_come_in_chunks() -> None:
    y0 = torch.ones(2, 1, dtype=torch.float64)
    with pytest.raises(RuntimeError, match="more than 6 steps"):
        odeint_per_sample(
            lambda t, y: -50 * y,
            y0,
            t0=0.0,
            t1=1.0,
            atol=1e-12,
            rtol=1e-12,
            max_steps=5,
            execution=PerSampleExecution(steps_per_check=3),
        )


def test_bad_executions_are_refused() -> None:
    with pytest.raises(ValueError, match="steps_per_check must be ≥ 1"):
        PerSampleExecution(steps_per_check=0)
    with pytest.raises(ValueError, match="needs a CUDA tensor"):
        odeint_per_sample(
            lambda t, y: y,
            torch.ones(1, 1),
            t0=0.0,
            t1=1.0,
            atol=1e-3,
            rtol=1e-3,
            execution=PerSampleExecution(cuda_graph=True),
        )


@CUDA
@pytest.mark.parametrize("steps_per_check", [1, 4])
def test_cuda_graph_replays_give_the_eager_images_bit_for_bit(steps_per_check: int) -> None:
    model = tiny_model(3, divergence="hutchinson").float().cuda()
    solver = SolverOptions(method=PER_SAMPLE, atol=1e-5, rtol=1e-5)
    latents = model.prior_latents(range(6), height=8, width=8, temperature=1.0, device="cuda")
    graphed = PerSampleExecution(steps_per_check=steps_per_check, cuda_graph=True)
    with torch.backends.cudnn.flags(enabled=True, benchmark=False, deterministic=True):
        eager = _decoded(model, latents, solver, PerSampleExecution())
        assert torch.equal(_decoded(model, latents, solver, graphed), eager)
