"""repro resolve: each stage's settings, resolved, in its own file, so that a stage reruns exactly
when a setting it reads changes its value."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from repro.cli import main
from repro.config import load_params
from repro.layout import ProfileLayout
from repro.stage_settings import EXPERIMENT_STAGES, write_stage_settings

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of params.yaml, with the runs written beside it."""
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())
    monkeypatch.setenv("MRCNF_RUNS", str(tmp_path / "runs"))
    return tmp_path


def _edit(project: Path, change) -> None:
    raw = yaml.safe_load((project / "params.yaml").read_text())
    change(raw)
    (project / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))


def _snapshot(project: Path) -> dict[str, bytes]:
    """Every settings file the smoke profile's resolution writes, by path."""
    params = load_params(project / "params.yaml")
    return {str(path): path.read_bytes() for path in write_stage_settings(params, profile="smoke")}


def _changed(before: dict[str, bytes], after: dict[str, bytes]) -> set[str]:
    root = str(ProfileLayout("smoke").settings) + "/"
    return {path.removeprefix(root) for path in after if before.get(path) != after[path]}


def test_every_stage_of_every_experiment_gets_the_sections_it_reads(project: Path) -> None:
    params = load_params(project / "params.yaml")
    written = write_stage_settings(params, profile="smoke")
    layout = ProfileLayout("smoke")
    expected = {
        layout.stage_settings(experiment_id, stage)
        for experiment_id in params.experiment_ids
        for stage in EXPERIMENT_STAGES
    } | {layout.stage_settings(None, "calibration")}
    assert set(written) == expected
    experiment = params.experiment("cifar10-2res-small", profile="smoke")
    train = json.loads(layout.stage_settings(experiment.id, "train").read_text())
    assert set(train) == {"id", "profile", *EXPERIMENT_STAGES["train"]}
    assert train["training"] == dataclasses.asdict(experiment.training)
    ood = json.loads(layout.stage_settings(experiment.id, "ood").read_text())
    assert ood["ood"] == dataclasses.asdict(params.ood("smoke"))


def test_a_default_the_profile_overrides_changes_no_file(project: Path) -> None:
    before = _snapshot(project)
    _edit(project, lambda raw: raw["defaults"]["training"].update(max_iterations=123_456))
    assert _changed(before, _snapshot(project)) == set()


def test_one_experiments_setting_changes_only_that_experiments_files(project: Path) -> None:
    before = _snapshot(project)
    _edit(project, lambda raw: raw["experiments"]["cifar10-1res"].update(training={"seed": 30}))
    assert _changed(before, _snapshot(project)) == {"cifar10-1res/train.json"}


def test_fid_temperatures_change_the_fid_settings_and_never_a_training(project: Path) -> None:
    before = _snapshot(project)

    def fewer_temperatures(raw: dict) -> None:
        raw["profiles"]["smoke"]["all"]["fid"]["temperatures"] = [1.0]

    _edit(project, fewer_temperatures)
    changed = _changed(before, _snapshot(project))
    experiment_ids = load_params(project / "params.yaml").experiment_ids
    assert changed == {f"{experiment_id}/fid.json" for experiment_id in experiment_ids}


def test_the_command_refuses_an_unknown_profile_and_writes_nothing(project: Path) -> None:
    args = ["resolve", "--params", str(project / "params.yaml"), "--profile", "nosuch"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert "unknown profile 'nosuch'" in result.output
    assert not (project / "runs").exists()
