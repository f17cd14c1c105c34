"""Experiments pinned in ``params.yaml``: loading, profile resolution and validation.

An experiment's configuration is ``defaults`` deep-merged with ``experiments.<id>``, then with the
profile's ``all`` and ``experiments.<id>`` sections. The result is checked field by field against
the dataclasses below (:mod:`repro.schema`); any problem is one :class:`ConfigError` line naming
the key. The model and solver sections are the library's own settings (:mod:`mrcnf.config`), so a
new model option is one field there plus its line in ``params.yaml``.

Nothing here imports torch: tables and listings read the configuration without it.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from mrcnf.config import MRCNFConfig, SolverOptions
from repro.errors import ReproError
from repro.levels import LevelError, check_progressive, trained_levels
from repro.published import Table5, load_published
from repro.schema import SchemaError, from_mapping

PUBLISHED = "published"
# A progressive experiment's budget: its cell's published hours less its parent's (the paper's
# hours are the whole model's).
PUBLISHED_BEYOND_PARENT = "published_beyond_parent"
# The profile that runs the paper's own settings (sizes and hours of the paper's models).
PAPER_PROFILE = "paper"
PROFILE_KEYS = ("comparable", "all", "experiments")
# Settings of MRCNFConfig that the model section does not hold: the channels come from the
# dataset, the solvers from the solver section.
_SUPPLIED_ELSEWHERE = ("channels", "train_solver", "eval_solver")


class ConfigError(ReproError):
    """A missing, unknown or malformed setting in params.yaml (one line, naming the key)."""


@dataclass(frozen=True)
class DataConfig:
    dataset: str
    image_size: int | None = None
    limit_train: int | None = None
    limit_test: int | None = None
    horizontal_flip: bool = False
    held_out_images: int = 0
    """Images removed from the end of the training split to judge the best checkpoint on
    (``training.validation.on: held_out``); an epoch is then shorter by as many images."""

    def __post_init__(self) -> None:
        if self.held_out_images < 0:
            raise ValueError(f"held_out_images must be ≥ 0, got {self.held_out_images}")


def _model_section() -> type:
    """``MRCNFConfig`` without the settings supplied elsewhere: the ``model`` section's schema."""
    hints = typing.get_type_hints(MRCNFConfig)
    fields = []
    for declared in dataclasses.fields(MRCNFConfig):
        if declared.name in _SUPPLIED_ELSEWHERE:
            continue
        default = {}
        if declared.default is not dataclasses.MISSING:
            default = {"default": declared.default}
        elif declared.default_factory is not dataclasses.MISSING:
            default = {"default_factory": declared.default_factory}
        fields.append((declared.name, hints[declared.name], dataclasses.field(**default)))

    def validate(section: Any) -> None:
        # The library's own checks, on a configuration completed with a valid channel count.
        MRCNFConfig(channels=1, **dataclasses.asdict(section))

    namespace = {"__post_init__": validate}
    return dataclasses.make_dataclass("ModelConfig", fields, frozen=True, namespace=namespace)


ModelConfig = _model_section()


@dataclass(frozen=True)
class SolversConfig:
    train: SolverOptions
    eval: SolverOptions


@dataclass(frozen=True)
class LossConfig:
    kinetic_energy: float
    jacobian_frobenius: float


@dataclass(frozen=True)
class OptimizerConfig:
    lr: float
    warmup_iterations: int
    grad_clip: float
    skip_grad_norm: float
    max_consecutive_skips: int


@dataclass(frozen=True)
class ValidationConfig:
    """How training judges the ``best`` checkpoint (its bpd under the evaluation solver)."""

    every_epochs: float = 2.0
    on: Literal["test", "held_out"] = "test"
    dequantization: Literal["bin_centre", "uniform"] = "bin_centre"

    def __post_init__(self) -> None:
        if not self.every_epochs > 0:
            raise ValueError(f"every_epochs must be positive, got {self.every_epochs}")


# A level named by its place: the finest (level 0) or the coarsest; integers count from the finest.
LevelName = Literal["finest", "coarsest"]


