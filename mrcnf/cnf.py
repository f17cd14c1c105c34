"""Continuous normalizing flows: ODE blocks, divergence estimators, RNODE regularisers
(docs/method.md §3).

One block integrates dz/dt = f(z, t | cond) over t ∈ [0, 1], data to noise. For the density it
carries the extra state Δ = -∫ tr(∂f/∂z) dt, so that ``log p(z(0)) = log p(z(1)) - Δ(1)``; when
training with RNODE it also carries the kinetic energy ∫ ½·mean(f²) dt and the Jacobian-Frobenius
term ∫ mean((εᵀ∂f/∂z)²) dt. The solver's error control covers z and Δ only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torchdiffeq import odeint, odeint_adjoint

from mrcnf.config import PER_SAMPLE, MRCNFSettingError, SolverOptions
from mrcnf.per_sample import EAGER, PerSampleExecution, odeint_per_sample
from mrcnf.velocity import VelocityField

Divergence = Callable[
    [VelocityField, Tensor, Tensor, Tensor | None, Tensor | None], tuple[Tensor, Tensor, Tensor]
]


def _autograd_leaf(z: Tensor, *, create_graph: bool) -> Tensor:
    """``z`` ready for ``torch.autograd.grad``, extending its graph when training."""
    if create_graph and z.requires_grad:
        return z
    # A fresh leaf: no graph to extend, or one torchdiffeq built outside grad mode.
    return z.detach().requires_grad_()


def _probe_terms(probe: Tensor, probe_jacobian: Tensor) -> tuple[Tensor, Tensor]:
    # εᵀ(∂f/∂z)ε, and mean((εᵀ∂f/∂z)²), an unbiased estimate of ‖∂f/∂z‖²_F / D.
    divergence = (probe_jacobian * probe).flatten(1).sum(1)
    return divergence, probe_jacobian.pow(2).flatten(1).mean(1)


def hutchinson_divergence(
    field: VelocityField, t: Tensor, z: Tensor, cond: Tensor | None, probe: Tensor | None
) -> tuple[Tensor, Tensor, Tensor]:
    """The velocity and Hutchinson's estimate εᵀ(∂f/∂z)ε of its divergence.

    The vector-Jacobian product is the network's explicit backward pass
    (:meth:`VelocityField.forward_with_vjp`), differentiable when grad mode is on.

    Args:
        field: The velocity network.
        t: Time.
        z: B×… state.
        cond: Conditioning image, or ``None``.
        probe: Gaussian probe ε shaped like ``z``, held fixed for a whole solve.

    Returns:
        ``(f, divergence, jacobian_frobenius)``; the last two of shape (B,), the third being
        mean((εᵀ∂f/∂z)²), an unbiased estimate of ‖∂f/∂z‖²_F / D.
    """
    assert probe is not None, "Hutchinson's estimator needs a probe"
    f, probe_jacobian = field.forward_with_vjp(t, z, cond, probe)
    return f, *_probe_terms(probe, probe_jacobian)


def hutchinson_autograd_divergence(
    field: VelocityField, t: Tensor, z: Tensor, cond: Tensor | None, probe: Tensor | None
) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`hutchinson_divergence` with the product from ``torch.autograd.grad``.

    The formulation of FFJORD, RNODE and the authors' code: same values, slower to train (see
    :meth:`VelocityField.forward_with_vjp`). Kept as the reference that benchmarks compare with.
    """
    assert probe is not None, "Hutchinson's estimator needs a probe"
    create_graph = torch.is_grad_enabled()
    with torch.enable_grad():
        z = _autograd_leaf(z, create_graph=create_graph)
        f = field(t, z, cond)
        (probe_jacobian,) = torch.autograd.grad(f, z, probe, create_graph=create_graph)
    if not create_graph:
        f, probe_jacobian = f.detach(), probe_jacobian.detach()
    return f, *_probe_terms(probe, probe_jacobian)


def exact_divergence(
    field: VelocityField, t: Tensor, z: Tensor, cond: Tensor | None, probe: Tensor | None
) -> tuple[Tensor, Tensor, Tensor]:
    """The exact trace of ∂f/∂z, one backward pass per dimension (tests and tiny inputs only).

    Args and Returns as :func:`hutchinson_divergence`; ``probe`` is ignored, and the third
    output is the exact ‖∂f/∂z‖²_F / D.
    """
    create_graph = torch.is_grad_enabled()
    with torch.enable_grad():
        z = _autograd_leaf(z, create_graph=create_graph)
        f = field(t, z, cond)
        flat = f.flatten(1)
        dims = flat.shape[1]
        rows = [
            torch.autograd.grad(flat[:, i].sum(), z, retain_graph=True, create_graph=create_graph)
            for i in range(dims)
        ]
    jacobian = torch.stack([row.flatten(1) for (row,) in rows], dim=1)
    divergence = jacobian.diagonal(dim1=1, dim2=2).sum(1)
    frobenius = jacobian.pow(2).sum((1, 2)) / dims
    if not create_graph:
        f, divergence, frobenius = f.detach(), divergence.detach(), frobenius.detach()
    return f, divergence, frobenius


