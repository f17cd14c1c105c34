"""The ways of running one model that ``repro bench`` compares, and what they all start from."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from mrcnf import MRCNF, SolverOptions, dequantize
from repro.config import Experiment
from repro.datasets.registry import image_shape
from repro.models import build_model


@dataclass(frozen=True)
class Variant:
    """One way of running the same model.

    Attributes:
        adjoint: Backpropagate with the adjoint method instead of through the solver.
        autograd_vjp: Take Hutchinson's vector-Jacobian product from ``torch.autograd.grad``
            (FFJORD's and the authors' formulation) instead of the network's explicit backward
            pass (:meth:`mrcnf.velocity.VelocityField.forward_with_vjp`).
        compiled: Compile every velocity network (its velocity, and its velocity with the
            explicit vector-Jacobian product) with ``torch.compile``, for training, evaluation
            and sampling. Needs the explicit product: training differentiates autograd's product
            again, a double backward that compiled graphs do not support.
        tf32: Allow TF32 matrix arithmetic (CUDA only).
        autotune: Let cuDNN pick the fastest convolution algorithm for each shape by timing.
    """

    adjoint: bool
    autograd_vjp: bool
    compiled: bool = False
    tf32: bool = False
    autotune: bool = True

    def __post_init__(self) -> None:
        if self.compiled and self.autograd_vjp:
            raise ValueError("a compiled variant needs the explicit vector-Jacobian product")

    def train_solver(self, experiment: Experiment) -> SolverOptions:
        """The experiment's training solver, backpropagating as this variant does."""
        return dataclasses.replace(experiment.solver.train, adjoint=self.adjoint)


REFERENCE = "authors"
VARIANTS: dict[str, Variant] = {
    REFERENCE: Variant(adjoint=True, autograd_vjp=True, autotune=False),
    "authors+autotune": Variant(adjoint=True, autograd_vjp=True),
    "direct": Variant(adjoint=False, autograd_vjp=True),
    "direct+vjp": Variant(adjoint=False, autograd_vjp=False),
    "direct+vjp+tf32": Variant(adjoint=False, autograd_vjp=False, tf32=True),
    "direct+vjp+compile": Variant(adjoint=False, autograd_vjp=False, compiled=True),
}


def default_variant(experiment: Experiment) -> Variant:
    """What ``repro train`` runs for the experiment when no option says otherwise."""
    return Variant(adjoint=experiment.solver.train.adjoint, autograd_vjp=False)


def bench_model(experiment: Experiment, variant: Variant, *, seed: int = 0) -> MRCNF:
    """The experiment's model, run as ``variant``, with every layer at PyTorch's initialisation.

    Training zeroes the last layer of every velocity network, which makes a fresh model's
    divergence exactly zero; here it keeps PyTorch's default initialisation, so the dynamics are
    not trivial and comparing the variants' log-likelihoods means something.
    """
    solver = dataclasses.replace(experiment.solver, train=variant.train_solver(experiment))
    model_settings = experiment.model
    if variant.autograd_vjp and model_settings.divergence == "hutchinson":
        model_settings = dataclasses.replace(model_settings, divergence="hutchinson_autograd")
    variant_experiment = dataclasses.replace(experiment, model=model_settings, solver=solver)
    torch.manual_seed(seed)
    model = build_model(variant_experiment, channels=image_shape(experiment.data)[0])
    for block in model.blocks:
        block.field.layers[-1].conv.reset_parameters()
    return model


def bench_images(experiment: Experiment, *, batch_size: int, seed: int = 0) -> torch.Tensor:
    """Dequantised uniform random images of the experiment's shape (on the CPU)."""
    generator = torch.Generator().manual_seed(seed)
    pixels = torch.randint(0, 256, (batch_size, *image_shape(experiment.data)), generator=generator)
    return dequantize(pixels.to(torch.uint8))
