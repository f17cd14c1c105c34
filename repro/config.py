"""Experiments pinned in ``params.yaml``: loading, profile resolution and validation.

An experiment's configuration is ``defaults`` deep-merged with ``experiments.<id>``, then with the
profile's ``all`` and ``experiments.<id>`` sections. The result is checked field by field against
the dataclasses below; any problem is one :class:`ConfigError` line naming the key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import yaml

PUBLISHED = "published"
PROFILE_KEYS = ("comparable", "all", "experiments")


class ConfigError(ValueError):
    """A missing, unknown or malformed setting in params.yaml (one line, naming the key)."""


@dataclass(frozen=True)
class DataConfig:
    dataset: str
    image_size: int | None
    limit_train: int | None
    limit_test: int | None
    horizontal_flip: bool


@dataclass(frozen=True)
class ModelConfig:
    resolutions: int
    blocks: int
    width: int
    transform: str
    logit_alpha: float
    divergence: str


@dataclass(frozen=True)
class SolverConfig:
    method: str
    atol: float
    rtol: float
    adjoint: bool
    step_size: float | None


@dataclass(frozen=True)
class SolversConfig:
    train: SolverConfig
    eval: SolverConfig


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
class TrainingConfig:
    batch_size: int
    accumulation_steps: int
    epochs: int
    max_iterations: int | None
    time_budget_hours: float | str | None
    seed: int
    checkpoint_every_iterations: int
    checkpoint_every_minutes: float

    def __post_init__(self) -> None:
        budget = self.time_budget_hours
        if isinstance(budget, str) and budget != PUBLISHED:
            raise ConfigError(
                "'training.time_budget_hours' must be a number, null or "
                f"'{PUBLISHED}', got {budget!r}"
            )
        if min(self.batch_size, self.accumulation_steps, self.epochs) < 1:
            raise ConfigError(
                "'training.batch_size', 'training.accumulation_steps' and 'training.epochs' "
                "must be positive"
            )


@dataclass(frozen=True)
class EvaluationConfig:
    batch_size: int
    seed: int


@dataclass(frozen=True)
class FidConfig:
    temperatures: list[float]
    num_samples: int
    reference_images: int | None
    batch_size: int
    seed: int


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
    paper: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The configuration as plain JSON-serialisable data."""
        return dataclasses.asdict(self)

    def params_hash(self) -> str:
        """A short hash of the resolved configuration, for provenance."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Params:
    """The whole of params.yaml, as loaded."""

    path: Path
    raw: dict[str, Any]

    @property
    def profile(self) -> str:
        """The profile selected in the file."""
        return _require(self.raw, "profile", str, "profile")

    @property
    def profiles(self) -> list[str]:
        return sorted(_require(self.raw, "profiles", dict, "profiles"))

    @property
    def experiment_ids(self) -> list[str]:
        return list(_require(self.raw, "experiments", dict, "experiments"))

    @property
    def tolerances(self) -> dict[str, float]:
        return _require(self.raw, "tolerances", dict, "tolerances")

    @property
    def table7(self) -> dict[str, str]:
        """Experiment id -> the Table 7 model it stands for.

        Raises:
            ConfigError: If an entry names an unknown experiment.
        """
        models = _require(self.raw, "table7", dict, "table7")
        for experiment_id in models:
            if experiment_id not in self.experiment_ids:
                raise ConfigError(f"{self.path}: table7 names unknown experiment {experiment_id!r}")
        return models

    def _profile(self, name: str) -> dict[str, Any]:
        profiles = _require(self.raw, "profiles", dict, "profiles")
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

    def experiment(self, experiment_id: str, *, profile: str | None = None) -> Experiment:
        """Resolve and validate one experiment.

        Args:
            experiment_id: A key of ``experiments``.
            profile: A key of ``profiles`` (default: the file's ``profile``).

        Raises:
            ConfigError: Unknown id or profile, or a missing, unknown or malformed value.
        """
        profile = profile or self.profile
        experiments = _require(self.raw, "experiments", dict, "experiments")
        if experiment_id not in experiments:
            raise ConfigError(
                f"{self.path}: unknown experiment {experiment_id!r}; "
                f"known: {', '.join(experiments)}"
            )
        overrides = self._profile(profile)
        merged = _deep_merge(
            _require(self.raw, "defaults", dict, "defaults"),
            experiments[experiment_id] or {},
            overrides.get("all") or {},
            (overrides.get("experiments") or {}).get(experiment_id) or {},
        )
        merged.setdefault("paper", {})
        try:
            return _build(Experiment, {**merged, "id": experiment_id, "profile": profile}, "")
        except ConfigError as error:
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


def _require(mapping: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    if key not in mapping:
        raise ConfigError(f"missing key '{where}'")
    value = mapping[key]
    if not isinstance(value, kind):
        raise ConfigError(f"'{where}' must be a {kind.__name__}, got {value!r}")
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


def _build(cls: type, values: Any, where: str) -> Any:
    """Construct dataclass ``cls`` from nested dicts, checking every field's type."""
    if not isinstance(values, Mapping):
        raise ConfigError(f"'{where}' must be a mapping, got {values!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"unknown key '{_join(where, unknown[0])}' (known: {', '.join(fields)})")
    kwargs = {}
    for name in fields:
        key = _join(where, name)
        if name not in values:
            raise ConfigError(f"missing key '{key}'")
        kwargs[name] = _convert(hints[name], values[name], key)
    return cls(**kwargs)


def _convert(hint: Any, value: Any, key: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, key)
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is not type(None):
                try:
                    return _convert(option, value, key)
                except ConfigError:
                    continue
        names = " or ".join("null" if o is type(None) else _name(o) for o in options)
        raise ConfigError(f"'{key}' must be {names}, got {value!r}")
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"'{key}' must be a list, got {value!r}")
        (item,) = typing.get_args(hint)
        return [_convert(item, v, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"'{key}' must be a mapping, got {value!r}")
        return value
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, hint) and not _bool_as_number(hint, value):
        return value
    raise ConfigError(f"'{key}' must be {_name(hint)}, got {value!r}")


def _bool_as_number(hint: Any, value: Any) -> bool:
    return hint in (int, float) and isinstance(value, bool)


def _name(hint: Any) -> str:
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(
        hint, getattr(hint, "__name__", str(hint))
    )


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name
