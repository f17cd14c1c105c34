"""Checkpoints: atomic saves, safe loads, and whether a checkpoint fits the current settings.

The configuration stored in a checkpoint is read through the same dataclasses as params.yaml, so
a setting added after the checkpoint was written takes its default, and only settings that change
the trained model can make a checkpoint incompatible.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from repro.config import Experiment
from repro.errors import ReproError
from repro.files import atomic_destination
from repro.results import Numerics, NumericsSpan
from repro.schema import SchemaError, from_mapping, to_plain

FORMAT_VERSION = 1
# Version of the stored configuration's layout; 1 (or absent): before settings had defaults.
CONFIG_VERSION = 2
# Sections whose settings determine the trained model, and settings of theirs that do not.
TRAINED_MODEL_SECTIONS = ("data", "model", "loss", "optimizer")
_NOT_TRAINED_MODEL = {"data": ("limit_test",)}


class CheckpointError(ReproError):
    """A checkpoint that cannot be used; the file itself is never touched."""


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write a checkpoint atomically: a crash leaves the previous file intact.

    Raises:
        OSError: The file cannot be written (``path`` keeps its previous contents).
    """
    # Saved through a stream: given a path, torch.save names the archive after the file, so the
    # temporary file's random name would make identical checkpoints differ byte for byte.
    with atomic_destination(path) as temporary, temporary.open("wb") as stream:
        payload = {"format": FORMAT_VERSION, "config_version": CONFIG_VERSION, **payload}
        torch.save(payload, stream)


def load_checkpoint(path: Path, *, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True`` (no pickled code runs).

    Raises:
        CheckpointError: One line naming the file and the fix, when it is missing, unreadable,
            or written by a newer version of the suite.
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
    if payload.get("config_version", 1) > CONFIG_VERSION:
        raise CheckpointError(
            f"{path} was written by a newer mrcnf-repro (configuration version "
            f"{payload['config_version']}): update this checkout to use it"
        )
    return payload


def check_compatible(
    payload: dict[str, Any],
    experiment: Experiment,
    path: Path,
    *,
    sections: tuple[str, ...] = TRAINED_MODEL_SECTIONS,
) -> None:
    """Refuse a checkpoint whose trained model differs from what ``experiment`` describes.

    Raises:
        CheckpointError: Naming the first setting that differs.
    """
    stored = payload.get("config", {})
    for section in sections:
        current = getattr(experiment, section)
        known = {f: v for f, v in stored.get(section, {}).items() if hasattr(current, f)}
        try:
            # Absent settings take their defaults; settings since removed cannot matter.
            old = from_mapping(type(current), known, where=section)
        except SchemaError as error:
            raise CheckpointError(
                f"{path}: its stored configuration is unusable ({error})"
            ) from None
        for key, value in vars(current).items():
            if key in _NOT_TRAINED_MODEL.get(section, ()) or getattr(old, key) == value:
                continue
            raise CheckpointError(
                f"{path} was written for {section}.{key}={getattr(old, key)!r}, params.yaml now "
                f"says {value!r}: restore the setting, or move the checkpoint away to start afresh"
            )


def stored_experiment(payload: dict[str, Any], path: Path) -> Experiment:
    """The experiment a checkpoint was trained as (its stored configuration, read with today's
    defaults for settings added since).

    Raises:
        CheckpointError: The stored configuration cannot be read.
    """
    try:
        return from_mapping(Experiment, payload.get("config", {}))
    except SchemaError as error:
        raise CheckpointError(f"{path}: its stored configuration is unusable ({error})") from None


def numerics_history(
    payload: dict[str, Any] | None,
    current: Numerics,
    path: Path,
    *,
    iteration: int,
    allow_change: bool,
) -> list[NumericsSpan]:
    """The numerics a run has used, continued under ``current`` numerics.

    A checkpoint written before numerics were recorded continues from the resumed iteration.

    Raises:
        CheckpointError: The run was trained under other numerics and ``allow_change`` is off.
    """
    stored = [] if payload is None else payload.get("numerics_history", [])
    history = [from_mapping(NumericsSpan, span) for span in stored]
    if history and history[-1].numerics == current:
        return history
    if history and not allow_change:
        before, now = to_plain(history[-1].numerics), to_plain(current)
        changed = ", ".join(f"{k}={before[k]} (now {now[k]})" for k in now if before[k] != now[k])
        raise CheckpointError(
            f"{path} was trained with {changed}: resume with the same numerics (--tf32 as "
            "before), or pass --allow-numerics-change to continue and record the change"
        )
    return [*history, NumericsSpan(from_iteration=iteration, numerics=current)]
