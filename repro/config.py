"""Experiments pinned in ``params.yaml``: loading, profile resolution and validation.

An experiment's configuration is ``defaults`` deep-merged with ``experiments.<id>`` (or
``progressive_experiments.<id>``), then with the profile's ``all`` and ``experiments.<id>``
sections. The result is checked field by field against the dataclasses of
:mod:`repro.experiment` (re-exported here); any problem is one :class:`ConfigError` line naming
the key.

Nothing here imports torch: tables and listings read the configuration without it.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from repro.datasets.errors import UnknownDatasetError
from repro.datasets.registry import dataset_spec
from repro.errors import ReproError
from repro.experiment import (
    CalibrationConfig,
    DataConfig,
    EvaluationConfig,
    Experiment,
    FidConfig,
    LossConfig,
    ModelConfig,
    OptimizerConfig,
    PaperCells,
    SolversConfig,
    Table5Cell,
    TrainingConfig,
    ValidationConfig,
)
from repro.levels import LevelError, check_progressive, trained_levels
from repro.ood.config import OodConfig
from repro.published import Published, load_published, printed_hours
from repro.schema import SchemaError, from_mapping

PUBLISHED = "published"
# A progressive experiment's budget: its cell's published hours less its parent's (the paper's
# hours are the whole model's).
PUBLISHED_BEYOND_PARENT = "published_beyond_parent"
# The profile that runs the paper's own settings (sizes and hours of the paper's models).
PAPER_PROFILE = "paper"
# A profile overrides the experiments' sections (all, experiments), the calibration section and
# the out-of-distribution detection's (ood).
CALIBRATION = "calibration"
OOD = "ood"
PROFILE_KEYS = ("comparable", "all", "experiments", CALIBRATION, OOD)
# Experiments that start from another's trained levels: DVC needs their parent's checkpoint as a
# dependency of their stages, so they have their own section (and stages in dvc.yaml).
PROGRESSIVE = "progressive_experiments"

__all__ = [
    "PAPER_PROFILE",
    "CalibrationConfig",
    "ConfigError",
    "DataConfig",
    "EvaluationConfig",
    "Experiment",
    "FidConfig",
    "LossConfig",
    "ModelConfig",
    "OptimizerConfig",
    "PaperCells",
    "Params",
    "SolversConfig",
    "Table5Cell",
    "TrainingConfig",
    "ValidationConfig",
    "load_params",
]


class ConfigError(ReproError):
    """A missing, unknown or malformed setting in params.yaml (one line, naming the key)."""


@dataclass(frozen=True)
class Params:
    """The whole of params.yaml, as loaded."""

    path: Path
    raw: dict[str, Any]

    @property
    def profile(self) -> str:
        """The profile selected in the file."""
        return _require(self.raw, "profile", str)

    @property
    def profiles(self) -> list[str]:
        return sorted(_require(self.raw, "profiles", dict))

    @property
    def experiment_ids(self) -> list[str]:
        """Every experiment: those trained from scratch, then the progressive ones."""
        return list(self._definitions())

    def _definitions(self) -> dict[str, Any]:
        """Experiment id -> its entry, from ``experiments`` and ``progressive_experiments``.

        Raises:
            ConfigError: An id defined in both.
        """
        scratch = _require(self.raw, "experiments", dict)
        progressive = self.raw.get(PROGRESSIVE) or {}
        if not isinstance(progressive, dict):
            raise ConfigError(f"{self.path}: '{PROGRESSIVE}' must be a mapping")
        for experiment_id in progressive:
            if experiment_id in scratch:
                raise ConfigError(
                    f"{self.path}: {experiment_id!r} is defined in both experiments and "
                    f"{PROGRESSIVE}: keep one"
                )
        return {**scratch, **progressive}

    @property
    def tolerances(self) -> dict[str, float]:
        return _require(self.raw, "tolerances", dict)

    @property
    def table7(self) -> dict[str, str]:
        """Experiment id -> the Table 7 model it stands for.

        Raises:
            ConfigError: If an entry names an unknown experiment.
        """
        models = _require(self.raw, "table7", dict)
        for experiment_id in models:
            if experiment_id not in self.experiment_ids:
                raise ConfigError(f"{self.path}: table7 names unknown experiment {experiment_id!r}")
        return models

    def _profile(self, name: str) -> dict[str, Any]:
        profiles = _require(self.raw, "profiles", dict)
        if name not in profiles:
            raise ConfigError(
                f"{self.path}: unknown profile {name!r} (key 'profile' or --profile); "
                f"known: {', '.join(profiles)}"
            )
        overrides = profiles[name] or {}
        if not isinstance(overrides, dict):
            raise ConfigError(f"{self.path}: profiles.{name} must be a mapping")
        unknown = sorted(set(overrides) - set(PROFILE_KEYS))
        if unknown:
            raise ConfigError(
                f"{self.path}: profiles.{name}.{unknown[0]} is not a profile key; "
                f"use {', '.join(PROFILE_KEYS)}"
            )
        if not isinstance(overrides.get("comparable", True), bool):
            raise ConfigError(f"{self.path}: profiles.{name}.comparable must be true or false")
        return overrides

    def checked_profile(self, profile: str | None = None) -> str:
        """The profile named (default: the file's ``profile`` key), once it is known to exist:
        a command that writes under ``runs/<profile>/`` calls this before writing anything.

        Raises:
            ConfigError: Unknown profile, or a malformed profile section.
        """
        name = profile or self.profile
        self._profile(name)
        return name

    def comparable(self, profile: str | None = None) -> bool:
        """Whether a profile's numbers may be compared with the paper's (its ``comparable`` key).

        Raises:
            ConfigError: Unknown profile, or ``comparable`` not a boolean.
        """
        return self._profile(profile or self.profile).get("comparable", True)

    def paper_experiments(self) -> dict[str, Experiment]:
        """Every experiment at the ``paper`` profile: the paper's own architectures and hours,
        whatever model another profile (such as ``smoke``) shrinks them to for training.

        Raises:
            ConfigError: An experiment is malformed, or there is no ``paper`` profile.
        """
        return {i: self.experiment(i, profile=PAPER_PROFILE) for i in self.experiment_ids}

    def calibration(self, profile: str | None = None) -> CalibrationConfig:
        """The FID calibration's settings under a profile: the ``calibration`` section
        deep-merged with the profile's own ``calibration`` key.

        Raises:
            ConfigError: Unknown profile, a missing, unknown or malformed value, or a patch size
                that does not divide the images' side.
        """
        name = profile or self.profile
        overrides = self._profile(name).get(CALIBRATION) or {}
        if not isinstance(overrides, dict):
            raise ConfigError(f"{self.path}: profiles.{name}.{CALIBRATION} must be a mapping")
        merged = _deep_merge(_require(self.raw, CALIBRATION, dict), overrides)
        try:
            settings = from_mapping(CalibrationConfig, merged, where=CALIBRATION)
        except SchemaError as error:
            raise ConfigError(f"{self.path}: {error}") from None
        try:
            side = settings.image_size or dataset_spec(settings.dataset).shape[-1]
        except UnknownDatasetError as error:
            raise ConfigError(f"{self.path}: '{CALIBRATION}.dataset': {error}") from None
        for index, patch in enumerate(settings.patches):
            if side % patch:
                divisors = [k for k in range(1, side + 1) if side % k == 0]
                raise ConfigError(
                    f"{self.path}: '{CALIBRATION}.patches[{index}]' is {patch}, which does not "
                    f"divide the {side}×{side} images: use {', '.join(map(str, divisors))}"
                )
        return settings

    def ood(self, profile: str | None = None) -> OodConfig:
        """The out-of-distribution detection's settings under a profile: the ``ood`` section
        deep-merged with the profile's own ``ood`` key.

        Raises:
            ConfigError: Unknown profile, or a missing, unknown or malformed value.
        """
        name = profile or self.profile
        overrides = self._profile(name).get(OOD) or {}
        if not isinstance(overrides, dict):
            raise ConfigError(f"{self.path}: profiles.{name}.{OOD} must be a mapping")
        merged = _deep_merge(_require(self.raw, OOD, dict), overrides)
        try:
            return from_mapping(OodConfig, merged, where=OOD)
        except SchemaError as error:
            raise ConfigError(f"{self.path}: {error}") from None

    def experiment(self, experiment_id: str, *, profile: str | None = None) -> Experiment:
        """Resolve and validate one experiment, its time budget in hours.

        An experiment with ``training.init_from`` is checked against that experiment (resolved
        under the same profile): its untrained levels must match the parent's by resolution.

        Args:
            experiment_id: A key of ``experiments``.
            profile: A key of ``profiles`` (default: the file's ``profile``).

        Raises:
            ConfigError: Unknown id or profile, a missing, unknown or malformed value, a
                ``published`` time budget for a cell that prints no hours, or an ``init_from``
                that is unknown, circular or whose levels do not match.
        """
        return self._resolve(experiment_id, profile=profile or self.profile, children=())

    def _resolve(
        self, experiment_id: str, *, profile: str, children: tuple[str, ...]
    ) -> Experiment:
        experiments = self._definitions()
        if experiment_id not in experiments:
            where = f"experiments.{children[-1]}.training.init_from: " if children else ""
            raise ConfigError(
                f"{self.path}: {where}unknown experiment {experiment_id!r}; "
                f"known: {', '.join(experiments)}"
            )
        if experiment_id in children:
            chain = " -> ".join([*children, experiment_id])
            raise ConfigError(f"{self.path}: training.init_from goes round in a circle: {chain}")
        overrides = self._profile(profile)
        merged = _deep_merge(
            _require(self.raw, "defaults", dict),
            experiments[experiment_id] or {},
            overrides.get("all") or {},
            (overrides.get("experiments") or {}).get(experiment_id) or {},
        )
        try:
            experiment = from_mapping(
                Experiment, {**merged, "id": experiment_id, "profile": profile}
            )
            _check_section(experiment, progressive=experiment_id in self.raw.get(PROGRESSIVE, {}))
            parent = None
            if experiment.training.init_from is not None:
                parent = self._resolve(
                    experiment.training.init_from,
                    profile=profile,
                    children=(*children, experiment_id),
                )
                check_progressive(experiment, parent)
            trained_levels(experiment)
            return _with_resolved_budget(experiment, parent)
        except (SchemaError, LevelError) as error:
            raise ConfigError(f"{self.path}: {error}") from None


def load_params(path: Path | str = "params.yaml") -> Params:
    """Read params.yaml.

    Raises:
        ConfigError: If the file is missing or is not a YAML mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path} not found: run from the project root or pass --params")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path} is not valid YAML{where}: fix the syntax") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must be a YAML mapping of settings")
    return Params(path=path, raw=raw)


