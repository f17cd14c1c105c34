"""params.yaml: every experiment resolves, and bad input fails with one line naming the key."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from repro.config import ConfigError, Params, load_params

PARAMS = load_params(Path(__file__).resolve().parents[1] / "params.yaml")


@pytest.mark.parametrize("experiment_id", PARAMS.experiment_ids)
@pytest.mark.parametrize("profile", PARAMS.profiles)
def test_every_experiment_resolves_under_every_profile(experiment_id: str, profile: str) -> None:
    experiment = PARAMS.experiment(experiment_id, profile=profile)
    assert experiment.id == experiment_id
    assert (
        experiment.model.resolutions
        == PARAMS.experiment(experiment_id, profile="paper").model.resolutions
    )
    assert (
        experiment.params_hash() == PARAMS.experiment(experiment_id, profile=profile).params_hash()
    )


def test_smoke_profile_runs_real_mnist_with_a_small_model() -> None:
    experiment = PARAMS.experiment("cifar10-3res-big", profile="smoke")
    assert (experiment.data.dataset, experiment.data.image_size) == ("mnist", 16)
    assert (
        experiment.model.blocks
        < PARAMS.experiment("cifar10-3res-big", profile="paper").model.blocks
    )


def test_published_time_budget_resolves_to_the_table5_hours_when_loaded() -> None:
    pinned = PARAMS.paper_experiments()
    assert pinned["cifar10-2res-small"].training.time_budget_hours == 19.79
    assert pinned["cifar10-1res"].training.time_budget_hours is None


def test_published_time_budget_of_a_cell_without_printed_hours_is_one_line() -> None:
    params = _mutated(
        lambda r: r["experiments"]["cifar10-1res"]["training"].update(time_budget_hours="published")
    )
    with pytest.raises(ConfigError, match="prints no hours") as error:
        params.experiment("cifar10-1res", profile="paper")
    assert "\n" not in str(error.value)


def _mutated(change) -> Params:
    raw = copy.deepcopy(PARAMS.raw)
    change(raw)
    return Params(path=Path("params.yaml"), raw=raw)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r["defaults"]["optimizer"].update(lr="fast"), "'optimizer.lr' must be a number"),
        (lambda r: r["defaults"]["optimizer"].pop("lr"), "missing key 'optimizer.lr'"),
        (lambda r: r["defaults"]["model"].update(blockz=3), "unknown key 'model.blockz'"),
        (lambda r: r["defaults"]["training"].update(batch_size=True), "'training.batch_size'"),
        (lambda r: r["defaults"]["training"].update(time_budget_hours="soon"), "time_budget_hours"),
        (
            lambda r: r["experiments"]["cifar10-2res-small"].update(model=7),
            "'model' must be a mapping",
        ),
    ],
)
def test_malformed_value_fails_with_one_line_naming_the_key(change, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as error:
        _mutated(change).experiment("cifar10-2res-small", profile="paper")
    assert "\n" not in str(error.value)


def test_profiles_say_whether_their_numbers_are_comparable_with_the_paper() -> None:
    assert PARAMS.comparable("paper") and not PARAMS.comparable("smoke")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r["profiles"]["smoke"].update(comparable="no"), "smoke.comparable must be true"),
        (lambda r: r["profiles"]["smoke"].update(al={}), "profiles.smoke.al is not a profile key"),
    ],
)
def test_malformed_profile_fails_with_one_line_naming_the_key(change, message: str) -> None:
    params = _mutated(change)
    with pytest.raises(ConfigError, match=message):
        params.comparable("smoke")
    with pytest.raises(ConfigError, match=message):
        params.experiment("cifar10-1res", profile="smoke")


def test_unknown_experiment_and_profile_are_named() -> None:
    with pytest.raises(ConfigError, match="unknown experiment 'cifar11'"):
        PARAMS.experiment("cifar11")
    with pytest.raises(ConfigError, match="unknown profile 'huge'"):
        PARAMS.experiment("cifar10-1res", profile="huge")


def test_a_profile_is_checked_before_a_command_writes_under_it() -> None:
    assert PARAMS.checked_profile("paper") == "paper"
    assert PARAMS.checked_profile() == PARAMS.profile
    with pytest.raises(ConfigError, match="unknown profile 'nosuch'"):
        PARAMS.checked_profile("nosuch")


def test_missing_and_unparsable_files_are_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_params(tmp_path / "params.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("defaults: {model: [\n")
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        load_params(broken)
    broken.write_text(yaml.safe_dump([1, 2]))
    with pytest.raises(ConfigError, match="mapping"):
        load_params(broken)


def test_a_setting_left_out_of_params_yaml_takes_the_library_default() -> None:
    from mrcnf import MRCNFConfig

    params = _mutated(lambda r: r["defaults"]["model"].pop("divergence"))
    experiment = params.experiment("cifar10-2res-small", profile="paper")
    assert experiment.model.divergence == MRCNFConfig.divergence == "hutchinson"


def test_an_invalid_model_setting_is_one_line_naming_the_key() -> None:
    params = _mutated(lambda r: r["defaults"]["model"].update(width=0))
    with pytest.raises(ConfigError, match=r"'model\.width' must be ≥ 1, got 0") as error:
        params.experiment("cifar10-2res-small", profile="paper")
    assert "\n" not in str(error.value)


def test_a_budget_beyond_the_parent_that_leaves_no_hours_is_refused() -> None:
    # The parent standing for the child's own cell: the child's hours less as many.
    params = _mutated(
        lambda r: r["experiments"]["imagenet64-3res-small"]["paper"]["table5"].update(
            r["progressive_experiments"]["imagenet128-4res"]["paper"]["table5"]
        )
    )
    with pytest.raises(ConfigError, match=r"published_beyond_parent' leaves 0\.0 hours"):
        params.experiment("imagenet128-4res", profile="paper")


def test_configuration_loads_without_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from repro.config import load_params; "
        "load_params('params.yaml').paper_experiments(); print('torch' in sys.modules)"
    )
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


def test_a_first_step_for_a_fixed_grid_solver_is_refused_when_params_load() -> None:
    params = _mutated(
        lambda r: r["defaults"]["solver"]["train"].update(method="rk4", step_size=0.5)
    )
    with pytest.raises(ConfigError, match=r"solver\.train.*first_step needs an adaptive method"):
        params.experiment("cifar10-2res-small", profile="paper")
