"""An experiment's model: built afresh for training, or loaded from a run's checkpoint."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from mrcnf import MRCNF
from repro.checkpoint import (
    CheckpointError,
    check_model_identity,
    entries,
    load_checkpoint,
    load_weights,
    stored_experiment,
)
from repro.config import Experiment
from repro.layout import RunLayout
from repro.results import Judgement
from repro.runtime import compiling


@dataclass(frozen=True)
class TrainedModel:
    """A run's model, as one of its checkpoints holds it.

    Attributes:
        model: The model, in evaluation mode, with the experiment's current solvers.
        image_shape: C×H×W of the images it was trained on.
        checkpoint: Which checkpoint it comes from (``best`` or ``last``).
        iteration: The training iteration the checkpoint was saved at.
        judged_by: How a ``best`` checkpoint was chosen, as the run was trained; None for
            ``last``.
    """

    model: MRCNF
    image_shape: tuple[int, int, int]
    checkpoint: str
    iteration: int
    judged_by: Judgement | None


def build_model(experiment: Experiment, *, channels: int) -> MRCNF:
    """The experiment's model for images of ``channels``, at its initialisation; its velocity
    networks compiled when :func:`repro.runtime.configure_numerics` asked for it."""
    model = MRCNF(experiment.model_config(channels=channels))
    if compiling():
        model.compile_velocity_fields()
    return model


def load_model(layout: RunLayout, experiment: Experiment, *, device: torch.device) -> TrainedModel:
    """The model of the checkpoint that ``evaluation.checkpoint`` names, for bpd and samples.

    Args:
        layout: The run's files.
        experiment: The resolved configuration (its model and solvers, and the checkpoint).
        device: Where to put the model.

    Returns:
        The model with its image shape, checkpoint and training iteration.

    Raises:
        CheckpointError: If the checkpoint is missing, unreadable, of another experiment, data
            or model, or ``best`` was not chosen by validation (a run trained before it
            existed).
    """
    which = experiment.evaluation.checkpoint
    path = layout.checkpoint(which)
    if which == "best" and not path.exists() and layout.checkpoint("last").exists():
        raise _unjudged(path, experiment, "does not exist")
    payload = load_checkpoint(path, map_location=device)
    check_model_identity(payload, experiment, path)
    weights, state, (channels, height, width) = entries(
        payload, path, "model", "state", "image_shape"
    )
    if which == "best" and state.get("best_iteration") is None:
        raise _unjudged(path, experiment, "was chosen by the training loss, not by validation")
    model = build_model(experiment, channels=channels)
    load_weights(model, weights, path)
    return TrainedModel(
        model=model.to(device).eval(),
        image_shape=(channels, height, width),
        checkpoint=which,
        iteration=state["iteration"],
        judged_by=_judgement(stored_experiment(payload, path)) if which == "best" else None,
    )


def _judgement(config: Experiment) -> Judgement:
    """How the run was validated, which a later params.yaml may no longer say."""
    validation = config.training.validation
    return Judgement(
        images=validation.images,
        every_epochs=validation.every_epochs,
        dequantization=validation.dequantization,
        held_out_images=config.data.held_out_images,
    )


def _unjudged(path: Path, experiment: Experiment, reason: str) -> CheckpointError:
    """The error for a ``best`` checkpoint that no validation chose."""
    return CheckpointError(
        f"{path} {reason}: run 'repro train {experiment.id}' again (it resumes and validates the "
        "run), or set evaluation.checkpoint: last"
    )