def _with_resolved_budget(experiment: Experiment, parent: Experiment | None) -> Experiment:
    """The experiment with a ``published`` time budget replaced by its Table 5 cell's hours
    (less the parent's hours, for ``published_beyond_parent``)."""
    budget = experiment.training.time_budget_hours
    if budget not in (PUBLISHED, PUBLISHED_BEYOND_PARENT):
        return experiment
    hours = _published_hours(experiment)
    if budget == PUBLISHED_BEYOND_PARENT:
        if parent is None:
            raise SchemaError(
                f"experiments.{experiment.id}: training.time_budget_hours is "
                f"'{PUBLISHED_BEYOND_PARENT}', but it has no training.init_from"
            )
        # Rounded to the printed precision, so the budget carries no binary remainder.
        hours = round(hours - _published_hours(parent), 2)
        if not hours > 0:
            raise SchemaError(
                f"experiments.{experiment.id}: training.time_budget_hours "
                f"'{PUBLISHED_BEYOND_PARENT}' leaves {hours} hours beyond {parent.id}'s: set a "
                "number of hours"
            )
    training = dataclasses.replace(experiment.training, time_budget_hours=hours)
    return dataclasses.replace(experiment, training=training)


def _check_section(experiment: Experiment, *, progressive: bool) -> None:
    """An experiment with ``init_from`` belongs to the progressive section, and only those do."""
    if progressive and experiment.training.init_from is None:
        raise SchemaError(
            f"{PROGRESSIVE}.{experiment.id} has no training.init_from: set it, or move the "
            "experiment to experiments"
        )
    if not progressive and experiment.training.init_from is not None:
        raise SchemaError(
            f"experiments.{experiment.id}: training.init_from is set: move the experiment to "
            f"{PROGRESSIVE}, whose DVC stages depend on the checkpoint it starts from"
        )