DIVERGENCES: dict[str, Divergence] = {
    "hutchinson": hutchinson_divergence,
    "hutchinson_autograd": hutchinson_autograd_divergence,
    "exact": exact_divergence,
}


@dataclass
class FlowOutput:
    """What one CNF returns for a batch.

    Attributes:
        z: The latent, shaped like the input.
        delta_log_prob: (B,) ∫ tr(∂f/∂z) dt summed over blocks: ``log p(x) = log N(z) + this``.
        kinetic_energy: (B,) ∫ ½·mean(f²) dt summed over blocks (zeros when not regularising).
        jacobian_frobenius: (B,) ∫ mean((εᵀ∂f/∂z)²) dt summed over blocks (zeros likewise).
    """

    z: Tensor
    delta_log_prob: Tensor
    kinetic_energy: Tensor
    jacobian_frobenius: Tensor


def _rms(x: Tensor) -> Tensor:
    # Step sizes are not differentiated (sqrt'(0) is infinite when an error estimate is zero).
    return x.detach().pow(2).mean().sqrt()


def _density_state_norm(state: tuple[Tensor, ...]) -> Tensor:
    # Error control on z and Δ only: the regulariser integrals need not be accurate.
    return torch.maximum(_rms(state[0]), _rms(state[1]))


class BlockDynamics(nn.Module):
    """The right-hand side of one ODE block, in the form torchdiffeq integrates.

    The per-solve inputs (conditioning image, probe, divergence estimator) are set by
    :class:`CNF` before each solve; keeping them out of the state keeps the probe fixed through the
    forward and the adjoint solves. ``nfe`` counts evaluations.

    Args:
        field: The velocity network.
    """

    def __init__(self, field: VelocityField) -> None:
        super().__init__()
        self.field = field
        self.cond: Tensor | None = None
        self.probe: Tensor | None = None
        self.divergence: Divergence = hutchinson_divergence
        self.nfe = 0

    def forward(self, t: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        self.nfe += 1
        z = state[0]
        if len(state) == 1:
            return (self.field(t, z, self.cond),)
        f, divergence, jacobian_frobenius = self.divergence(self.field, t, z, self.cond, self.probe)
        if len(state) == 2:
            return f, -divergence
        return f, -divergence, 0.5 * f.pow(2).flatten(1).mean(1), jacobian_frobenius


def _torchdiffeq_options(
    solver: SolverOptions, times: Tensor, *, density_state: bool, reverse: bool
) -> tuple[dict, dict]:
    """torchdiffeq's ``options`` and ``adjoint_options`` for one solve over ``times``."""
    options: dict = {}
    if solver.step_size is not None:
        options["step_size"] = solver.step_size
    if solver.first_step is not None:
        options["first_step"] = solver.first_step
    # As torchdiffeq's default: the adjoint solve takes the same options, with its own norm.
    adjoint_options = dict(options)
    if density_state:
        options["norm"] = _density_state_norm
    if solver.exact_end:
        options["step_t"] = times[1:]
        # torchdiffeq runs the adjoint solve back to the start in the forward solve's internal
        # time, which it negates when the forward solve runs backwards.
        adjoint_options["step_t"] = -times[:1] if reverse else times[:1]
    return options, adjoint_options


def integrate(
    dynamics: BlockDynamics,
    state: tuple[Tensor, ...],
    *,
    solver: SolverOptions,
    reverse: bool = False,
    execution: PerSampleExecution = EAGER,
) -> tuple[Tensor, ...]:
    """Integrate one block over [0, 1] (or [1, 0] when ``reverse``) and return the final state.

    ``solver.first_step`` sets the adaptive solver's first trial step. ``solver.exact_end`` passes
    the end time as torchdiffeq's ``step_t``, so that the last step is shortened to end exactly
    there instead of stepping past it and interpolating back; the adjoint's backward solve likewise
    ends exactly at the start. The per-sample solver always ends exactly at its end time, so
    ``exact_end`` changes nothing for it.

    Args:
        dynamics: The block's right-hand side, with its per-solve inputs already set.
        state: ``(z,)``, ``(z, Δ)`` or ``(z, Δ, kinetic, jacobian_frobenius)``.
        solver: Solver settings.
        reverse: Integrate from noise to data (sampling).
        execution: How the per-sample solver runs its steps (its result does not depend on it).

    Returns:
        The state at the end of the interval.

    Raises:
        MRCNFSettingError: If the per-sample solver is asked to integrate density states.
    """
    z = state[0]
    if solver.method == PER_SAMPLE:
        if len(state) != 1:
            raise MRCNFSettingError(f"{PER_SAMPLE} integrates samples only, not log-densities")
        t0, t1 = (1.0, 0.0) if reverse else (0.0, 1.0)
        rhs = lambda t, value: dynamics(t, (value,))[0]  # noqa: E731
        tolerances = dict(atol=solver.atol, rtol=solver.rtol, first_step=solver.first_step)
        return (odeint_per_sample(rhs, z, t0=t0, t1=t1, execution=execution, **tolerances),)
    times = torch.tensor([1.0, 0.0] if reverse else [0.0, 1.0], device=z.device, dtype=z.dtype)
    options, adjoint_options = _torchdiffeq_options(
        solver, times, density_state=len(state) > 2, reverse=reverse
    )
    kwargs = dict(rtol=solver.rtol, atol=solver.atol, method=solver.method, options=options)
    if solver.adjoint:
        extra = tuple(t for t in (dynamics.cond,) if t is not None and t.requires_grad)
        adjoint_params = tuple(p for p in dynamics.parameters() if p.requires_grad) + extra
        trajectory = odeint_adjoint(
            dynamics,
            state,
            times,
            adjoint_params=adjoint_params,
            adjoint_options=adjoint_options,
            **kwargs,
        )
    else:
        trajectory = odeint(dynamics, state, times, **kwargs)
    return tuple(s[-1] for s in trajectory)


class CNF(nn.Module):
    """A stack of ODE blocks modelling one resolution.

    Args:
        channels: Channels of the modelled variable.
        blocks: Number of ODE blocks.
        width: Hidden width of every velocity network.
        cond_channels: Channels of the conditioning image (0: unconditional).
    """

    def __init__(self, channels: int, *, blocks: int, width: int, cond_channels: int = 0) -> None:
        super().__init__()
        if blocks < 1:
            raise MRCNFSettingError(f"a CNF needs at least one block, got {blocks}")
        self.blocks = nn.ModuleList(
            BlockDynamics(VelocityField(channels, width=width, cond_channels=cond_channels))
            for _ in range(blocks)
        )

    def forward(
        self,
        x: Tensor,
        *,
        solver: SolverOptions,
        cond: Tensor | None = None,
        divergence: str = "hutchinson",
        regularize: bool = False,
        generator: torch.Generator | None = None,
    ) -> FlowOutput:
        """Map data to latent, accumulating the change in log-density.

        Args:
            x: B×C×H×W input.
            solver: Solver settings.
            cond: Conditioning image, for conditional CNFs.
            divergence: A key of :data:`DIVERGENCES`.
            regularize: Also integrate the RNODE regularisers.
            generator: Source of the Hutchinson probes (one per block solve).

        Returns:
            The latent with the integrated log-density change and regularisers.
        """
        estimator = DIVERGENCES[divergence]
        zeros = x.new_zeros(x.shape[0])
        state: tuple[Tensor, ...] = (x, zeros, zeros, zeros) if regularize else (x, zeros)
        # Drawn for every estimator, so the random stream does not depend on the choice.
        probes = self.draw_probes(x, generator=generator)
        for block, probe in zip(self.blocks, probes, strict=True):
            block.cond, block.divergence, block.probe = cond, estimator, probe
            state = integrate(block, state, solver=solver)
        return FlowOutput(
            z=state[0],
            delta_log_prob=-state[1],
            kinetic_energy=state[2] if regularize else zeros,
            jacobian_frobenius=state[3] if regularize else zeros,
        )

    def draw_probes(self, x: Tensor, *, generator: torch.Generator | None = None) -> list[Tensor]:
        """The Gaussian Hutchinson probes of one :meth:`forward` call, one per block in order.

        Args:
            x: The input the probes are shaped like (its device and dtype too).
            generator: Source of the probes.

        Returns:
            One probe per block, first block first.
        """
        return [
            torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            for _ in self.blocks
        ]

    def inverse(
        self,
        z: Tensor,
        *,
        solver: SolverOptions,
        cond: Tensor | None = None,
        execution: PerSampleExecution = EAGER,
    ) -> Tensor:
        """Map latent to data by integrating every block backwards in time, last block first."""
        for block in reversed(self.blocks):
            block.cond = cond
            (z,) = integrate(block, (z,), solver=solver, reverse=True, execution=execution)
        return z
