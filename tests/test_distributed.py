"""torchrun: two processes train and sample exactly as one process does (gloo, CPU)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from repro.config import load_params
from repro.distributed import World
from repro.layout import RunLayout
from repro.train import TrainingSettingError, train

REPO = Path(__file__).resolve().parents[1]
EXPERIMENT = "cifar10-2res-small"

# Exact divergence and a fixed-step solver: the only randomness is per image, so splitting a
# batch over processes changes nothing but the order of floating-point sums.
EXACT = {
    "all": {
        "data": {"dataset": "mnist", "image_size": 8, "limit_train": 128, "limit_test": 16},
        "model": {"blocks": 1, "width": 8, "logit_alpha": 1.0e-6, "divergence": "exact"},
        "solver": {
            "train": {"method": "rk4", "step_size": 0.5, "first_step": None},
            "eval": {"atol": 1.0e-4, "rtol": 1.0e-4},
        },
        "optimizer": {"warmup_iterations": 1},
        "training": {
            "batch_size": 16,
            "max_iterations": 3,
            "time_budget_hours": None,
            "checkpoint_every_iterations": 3,
        },
    }
}


def _repro(args: list[str], *, runs: Path, params: Path, processes: int) -> None:
    launcher = (
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={processes}",
        ]
        if processes > 1
        else [sys.executable]
    )
    command = [*launcher, "-m", "repro", *args, "--params", str(params), "--profile", "exact"]
    env = {**os.environ, "MRCNF_RUNS": str(runs), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.fixture(scope="module")
def params(tmp_path_factory: pytest.TempPathFactory) -> Path:
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["profiles"]["exact"] = EXACT
    path = tmp_path_factory.mktemp("params") / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.slow
def test_two_processes_train_to_the_parameters_of_one_with_the_same_global_batch(
    params: Path, tmp_path: Path
) -> None:
    for processes in (1, 2):
        runs = tmp_path / f"p{processes}"
        _repro(
            ["train", EXPERIMENT, "--device", "cpu"], runs=runs, params=params, processes=processes
        )
    one, two = (
        torch.load(
            RunLayout(tmp_path / f"p{n}" / "exact" / EXPERIMENT).checkpoint(), weights_only=True
        )
        for n in (1, 2)
    )
    assert one["state"]["iteration"] == two["state"]["iteration"] == 3
    changed = 0
    for name, value in one["model"].items():
        torch.testing.assert_close(two["model"][name], value, atol=1e-5, rtol=1e-5)
        changed += int(not torch.equal(value, torch.zeros_like(value)))
    assert changed > 0


@pytest.mark.slow
def test_sampling_with_one_and_two_processes_yields_identical_images(
    params: Path, tmp_path: Path
) -> None:
    _repro(["train", EXPERIMENT, "--device", "cpu"], runs=tmp_path, params=params, processes=1)
    stems = {}
    for processes in (1, 2):
        stems[processes] = tmp_path / f"samples{processes}"
        args = [
            "sample",
            EXPERIMENT,
            "-n",
            "9",
            "--batch-size",
            "4",
            "--out",
            str(stems[processes]),
        ]
        _repro([*args, "--device", "cpu"], runs=tmp_path, params=params, processes=processes)
    one, two = (np.load(f"{stems[n]}.npz") for n in (1, 2))
    assert one["images"].shape == (9, 1, 8, 8)
    assert np.array_equal(one["images"], two["images"])
    assert np.array_equal(one["seeds"], two["seeds"])


def test_shards_interleave_and_gather_back_in_order() -> None:
    items = list(range(7))
    shards = [World(rank=r, size=3).shard(items) for r in range(3)]
    assert shards == [[0, 3, 6], [1, 4], [2, 5]]
    assert World().shard(items) == items


@pytest.mark.slow
def test_gradient_accumulation_gives_the_parameters_of_one_whole_batch(
    params: Path, tmp_path: Path
) -> None:
    experiment = load_params(params).experiment(EXPERIMENT, profile="exact")
    for steps in (1, 4):
        accumulated = replace(
            experiment, training=replace(experiment.training, accumulation_steps=steps)
        )
        train(accumulated, run_dir=tmp_path / f"a{steps}", device=torch.device("cpu"))
    whole, accumulated = (
        torch.load(RunLayout(tmp_path / f"a{n}").checkpoint(), weights_only=True)["model"]
        for n in (1, 4)
    )
    for name, value in whole.items():
        torch.testing.assert_close(accumulated[name], value, atol=1e-5, rtol=1e-5)


def test_batch_that_does_not_split_into_micro_batches_is_refused(
    params: Path, tmp_path: Path
) -> None:
    experiment = load_params(params).experiment(EXPERIMENT, profile="exact")
    uneven = replace(experiment, training=replace(experiment.training, accumulation_steps=3))
    with pytest.raises(TrainingSettingError, match="accumulation"):
        train(uneven, run_dir=tmp_path, device=torch.device("cpu"))
