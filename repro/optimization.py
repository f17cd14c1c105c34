"""One optimisation step of training, the function both ``repro train`` and ``repro bench`` run.

The step minimises ``mean bpd + λ_KE·KE + λ_JF·JF`` (RNODE's regularised objective; with
``training.train_levels``, the trained levels' share of it) over one batch, accumulated over
micro-batches; clips the gradient norm and skips the update when the norm is too large (the
authors' rule). It times its forward and backward phases, so that the benchmark
reports them from the very code that trains.
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import dataclass

import torch
from torch import nn

from mrcnf import MRCNF, Density
from repro.config import Experiment, LossConfig
from repro.distributed import SINGLE_PROCESS, World
from repro.progressive import levels_to_integrate
from repro.runtime import generator, synchronize

# Per-iteration loss terms, in the order of :func:`loss_terms`.
LOGGED = ("loss", "bpd", "kinetic_energy", "jacobian_frobenius")
# The random stream of the Hutchinson probes (training's other streams are in repro.train).
PROBE_STREAM = 3


@dataclass(frozen=True)
class StepOutcome:
    """What one optimisation step did, on this process.

    Attributes:
        terms: Means over this process's batch share of the :data:`LOGGED` terms.
        grad_norm: Gradient norm before clipping (averaged over processes by DDP).
        skipped: Whether the update was skipped (norm not finite, or ≥ ``skip_grad_norm``).
        lr: The learning rate of the step.
        forward_evaluations: Velocity evaluations of the forward passes, per block (finest
            level first), summed over micro-batches.
        nfe_backward: Velocity evaluations of the backward passes (adjoint only).
        forward_seconds: Wall time of the forward passes.
        backward_seconds: Wall time of the backward passes, clipping and update.
    """

    terms: torch.Tensor
    grad_norm: float
    skipped: bool
    lr: float
    forward_evaluations: tuple[int, ...]
    nfe_backward: int
    forward_seconds: float
    backward_seconds: float

    @property
    def nfe_forward(self) -> int:
        return sum(self.forward_evaluations)

    @property
    def seconds(self) -> float:
        return self.forward_seconds + self.backward_seconds


def learning_rate(iteration: int, *, base: float, warmup: int) -> float:
    """Linear warm-up over ``warmup`` iterations, then constant."""
    return base * min(1.0, (iteration + 1) / max(warmup, 1))


def loss_terms(density: Density, weights: LossConfig) -> torch.Tensor:
    """Batch means of (loss, bpd, kinetic energy, Jacobian-Frobenius), in the order of LOGGED."""
    bpd = density.bits_per_dim().mean()
    kinetic = density.kinetic_energy.mean()
    jacobian = density.jacobian_frobenius.mean()
    loss = bpd + weights.kinetic_energy * kinetic + weights.jacobian_frobenius * jacobian
    return torch.stack([loss, bpd, kinetic, jacobian])


def optimization_step(
    model: MRCNF,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    *,
    experiment: Experiment,
    iteration: int,
    network: nn.Module | None = None,
    world: World = SINGLE_PROCESS,
) -> StepOutcome:
    """One step on ``x``, this process's share of the global batch (dequantised, on its device).

    Args:
        model: The model being trained (in training mode).
        optimizer: Its optimiser; the step sets the learning rate of ``iteration``.
        x: B×C×H×W images in [0, 1] (B×S×C×H×W: one dequantisation per level).
        experiment: Loss weights, optimiser rules, micro-batches and the probes' seed.
        iteration: The step's index: it sets the learning rate and seeds the probes.
        network: What to call for the density: the DistributedDataParallel wrapper of ``model``
            under torchrun (default: ``model``).
        world: This process's place among the processes of the run.
    """
    settings, rules = experiment.training, experiment.optimizer
    network = model if network is None else network
    lr = learning_rate(iteration, base=rules.lr, warmup=rules.warmup_iterations)
    for group in optimizer.param_groups:
        group["lr"] = lr
    model.reset_function_evaluations()
    optimizer.zero_grad(set_to_none=True)
    micro_batches = x.chunk(settings.accumulation_steps)
    # Frozen levels contribute nothing to the gradient: progressive training skips their solves.
    levels = levels_to_integrate(experiment)
    terms = torch.zeros(len(LOGGED), device=x.device)
    forward_seconds = backward_seconds = 0.0
    forward_evaluations = [0] * len(model.blocks)
    for micro, part in enumerate(micro_batches):
        # DDP averages gradients over processes once, after the last micro-batch.
        last = micro == len(micro_batches) - 1
        with network.no_sync() if world.distributed and not last else nullcontext():
            probes = generator(x.device, settings.seed, PROBE_STREAM, iteration, world.rank, micro)
            before = [block.nfe for block in model.blocks]
            began = _clock(x.device)
            density = network(part, generator=probes, levels=levels)
            part_terms = loss_terms(density, experiment.loss)
            middle = _clock(x.device)
            for index, block in enumerate(model.blocks):
                forward_evaluations[index] += block.nfe - before[index]
            (part_terms[0] / len(micro_batches)).backward()
            forward_seconds += middle - began
            backward_seconds += _clock(x.device) - middle
        terms += part_terms.detach() / len(micro_batches)
    began = _clock(x.device)
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), rules.grad_clip).item()
    skipped = not math.isfinite(grad_norm) or grad_norm >= rules.skip_grad_norm
    if not skipped:
        optimizer.step()
    return StepOutcome(
        terms=terms,
        grad_norm=grad_norm,
        skipped=skipped,
        lr=lr,
        forward_evaluations=tuple(forward_evaluations),
        nfe_backward=model.function_evaluations - sum(forward_evaluations),
        forward_seconds=forward_seconds,
        backward_seconds=backward_seconds + _clock(x.device) - began,
    )


def _clock(device: torch.device) -> float:
    synchronize(device)
    return time.perf_counter()