def _published_hours(experiment: Experiment) -> float:
    """The GPU hours the paper prints for the experiment's cell: its Table 5 cell's, else its
    transform-ablation cell's (the ablation has Table 5's layout)."""
    published, paper = _published(), experiment.paper
    cell, hours = None, None
    if paper.table5 is not None:
        cell = paper.table5
        hours = published.table5.hours(cell.model, cell.dataset)
    elif paper.ablation is not None:
        cell = paper.ablation
        hours = printed_hours(published.extras.ablation_transform, cell.model, cell.dataset)
    if hours is None:
        where = "no paper cell" if cell is None else f"{cell.model} on {cell.dataset}"
        raise SchemaError(
            f"experiments.{experiment.id}: training.time_budget_hours is 'published', but the "
            f"paper prints no hours for it ({where}): set a number or null"
        )
    return hours


@functools.cache
def _published() -> Published:
    """The published numbers, read once however many experiments resolve their budget."""
    return load_published()


def _require(mapping: Mapping[str, Any], key: str, kind: type) -> Any:
    if key not in mapping:
        raise ConfigError(f"missing key '{key}'")
    value = mapping[key]
    if not isinstance(value, kind):
        raise ConfigError(f"'{key}' must be a {kind.__name__}, got {value!r}")
    return value


def _deep_merge(*layers: Mapping[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
                merged[key] = _deep_merge(merged[key], value)
            else:
                merged[key] = value
    return merged
