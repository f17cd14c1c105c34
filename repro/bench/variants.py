"""The ways of running one model that ``repro bench`` compares, and what they all start from."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from mrcnf import MRCNF, SolverOptions
from repro.checkpoint import check_architecture, entries, load_checkpoint, load_weights
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


def bench_model(
    experiment: Experiment,
    variant: Variant,
    *,
    seed: int = 0,
    weights: Mapping[str, torch.Tensor] | None = None,
) -> MRCNF:
    """The experiment's model, run as ``variant``: a trained model's ``weights``, or every layer
    at PyTorch's initialisation.

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
    if weights is not None:
        model.load_state_dict(weights)
        return model
    for block in model.blocks:
        block.field.layers[-1].conv.reset_parameters()
    return model


def checkpoint_weights(path: Path, experiment: Experiment) -> dict[str, torch.Tensor]:
    """The weights of a checkpoint that holds ``experiment``'s model (any data, any run).

    Only the architecture must match: the benchmark times that model on its own images, so a
    model trained on other data (synthetic images of the experiment's shape) is fine. The
    weights are loaded once here, into a model of the experiment, so that a checkpoint that does
    not fit fails before minutes of timing.

    Raises:
        CheckpointError: Unreadable, incomplete, of other model settings, or weights that do not
            fit.
    """
    payload = load_checkpoint(path)
    check_architecture(payload, experiment, path)
    (weights,) = entries(payload, path, "model")
    load_weights(build_model(experiment, channels=image_shape(experiment.data)[0]), weights, path)
    return weights
