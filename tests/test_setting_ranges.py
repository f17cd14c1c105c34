"""Every number of params.yaml has a declared range, and every value outside it (NaN and ±inf
included) is refused when the file loads, with one line naming the key.

The keys are found by walking the configuration's dataclasses, not listed here: a new numeric
setting without a range fails :func:`test_every_numeric_setting_declares_a_range`.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import shutil
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import pytest
import yaml
from click.testing import CliRunner

from mrcnf.bounds import Interval, MRCNFSettingError, interval_of
from mrcnf.config import MRCNFConfig, SolverOptions
from repro.cli import main
from repro.cli.common import TEMPERATURE
from repro.config import ConfigError, load_params
from repro.experiment import TEMPERATURES, CalibrationConfig, Experiment, FidConfig

REPO = Path(__file__).resolve().parents[1]
EXPERIMENT = "cifar10-2res-small"
PROGRESSIVE = "imagenet128-4res"
REPO_PARAMS = yaml.safe_load((REPO / "params.yaml").read_text())
# libyaml's dumper where installed: the test writes params.yaml some 200 times.
DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
PROFILE = "smoke"


@dataclasses.dataclass(frozen=True)
class NumericSetting:
    """A numeric field found in the dataclasses: its dotted key, type and declared range."""

    key: str
    kind: type
    interval: Interval | None
    in_list: bool = False


def numeric_settings(cls: type, prefix: str = "") -> Iterator[NumericSetting]:
    """Every int or float field of dataclass ``cls`` and of the dataclasses it nests."""
    hints = typing.get_type_hints(cls, include_extras=True)
    for declared in dataclasses.fields(cls):
        key = f"{prefix}{declared.name}"
        yield from _numbers_in(hints[declared.name], key)


def _numbers_in(hint: Any, key: str, in_list: bool = False) -> Iterator[NumericSetting]:
    origin, arguments = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        yield from numeric_settings(hint, f"{key}.")
    elif origin is Annotated:
        if arguments[0] in (int, float):
            yield NumericSetting(key, arguments[0], interval_of(hint), in_list)
        else:
            yield from _numbers_in(arguments[0], key, in_list)
    elif origin in (Union, types.UnionType):
        for option in arguments:
            yield from _numbers_in(option, key, in_list)
    elif origin in (list, tuple):
        yield from _numbers_in(arguments[0], key, in_list=True)
    elif hint in (int, float):
        yield NumericSetting(key, hint, None, in_list)
    else:
        assert origin is Literal or hint in (str, bool, type(None)), f"{key}: unexpected {hint}"


SETTINGS = list(numeric_settings(Experiment))
# The library's own fields (nested solver options are SolverOptions' own).
LIBRARY = [
    (cls, setting)
    for cls in (MRCNFConfig, SolverOptions)
    for setting in numeric_settings(cls)
    if "." not in setting.key
]


def _ids(settings: list[NumericSetting]) -> list[str]:
    return [setting.key for setting in settings]


def _library_ids(library: list[tuple[type, NumericSetting]]) -> list[str]:
    return [f"{cls.__name__}.{setting.key}" for cls, setting in library]


def just_outside(setting: NumericSetting) -> list[int | float]:
    """The values nearest to the range without being in it, on each bounded side."""
    interval, values = setting.interval, []
    assert interval is not None
    for bound, is_open, direction in (
        (interval.low, interval.low_open, -math.inf),
        (interval.high, interval.high_open, math.inf),
    ):
        if bound is None:
            continue
        if is_open:
            values.append(setting.kind(bound))
        elif setting.kind is int:
            values.append(int(bound) + (1 if direction > 0 else -1))
        else:
            values.append(math.nextafter(float(bound), direction))
    return values


def test_the_walk_finds_the_settings_of_every_section() -> None:
    keys = set(_ids(SETTINGS))
    sections = {key.split(".")[0] for key in keys}
    expected = {"data", "model", "solver", "loss", "optimizer", "training", "evaluation", "fid"}
    assert sections == expected
    assert {"training.validation.every_epochs", "solver.eval.atol", "fid.temperatures"} <= keys
    assert {"training.time_budget_hours", "data.limit_train", "model.logit_alpha"} <= keys


# The calibration's own section (params.yaml's `calibration`, overridden per profile).
CALIBRATION = list(numeric_settings(CalibrationConfig, "calibration."))
ALL = SETTINGS + [setting for _, setting in LIBRARY] + CALIBRATION


@pytest.mark.parametrize(
    "setting", ALL, ids=_ids(SETTINGS) + _library_ids(LIBRARY) + _ids(CALIBRATION)
)
def test_every_numeric_setting_declares_a_range(setting: NumericSetting) -> None:
    kind = setting.kind.__name__
    assert setting.interval is not None, (
        f"{setting.key} is a number without a range: declare it as Annotated[{kind}, Interval(…)]"
    )


@pytest.fixture(scope="module")
def params_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("params")
    shutil.copy(REPO / "params.yaml", folder / "params.yaml")
    return folder / "params.yaml"


def _load_with(path: Path, key: str, value: Any) -> Experiment:
    """The experiment, from a copy of params.yaml whose smoke profile sets ``key`` to ``value``
    for it (levels to train: for the experiment that starts from another's)."""
    experiment_id = PROGRESSIVE if key == "training.train_levels" else EXPERIMENT
    raw = copy.deepcopy(REPO_PARAMS)
    overrides = raw["profiles"][PROFILE].setdefault("experiments", {})
    section = overrides.setdefault(experiment_id, {})
    *parents, name = key.split(".")
    for parent in parents:
        section = section.setdefault(parent, {})
    section[name] = value
    path.write_text(yaml.dump(raw, Dumper=DUMPER, sort_keys=False))
    return load_params(path).experiment(experiment_id, profile=PROFILE)


def _bad_values(setting: NumericSetting) -> list[tuple[Any, str]]:
    """Values to refuse, each with the words the message must hold besides the key."""
    values = [(math.nan, "nan"), (math.inf, "inf"), (-math.inf, "inf")]
    if setting.interval is not None:
        values += [(v, setting.interval.describe()) for v in just_outside(setting)]
    return values


@pytest.mark.parametrize("setting", SETTINGS, ids=_ids(SETTINGS))
def test_a_value_outside_the_range_is_refused_naming_the_key(
    setting: NumericSetting, params_copy: Path
) -> None:
    for value, words in _bad_values(setting):
        written = [value] if setting.in_list else value
        with pytest.raises(ConfigError) as error:
            _load_with(params_copy, setting.key, written)
        message = str(error.value)
        assert f"'{setting.key}" in message and words in message, (value, message)
        assert "\n" not in message


@pytest.mark.parametrize("setting", SETTINGS, ids=_ids(SETTINGS))
def test_the_bounds_themselves_load(setting: NumericSetting, params_copy: Path) -> None:
    interval = setting.interval
    assert interval is not None
    for bound, is_open in ((interval.low, interval.low_open), (interval.high, interval.high_open)):
        if bound is None or is_open:
            continue
        value = setting.kind(bound)
        experiment = _load_with(params_copy, setting.key, [value] if setting.in_list else value)
        loaded = experiment
        for part in setting.key.split("."):
            loaded = getattr(loaded, part)
        assert loaded == ([value] if setting.in_list else value)


def _calibration_with(path: Path, key: str, value: Any) -> CalibrationConfig:
    """The smoke profile's calibration, from a copy of params.yaml that sets ``key``
    (``calibration.<name>``) to ``value`` in the profile's own calibration key."""
    raw = copy.deepcopy(REPO_PARAMS)
    raw["profiles"][PROFILE]["calibration"][key.removeprefix("calibration.")] = value
    path.write_text(yaml.dump(raw, Dumper=DUMPER, sort_keys=False))
    return load_params(path).calibration(PROFILE)


@pytest.mark.parametrize("setting", CALIBRATION, ids=_ids(CALIBRATION))
def test_a_calibration_value_outside_its_range_is_refused_naming_the_key(
    setting: NumericSetting, params_copy: Path
) -> None:
    for value, words in _bad_values(setting):
        written = [value] if setting.in_list else value
        with pytest.raises(ConfigError) as error:
            _calibration_with(params_copy, setting.key, written)
        message = str(error.value)
        assert f"'{setting.key}" in message and words in message, (value, message)
        assert "\n" not in message


@pytest.mark.parametrize(("cls", "setting"), LIBRARY, ids=_library_ids(LIBRARY))
def test_the_library_settings_check_their_ranges_when_constructed(
    cls: type, setting: NumericSetting
) -> None:
    base = {"channels": 1, "resolutions": 1, "blocks": 1} if cls is MRCNFConfig else {}
    for value, words in _bad_values(setting):
        with pytest.raises(MRCNFSettingError) as error:
            cls(**{**base, setting.key: value})
        assert setting.key in str(error.value) and words in str(error.value), error.value


def test_the_harness_sections_check_their_ranges_when_replaced() -> None:
    experiment = load_params(REPO / "params.yaml").experiment(EXPERIMENT, profile=PROFILE)
    with pytest.raises(ValueError, match=r"checkpoint_every_iterations must be ≥ 1, got 0"):
        dataclasses.replace(experiment.training, checkpoint_every_iterations=0)
    with pytest.raises(ValueError, match=r"temperatures\[1\] must be a finite number in \(0, 2\]"):
        dataclasses.replace(experiment.fid, temperatures=[1.0, math.nan])


def test_the_temperature_range_is_one_declaration() -> None:
    item = typing.get_args(typing.get_type_hints(FidConfig, include_extras=True)["temperatures"])
    assert interval_of(item[0]) is TEMPERATURES
    assert TEMPERATURE.interval is TEMPERATURES


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0", "2.5"])
@pytest.mark.parametrize("command", [["sample"], ["eval", "fid"]])
def test_the_command_line_refuses_a_temperature_outside_the_range(
    command: list[str], value: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MRCNF_RUNS", str(tmp_path))
    monkeypatch.chdir(REPO)
    args = [*command, EXPERIMENT, "--profile", PROFILE, "--temperature", value]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    assert "Invalid value for '--temperature'" in result.output
    assert not any(tmp_path.iterdir())


def test_the_command_line_accepts_the_bound_of_the_temperature_range() -> None:
    assert TEMPERATURE.convert("2", None, None) == 2.0


@pytest.mark.parametrize(
    ("interval", "described", "inside", "outside"),
    [
        (Interval(low=1), "≥ 1", [1, 10**30], [0, math.nan, math.inf]),
        (Interval(low=0, low_open=True), "> 0", [1e-300], [0.0, -1.0, math.inf]),
        (Interval(low=0, high=2, low_open=True), "in (0, 2]", [2.0], [0.0, 2.0000001, -math.inf]),
        (Interval(low=0, high=0.5, high_open=True), "in [0, 0.5)", [0.0], [0.5, math.nan]),
        (Interval(), "a finite number", [-1e300], [math.nan, math.inf]),
    ],
)
def test_an_interval_holds_finite_numbers_between_its_bounds(
    interval: Interval, described: str, inside: list[float], outside: list[float]
) -> None:
    assert interval.describe() == described
    assert all(interval.contains(value) and interval.problem(value) is None for value in inside)
    assert not any(interval.contains(value) for value in outside)
    assert all(interval.problem(value).startswith("must be") for value in outside)
