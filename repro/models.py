"""An experiment's model: built afresh for training, or loaded from a run's checkpoint."""

from __future__ import annotations

import torch

from mrcnf import MRCNF
from repro.checkpoint import check_compatible, load_checkpoint
from repro.config import Experiment
from repro.layout import RunLayout


def build_model(experiment: Experiment, *, channels: int) -> MRCNF:
    """The experiment's model for images of ``channels``, at its initialisation."""
    return MRCNF(experiment.model_config(channels=channels))


def load_model(
    layout: RunLayout, experiment: Experiment, *, which: str = "last", device: torch.device
) -> tuple[MRCNF, tuple[int, int, int]]:
    """The model a run trained, in evaluation mode, with the experiment's current solvers.

    Returns:
        The model and the C×H×W shape of the images it was trained on.

    Raises:
        CheckpointError: If the checkpoint is missing, unreadable or of another architecture.
    """
    path = layout.checkpoint(which)
    payload = load_checkpoint(path, map_location=device)
    check_compatible(payload, experiment, path, sections=("model",))
    channels, height, width = payload["image_shape"]
    model = build_model(experiment, channels=channels)
    model.load_state_dict(payload["model"])
    return model.to(device).eval(), (channels, height, width)
