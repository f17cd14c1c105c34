"""Progressive training: levels start from the parent's checkpoint, frozen levels never change."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import pytest
import torch

from repro.checkpoint import CheckpointError, load_checkpoint
from repro.config import Experiment, load_params
from repro.layout import ProfileLayout
from repro.optimization import optimization_step
from repro.run_state import start_run
from repro.train import train
from tests.profiles import params_with_profile, tiny_profile

CPU = torch.device("cpu")
CHILD, PARENT = "imagenet128-4res", "imagenet64-3res-small"


def _profile() -> dict:
    profile = tiny_profile(
        limit_train=96, limit_test=32, max_iterations=3, checkpoint_every_iterations=3
    )
    profile["all"]["evaluation"]["checkpoint"] = "last"
    # The child yields twice the parent's 8×8 images, so its three coarser levels are the parent's.
    assert profile["experiments"][CHILD]["data"]["image_size"] == 16
    return profile


@pytest.fixture
def experiments(tmp_path: Path, runs: Path) -> dict[str, Experiment]:
    path = tmp_path / "params.yaml"
    path.write_text(params_with_profile("tiny", _profile()))
    params = load_params(path)
    return {name: params.experiment(name, profile="tiny") for name in (CHILD, PARENT)}


def _level_weights(state: dict[str, torch.Tensor], level: int) -> dict[str, torch.Tensor]:
    prefix = f"flows.{level}."
    return {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}


def _assert_equal(first: dict[str, torch.Tensor], second: dict[str, torch.Tensor]) -> None:
    assert first.keys() == second.keys()
    for key in first:
        torch.testing.assert_close(first[key], second[key], rtol=0, atol=0)


def test_frozen_levels_keep_the_parents_weights_while_the_finest_level_trains(
    experiments: dict[str, Experiment],
) -> None:
    runs = ProfileLayout("tiny")
    train(experiments[PARENT], run_dir=runs.run(PARENT).root, device=CPU)
    train(experiments[CHILD], run_dir=runs.run(CHILD).root, device=CPU)
    # Where the child started: the parent's levels and a fresh finest level.
    start = start_run(experiments[CHILD], runs.run("start"), torch.Size([1, 16, 16]), CPU, False)
    initial = start.model.state_dict()

    parent = load_checkpoint(runs.run(PARENT).checkpoint("last"))["model"]
    child = load_checkpoint(runs.run(CHILD).checkpoint("last"))["model"]
    for level in (1, 2, 3):
        _assert_equal(_level_weights(child, level), _level_weights(parent, level - 1))
    trained = _level_weights(child, 0)
    assert any(not torch.equal(trained[k], v) for k, v in _level_weights(initial, 0).items())


def test_a_progressive_step_updates_the_trained_level_as_joint_training_would(
    experiments: dict[str, Experiment],
) -> None:
    runs = ProfileLayout("tiny")
    train(experiments[PARENT], run_dir=runs.run(PARENT).root, device=CPU)
    progressive = start_run(
        experiments[CHILD], runs.run(CHILD), torch.Size([1, 16, 16]), CPU, False
    )
    joint_experiment = dataclasses.replace(
        experiments[CHILD],
        training=dataclasses.replace(
            experiments[CHILD].training, init_from=None, train_levels="all"
        ),
    )
    joint = start_run(joint_experiment, runs.run("joint"), torch.Size([1, 16, 16]), CPU, False)
    joint.model.load_state_dict(progressive.model.state_dict())
    before = copy.deepcopy(progressive.model.state_dict())
    x = torch.rand(8, 1, 16, 16, generator=torch.Generator().manual_seed(0))

    for run, experiment in ((progressive, experiments[CHILD]), (joint, joint_experiment)):
        optimization_step(run.model, run.optimizer, x, experiment=experiment, iteration=0)

    after = progressive.model.state_dict()
    finest = _level_weights(after, 0)
    for key, value in _level_weights(joint.model.state_dict(), 0).items():
        torch.testing.assert_close(finest[key], value, rtol=0, atol=1e-6)
    assert any(not torch.equal(finest[k], v) for k, v in _level_weights(before, 0).items())
    for level in (1, 2, 3):
        _assert_equal(_level_weights(after, level), _level_weights(before, level))


def test_a_missing_parent_checkpoint_is_one_line_naming_it(
    experiments: dict[str, Experiment],
) -> None:
    run = ProfileLayout("tiny").run(CHILD)
    with pytest.raises(CheckpointError, match=PARENT) as error:
        train(experiments[CHILD], run_dir=run.root, device=CPU)
    assert "\n" not in str(error.value)
