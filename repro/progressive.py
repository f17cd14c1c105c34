"""Progressive training: levels started from another experiment's trained model, levels frozen.

The paper trained ImageNet128 this way: only the finest level (128×128, conditioned on
ground-truth 64×64 images) was trained, attached to the trained 3-resolution ImageNet64 model.
``training.init_from`` names the experiment whose levels start this one's (matched by resolution,
:mod:`repro.levels`), ``training.train_levels`` the levels that training updates.
"""

from __future__ import annotations

from pathlib import Path

import torch

from mrcnf import MRCNF
from repro.checkpoint import (
    CheckpointError,
    entries,
    load_checkpoint,
    load_weights,
    stored_experiment,
)
from repro.experiment import Experiment
from repro.layout import ProfileLayout
from repro.levels import LevelError, check_progressive, matched_levels, trained_levels


def parent_checkpoint(experiment: Experiment) -> Path:
    """The checkpoint of ``init_from`` that this experiment starts from.

    It is the parent's checkpoint that its own numbers are scored from (``evaluation.checkpoint``),
    in the same profile's runs.
    """
    parent = ProfileLayout(experiment.profile).run(experiment.training.init_from)
    return parent.checkpoint(experiment.evaluation.checkpoint)


def initialise_from_parent(model: MRCNF, experiment: Experiment, *, device: torch.device) -> None:
    """Copy the trained levels of ``experiment.training.init_from`` into ``model``.

    A use of another experiment's checkpoint: the parent is the experiment as it was trained
    (the configuration stored in its checkpoint, which must name ``init_from`` under this
    profile), checked against the child as at load time; its weights must fit that
    configuration.

    Raises:
        CheckpointError: The parent's checkpoint is missing, unreadable, inconsistent, or its
            levels do not match this experiment's.
    """
    path = parent_checkpoint(experiment)
    payload = load_checkpoint(path, map_location=device)
    parent, (parent_weights,) = stored_experiment(payload, path), entries(payload, path, "model")
    origin = (parent.id, parent.profile)
    if origin != (experiment.training.init_from, experiment.profile):
        raise CheckpointError(
            f"{path} holds {parent.id} of profile {parent.profile}, not "
            f"{experiment.training.init_from} of {experiment.profile}: move it away and train "
            f"{experiment.training.init_from}"
        )
    try:
        check_progressive(experiment, parent)
    except LevelError as error:
        raise CheckpointError(f"{path}: cannot start {experiment.id} from it ({error})") from None
    prefix = "flows."
    for level, parent_level in matched_levels(experiment, parent).items():
        weights = {
            key.removeprefix(f"{prefix}{parent_level}."): value
            for key, value in parent_weights.items()
            if key.startswith(f"{prefix}{parent_level}.")
        }
        load_weights(model.flows[level], weights, path)


def freeze_untrained_levels(model: MRCNF, experiment: Experiment) -> None:
    """Stop gradients to the levels that ``training.train_levels`` does not name."""
    trained = trained_levels(experiment)
    for level, flow in enumerate(model.flows):
        flow.requires_grad_(level in trained)


def levels_to_integrate(experiment: Experiment) -> tuple[int, ...] | None:
    """The levels a training step integrates: the trained ones (``None``: every level)."""
    if experiment.training.train_levels == "all":
        return None
    return trained_levels(experiment)
