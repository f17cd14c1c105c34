"""Checkpoints: atomic saves, safe loads, and whether a checkpoint belongs to the run using it.

A checkpoint stores its experiment's resolved configuration, read back through the same
dataclasses as params.yaml (a setting added since takes its default). Each use checks what it
needs: resuming, every setting of the trajectory (:func:`check_resumable`); evaluation and
sampling, the experiment, data and model (:func:`check_model_identity`). A use for another
purpose (starting levels from another experiment) reads :func:`stored_experiment` and says so.
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any

import torch

from repro.config import Experiment
from repro.errors import ReproError
from repro.files import atomic_destination
from repro.provenance import Numerics, NumericsSpan
from repro.schema import SchemaError, from_mapping, to_plain

FORMAT_VERSION = 1
# Version of the stored configuration's layout; 1 (or absent): before settings had defaults.
CONFIG_VERSION = 2
# Settings (dotted prefixes) a resumed run may change: when to save, and what is computed after
# training; and the limits, which may grow (a run past a lowered limit could not honour it).
RESUME_FREE = (
    "training.checkpoint_every_iterations",
    "training.checkpoint_every_minutes",
    "evaluation.checkpoint",
    "fid.",
    "paper.",
)
MAY_GROW = ("training.epochs", "training.max_iterations", "training.time_budget_hours")
# What identifies the model a checkpoint holds, for evaluation and sampling.
MODEL_IDENTITY = ("id", "profile", "data.", "model.")
NOT_MODEL_IDENTITY = ("data.limit_test",)


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


def check_resumable(payload: dict[str, Any], experiment: Experiment, path: Path) -> None:
    """Refuse to resume a run from a checkpoint of other settings.

    Every setting that determines the trajectory or the choice of the ``best`` checkpoint must
    be as the checkpoint stored it (the experiment and profile, data, model, solvers, loss,
    optimiser, training, validation); the iteration limits and the time budget may grow.

    Raises:
        CheckpointError: Naming every setting that differs, or an unreadable configuration.
    """
    stored = _flatten(to_plain(stored_experiment(payload, path)))
    current = _flatten(to_plain(experiment))
    differing = [
        key
        for key, value in current.items()
        if not key.startswith(RESUME_FREE)
        and stored.get(key) != value
        and not (key in MAY_GROW and _grows(stored.get(key), value))
    ]
    _refuse_differences(path, differing, stored, current, use="resume")


def check_model_identity(payload: dict[str, Any], experiment: Experiment, path: Path) -> None:
    """Refuse to evaluate or sample a checkpoint that holds another experiment's model.

    The experiment, profile, data and model must be as the checkpoint stored them; the number of
    test images and everything after training (solvers, batch sizes, seeds) may differ.

    Raises:
        CheckpointError: Naming every setting that differs, or an unreadable configuration.
    """
    stored = _flatten(to_plain(stored_experiment(payload, path)))
    current = _flatten(to_plain(experiment))
    differing = [
        key
        for key, value in current.items()
        if key.startswith(MODEL_IDENTITY)
        and key not in NOT_MODEL_IDENTITY
        and stored.get(key) != value
    ]
    _refuse_differences(path, differing, stored, current, use="evaluate")


def check_architecture(payload: dict[str, Any], experiment: Experiment, path: Path) -> None:
    """Refuse a checkpoint whose model settings are not the experiment's; its data and run may
    differ (what ``repro bench --checkpoint`` times: a model trained on any images).

    Raises:
        CheckpointError: Naming every model setting that differs, or an unreadable configuration.
    """
    stored = _flatten({"model": to_plain(stored_experiment(payload, path).model)})
    current = _flatten({"model": to_plain(experiment.model)})
    differing = [key for key, value in current.items() if stored.get(key) != value]
    _refuse_differences(path, differing, stored, current, use="time")


def stored_experiment(payload: dict[str, Any], path: Path) -> Experiment:
    """The experiment a checkpoint was trained as (its stored configuration, read with today's
    defaults for settings added since; settings since removed are ignored).

    Raises:
        CheckpointError: The checkpoint holds no readable configuration.
    """
    config = payload.get("config")
    if not isinstance(config, dict):
        raise CheckpointError(f"{path} holds no configuration: move it away to start afresh")
    try:
        return from_mapping(Experiment, known_settings(Experiment, config))
    except SchemaError as error:
        raise CheckpointError(f"{path}: its stored configuration is unusable ({error})") from None


def load_weights(module: torch.nn.Module, weights: Any, path: Path) -> None:
    """``module.load_state_dict(weights)``, a missing or misshapen tensor being one line.

    Raises:
        CheckpointError: Keys missing or unexpected, or a tensor of the wrong shape.
    """
    try:
        module.load_state_dict(weights)
    except (RuntimeError, TypeError, ValueError, KeyError, AttributeError) as error:
        reason = " ".join(str(error).split())[:200]
        raise CheckpointError(
            f"{path} does not fit the model its configuration describes ({reason}); it was left "
            "untouched: move it away to start afresh"
        ) from None


def entries(payload: dict[str, Any], path: Path, *names: str) -> list[Any]:
    """The payload's entries ``names``, a missing one being one line.

    Raises:
        CheckpointError: An entry is missing.
    """
    missing = [name for name in names if name not in payload]
    if missing:
        raise CheckpointError(
            f"{path} lacks {', '.join(missing)}: it is incomplete; move it away to start afresh"
        )
    return [payload[name] for name in names]


def known_settings(cls: type, values: Any) -> Any:
    """``values`` without the keys that dataclass ``cls`` (and its nested dataclasses) no
    longer declares: settings since removed cannot matter to a stored configuration."""
    if not isinstance(values, dict) or not dataclasses.is_dataclass(cls):
        return values
    hints = typing.get_type_hints(cls)
    kept = {}
    for declared in dataclasses.fields(cls):
        if declared.name in values:
            kept[declared.name] = known_settings(
                _dataclass_in(hints[declared.name]), values[declared.name]
            )
    return kept


def _dataclass_in(hint: Any) -> Any:
    """The dataclass a type hint holds (directly or in a union), else the hint itself."""
    for option in (hint, *typing.get_args(hint)):
        if dataclasses.is_dataclass(option):
            return option
    return hint


def _flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested settings as dotted keys: ``{"training": {"seed": 0}}`` -> ``{"training.seed": 0}``."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _grows(before: Any, now: Any) -> bool:
    """Whether a limit is raised or kept (None: no limit)."""
    if now is None:
        return True
    return before is not None and now >= before


def _refuse_differences(
    path: Path,
    differing: list[str],
    stored: dict[str, Any],
    current: dict[str, Any],
    *,
    use: str,
) -> None:
    if not differing:
        return
    changes = "; ".join(f"{key}={stored.get(key)!r} (now {current[key]!r})" for key in differing)
    advice = {
        "resume": "restore them in params.yaml, or move the checkpoint away to start afresh",
        "evaluate": "restore them in params.yaml, or train the experiment as it is now",
        "time": "give the experiment (and --profile) it was trained as",
    }[use]
    raise CheckpointError(f"{path} belongs to another run: {changes}; {advice}")


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
            f"{path} was trained with {changed}: resume with the same numerics (--tf32 and "
            "--compile as before), or pass --allow-numerics-change to continue and record the "
            "change"
        )
    return [*history, NumericsSpan(from_iteration=iteration, numerics=current)]
