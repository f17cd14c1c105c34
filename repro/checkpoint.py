"""Checkpoints: atomic saves, safe loads, and the model a run produced."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from mrcnf import MRCNF, MRCNFConfig, SolverOptions
from repro.config import Experiment
from repro.files import atomic_destination

FORMAT_VERSION = 1
CHECKPOINT_NAMES = ("last", "best")


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used; the file itself is never touched."""


def model_config(experiment: Experiment, *, channels: int) -> MRCNFConfig:
    """The library configuration of an experiment's model."""
    model, solver = experiment.model, experiment.solver
    return MRCNFConfig(
        channels=channels,
        resolutions=model.resolutions,
        blocks=model.blocks,
        width=model.width,
        transform=model.transform,
        logit_alpha=model.logit_alpha,
        divergence=model.divergence,
        train_solver=SolverOptions(**dataclasses.asdict(solver.train)),
        eval_solver=SolverOptions(**dataclasses.asdict(solver.eval)),
    )


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write a checkpoint atomically: a crash leaves the previous file intact.

    Args:
        path: The checkpoint file; its folder is created if missing.
        payload: What to store; the ``format`` key is added.

    Raises:
        OSError: The file cannot be written (``path`` keeps its previous contents).
    """
    # Saved through a stream: given a path, torch.save names the archive after the file, so the
    # temporary file's random name would make identical checkpoints differ byte for byte.
    with atomic_destination(path) as temporary, temporary.open("wb") as stream:
        torch.save({"format": FORMAT_VERSION, **payload}, stream)


def load_checkpoint(path: Path, *, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``.

    Raises:
        CheckpointError: One line naming the file and the fix, when it is unreadable.
    """
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"no checkpoint at {path}: run 'repro train' first") from None
    except Exception as error:
        reason = str(error).splitlines()[0][:120] if str(error) else type(error).__name__
        raise CheckpointError(
            f"{path} is corrupt or unreadable ({reason}); it was left untouched: "
            "move it away to start the run afresh"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} is not a mrcnf-repro checkpoint of format {FORMAT_VERSION}; "
            "it was left untouched: move it away to start the run afresh"
        )
    return payload


def check_compatible(
    payload: dict[str, Any],
    experiment: Experiment,
    path: Path,
    *,
    sections: tuple[str, ...] = ("data", "model", "loss", "optimizer"),
) -> None:
    """Refuse to use a checkpoint written for another model, data or optimiser.

    Raises:
        CheckpointError: Naming the first setting that differs.
    """
    current, stored = experiment.to_dict(), payload.get("config", {})
    for section in sections:
        for key, value in current[section].items():
            old = stored.get(section, {}).get(key)
            if old != value:
                raise CheckpointError(
                    f"{path} was written for {section}.{key}={old!r}, params.yaml now says "
                    f"{value!r}: restore the setting, or move the checkpoint away to start afresh"
                )


def checkpoint_path(run_dir: Path, which: str = "last") -> Path:
    """Where a run keeps its ``last`` or ``best`` checkpoint."""
    return run_dir / "checkpoints" / f"{which}.pt"


def load_model(
    run_dir: Path, experiment: Experiment, *, which: str = "last", device: torch.device
) -> tuple[MRCNF, tuple[int, int, int]]:
    """The model a run trained, in evaluation mode, with the experiment's current solvers.

    Returns:
        The model and the C×H×W shape of the images it was trained on.

    Raises:
        CheckpointError: If the checkpoint is missing, unreadable or of another architecture.
    """
    path = checkpoint_path(run_dir, which)
    payload = load_checkpoint(path, map_location=device)
    check_compatible(payload, experiment, path, sections=("model",))
    model = MRCNF(model_config(experiment, channels=payload["image_shape"][0]))
    model.load_state_dict(payload["model"])
    channels, height, width = payload["image_shape"]
    return model.to(device).eval(), (channels, height, width)