@dataclass(frozen=True)
class TrainingConfig:
    """Training settings; ``time_budget_hours`` is a number of hours once the experiment is
    resolved (``published``: the hours Table 5 prints for the experiment's cell;
    ``published_beyond_parent``: those less the hours of the ``init_from`` experiment's cell)."""

    batch_size: int
    epochs: int
    seed: int
    accumulation_steps: int = 1
    max_iterations: int | None = None
    time_budget_hours: float | Literal["published", "published_beyond_parent"] | None = None
    checkpoint_every_iterations: int = 1000
    checkpoint_every_minutes: float = 30.0
    validation: ValidationConfig = ValidationConfig()
    init_from: str | None = None
    """Another experiment whose trained levels start this one's, matched by resolution."""
    train_levels: Literal["all"] | list[LevelName | int] = "all"
    """The levels trained; the others keep their initial (``init_from``) weights."""
    coarse_noise: Literal["shared", "per_level"] = "shared"
    """Coarse levels from the finest level's dequantised image, or each from its own
    dequantisation of the 8-bit image (the authors' code)."""

    def __post_init__(self) -> None:
        if min(self.batch_size, self.accumulation_steps, self.epochs) < 1:
            raise ValueError("batch_size, accumulation_steps and epochs must be positive")
        if self.train_levels != "all" and self.init_from is None:
            raise ValueError(
                "train_levels other than 'all' need init_from: levels not trained would keep "
                "their random initialisation"
            )


@dataclass(frozen=True)
class EvaluationConfig:
    batch_size: int
    seed: int = 0
    checkpoint: Literal["best", "last"] = "last"
    """The checkpoint that bpd, samples and FID are computed from (``best``: the lowest
    validation bpd, see :class:`ValidationConfig`)."""


@dataclass(frozen=True)
class FidConfig:
    temperatures: list[float]
    num_samples: int
    batch_size: int
    reference_images: int | None = None
    seed: int = 0
    seed_sets: int = 1
    """Sample sets on disjoint seed ranges (set k: seeds from seed + k·num_samples); the first
    gives FID and KID, every set's FID their spread (1: one set, the usual protocol)."""


@dataclass(frozen=True)
class Table5Cell:
    """The published Table 5 cell an experiment reproduces."""

    model: str
    dataset: str


@dataclass(frozen=True)
class PaperCells:
    """Where an experiment's numbers appear in the paper."""

    table5: Table5Cell | None = None


@dataclass(frozen=True)
class Experiment:
    """The resolved configuration of one experiment under one profile."""

    id: str
    profile: str
    data: DataConfig
    model: ModelConfig
    solver: SolversConfig
    loss: LossConfig
    optimizer: OptimizerConfig
    training: TrainingConfig
    evaluation: EvaluationConfig
    fid: FidConfig
    paper: PaperCells = PaperCells()

    def __post_init__(self) -> None:
        if self.training.validation.on == "held_out" and not self.data.held_out_images:
            raise ValueError(
                "training.validation.on is held_out, but data.held_out_images is 0: set the "
                "number of training images to hold out"
            )

    def to_dict(self) -> dict[str, Any]:
        """The configuration as plain JSON-serialisable data."""
        return dataclasses.asdict(self)

    def params_hash(self) -> str:
        """A short hash of the resolved configuration, for provenance."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def model_config(self, *, channels: int) -> MRCNFConfig:
        """The library configuration of this experiment's model for images of ``channels``."""
        return MRCNFConfig(
            channels=channels,
            **dataclasses.asdict(self.model),
            train_solver=self.solver.train,
            eval_solver=self.solver.eval,
        )


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
        return list(_require(self.raw, "experiments", dict))

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
        experiments = _require(self.raw, "experiments", dict)
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
        hours -= _published_hours(parent)
    training = dataclasses.replace(experiment.training, time_budget_hours=hours)
    return dataclasses.replace(experiment, training=training)


def _published_hours(experiment: Experiment) -> float:
    """The GPU hours Table 5 prints for the experiment's cell."""
    cell = experiment.paper.table5
    hours = None if cell is None else _published_table5().hours(cell.model, cell.dataset)
    if hours is None:
        where = "no paper.table5 cell" if cell is None else f"{cell.model} on {cell.dataset}"
        raise SchemaError(
            f"experiments.{experiment.id}: training.time_budget_hours is 'published', but "
            f"Table 5 prints no hours for it ({where}): set a number or null"
        )
    return hours


@functools.cache
def _published_table5() -> Table5:
    """Table 5 as published, read once however many experiments resolve their budget from it."""
    return load_published().table5


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
