"""The ``best`` checkpoint: chosen by validation during training, kept across a resume, and the
one checkpoint that bpd, samples and FID all load; validation on held-out training images; the
validation's time left out of training time; per-level dequantisation of training batches."""

from __future__ import annotations

import csv
import dataclasses
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from mrcnf import MRCNF, dequantize
from repro import eval_fid
from repro.checkpoint import CheckpointError
from repro.config import Experiment, load_params
from repro.datasets import load_experiment_data
from repro.eval_bpd import evaluate_run
from repro.layout import RunLayout
from repro.results import TrainSummary
from repro.run_state import Checkpointer, Run, TrainState
from repro.runtime import generator
from repro.sampling import sample_run
from repro.train import NOISE_STREAM, TrainingBatches, Validation, train
from tests.profiles import params_with_profile, tiny_profile

CPU = torch.device("cpu")
FIXTURES = Path(__file__).resolve().parent / "fixtures"
# 128 training images in batches of 32: 4 iterations an epoch, validated every epoch.
TINY = tiny_profile(
    limit_train=128, limit_test=16, max_iterations=12, checkpoint_every_iterations=100
)


@pytest.fixture
def experiment(tmp_path: Path) -> Experiment:
    """cifar10-2res-small at the tiny profile, validated every 4 iterations, scored at ``best``."""
    params = tmp_path / "params.yaml"
    params.write_text(params_with_profile("tiny", TINY))
    loaded = load_params(params).experiment("cifar10-2res-small", profile="tiny")
    validation = dataclasses.replace(loaded.training.validation, every_epochs=1.0)
    return dataclasses.replace(
        loaded,
        training=dataclasses.replace(loaded.training, validation=validation),
        evaluation=dataclasses.replace(loaded.evaluation, checkpoint="best"),
    )


class _Killed(Exception):
    """A run stopped from outside, as by SIGKILL, at the moment it is raised."""


class _Judge:
    """Stands in for the validation: hands out chosen bpd values (or a kill), recording the
    iterations it judged and the images it was given."""

    def __init__(self) -> None:
        self.values: Iterator[float | Exception] = iter(())
        self.iterations: list[int] = []
        self.images: list[torch.Tensor] = []

    def next_value(self, images: torch.Tensor) -> float:
        self.images.append(images)
        value = next(self.values)
        if isinstance(value, Exception):
            raise value
        return value


@pytest.fixture
def judge(monkeypatch: pytest.MonkeyPatch) -> _Judge:
    """Install a :class:`_Judge`; set its values before training."""
    stand_in, original_judge = _Judge(), Validation.judge

    def bits_per_dim(validation: Validation, model: MRCNF) -> float:
        return stand_in.next_value(validation.images)

    def judge(validation: Validation, run: Run, checkpoints: Checkpointer, *, console) -> None:
        stand_in.iterations.append(run.state.iteration)
        original_judge(validation, run, checkpoints, console=console)

    monkeypatch.setattr(Validation, "bits_per_dim", bits_per_dim)
    monkeypatch.setattr(Validation, "judge", judge)
    return stand_in


def _state(layout: RunLayout, which: str) -> dict:
    return torch.load(layout.checkpoint(which), weights_only=True)["state"]


def _with(experiment: Experiment, **evaluation: str) -> Experiment:
    return dataclasses.replace(
        experiment, evaluation=dataclasses.replace(experiment.evaluation, **evaluation)
    )


def _fake_inception(monkeypatch: pytest.MonkeyPatch) -> None:
    """FID from stand-in features, so that only the sampled checkpoint matters."""
    weights = SimpleNamespace(sha256="0" * 64, origin="test", verified=True)
    features = np.random.default_rng(0).normal(size=(20, 4))
    reference = SimpleNamespace(mu=np.zeros(4), sigma=np.eye(4), features=features, count=20)
    monkeypatch.setattr(eval_fid, "_reference", lambda *a, **k: (weights, reference))
    monkeypatch.setattr(
        eval_fid,
        "extract_features",
        lambda images, **k: torch.randn(len(images), 4, generator=generator("cpu", 0)).double(),
    )


def test_best_is_the_lowest_validation_and_bpd_samples_and_fid_all_use_it(
    experiment: Experiment, judge: _Judge, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    judge.values = iter([5.0, 3.0, 4.0])
    layout = RunLayout(tmp_path / "run")
    summary = train(experiment, run_dir=layout.root, device=CPU)
    assert judge.iterations == [4, 8, 12]
    written = TrainSummary.read(layout.train_summary)
    assert (
        (written.best_iteration, written.best_validation_bpd)
        == (8, 3.0)
        == (
            summary.best_iteration,
            summary.best_validation_bpd,
        )
    )
    assert _state(layout, "best")["iteration"] == 8
    assert _state(layout, "last")["iteration"] == 12

    result = evaluate_run(experiment, run_dir=layout.root, device=CPU)
    assert (result.checkpoint, result.checkpoint_iteration) == ("best", 8)
    assert result.judged_by is not None and result.judged_by.images == "test"
    seeds = [3, 4]
    options = {"seeds": seeds, "temperature": 1.0, "batch_size": 2, "device": CPU}
    best_images, best_iteration = sample_run(layout, experiment, **options)
    last_images, last_iteration = sample_run(
        layout, _with(experiment, checkpoint="last"), **options
    )
    assert (best_iteration, last_iteration) == (8, 12)
    assert not torch.equal(best_images, last_images)
    _fake_inception(monkeypatch)
    fid = dataclasses.replace(experiment.fid, num_samples=4, seed_sets=1, batch_size=4)
    scored = eval_fid.evaluate_fid(
        dataclasses.replace(experiment, fid=fid), run_dir=layout.root, temperature=1.0, device=CPU
    )
    assert (scored.checkpoint, scored.checkpoint_iteration) == ("best", 8)


def test_best_survives_a_resume_and_a_worse_validation_does_not_replace_it(
    experiment: Experiment, judge: _Judge, tmp_path: Path
) -> None:
    layout = RunLayout(tmp_path / "run")
    judge.values = iter([5.0, _Killed()])  # killed while validating iteration 8
    with pytest.raises(_Killed):
        train(experiment, run_dir=layout.root, device=CPU)
    assert _state(layout, "last")["iteration"] == 4  # saved with best, so a resume starts there

    judge.values, judge.iterations = iter([6.0, 7.0]), []
    summary = train(experiment, run_dir=layout.root, device=CPU)
    assert judge.iterations == [8, 12]
    assert (summary.best_iteration, summary.best_validation_bpd) == (4, 5.0)
    assert _state(layout, "best")["iteration"] == 4
    assert (_state(layout, "last")["best_iteration"], _state(layout, "last")["iteration"]) == (
        4,
        12,
    )


def test_held_out_images_leave_the_epochs_and_are_the_validation_images(
    experiment: Experiment, judge: _Judge, tmp_path: Path
) -> None:
    data = dataclasses.replace(experiment.data, held_out_images=32)
    validation = dataclasses.replace(experiment.training.validation, images="held_out")
    training = dataclasses.replace(experiment.training, validation=validation, max_iterations=6)
    held_out = dataclasses.replace(experiment, data=data, training=training)
    judge.values = iter([2.0, 1.0])
    layout = RunLayout(tmp_path / "run")
    summary = train(held_out, run_dir=layout.root, device=CPU)
    # 96 images left: 3 iterations an epoch (4 with all 128), so validations at 3 and 6.
    assert judge.iterations == [3, 6] and summary.epochs == 2.0
    with layout.train_metrics.open() as file:
        epochs = [row["epoch"] for row in csv.DictReader(file, delimiter="\t")]
    assert epochs == ["0", "0", "1", "1", "1", "2"]
    expected = load_experiment_data(experiment.data).train[-32:]
    assert all(torch.equal(images, expected) for images in judge.images)
    result = evaluate_run(held_out, run_dir=layout.root, device=CPU)
    assert result.checkpoint_iteration == 6
    assert result.judged_by is not None and result.judged_by.images == "held_out"
    assert result.judged_by.held_out_images == 32


def test_validation_time_is_not_training_time(
    experiment: Experiment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def slow(validation: Validation, model: MRCNF) -> float:
        time.sleep(0.5)
        return 1.0

    monkeypatch.setattr(Validation, "bits_per_dim", slow)
    layout = RunLayout(tmp_path / "run")
    began = time.monotonic()
    summary = train(experiment, run_dir=layout.root, device=CPU)
    wall = time.monotonic() - began
    with layout.train_metrics.open() as file:
        steps = sum(float(row["seconds"]) for row in csv.DictReader(file, delimiter="\t"))
    assert summary.train_hours * 3600 == pytest.approx(steps, rel=1e-9)
    assert wall - summary.train_hours * 3600 > 3 * 0.5  # three validations, none counted


def test_a_missing_or_unvalidated_best_is_one_line_naming_the_fix(
    experiment: Experiment, tmp_path: Path
) -> None:
    layout = RunLayout(tmp_path / "run")
    layout.checkpoints.mkdir(parents=True)
    # A run of the previous format: its checkpoints predate validation.
    shutil.copy(FIXTURES / "v1_checkpoint" / "last.pt", layout.checkpoint("last"))
    # The settings it was trained with (the data and model are checked before it is used).
    model = dataclasses.replace(experiment.model, latent_noise="standard")
    data = dataclasses.replace(experiment.data, limit_train=96)
    old = dataclasses.replace(experiment, model=model, data=data)
    with pytest.raises(CheckpointError, match=r"best\.pt does not exist") as missing:
        evaluate_run(old, run_dir=layout.root, device=CPU)
    shutil.copy(layout.checkpoint("last"), layout.checkpoint("best"))
    with pytest.raises(CheckpointError, match="chosen by the training loss") as unvalidated:
        evaluate_run(old, run_dir=layout.root, device=CPU)
    for error in (missing, unvalidated):
        message = str(error.value)
        assert "\n" not in message and "evaluation.checkpoint: last" in message
        assert "repro train cifar10-2res-small" in message


def _batches(experiment: Experiment, coarse_noise: str) -> tuple[TrainingBatches, TrainState]:
    training = dataclasses.replace(experiment.training, coarse_noise=coarse_noise)
    model = dataclasses.replace(experiment.model, resolutions=3)
    experiment = dataclasses.replace(experiment, training=training, model=model)
    pixels = torch.randint(0, 256, (64, 1, 8, 8), dtype=torch.uint8, generator=generator("cpu", 1))
    state = TrainState(iteration=5, epoch=0, position=32)
    return TrainingBatches(pixels, experiment=experiment), state


def test_per_level_batches_dequantise_the_same_pixels_once_per_level(
    experiment: Experiment,
) -> None:
    batches, state = _batches(experiment, "per_level")
    x = batches.batch(state)
    assert x.shape == (32, 3, 1, 8, 8)
    pixels = (256 * x[:, 0]).floor().to(torch.uint8)
    for level in range(3):
        noise = generator("cpu", experiment.training.seed, NOISE_STREAM, state.iteration, level)
        assert torch.equal(x[:, level], dequantize(pixels, generator=noise))
    assert not torch.equal(x[:, 1], x[:, 0]) and not torch.equal(x[:, 2], x[:, 1])


def test_shared_batches_are_one_dequantisation_with_the_iteration_noise(
    experiment: Experiment,
) -> None:
    batches, state = _batches(experiment, "shared")
    x = batches.batch(state)
    assert x.shape == (32, 1, 8, 8)
    pixels = (256 * x).floor().to(torch.uint8)
    noise = generator("cpu", experiment.training.seed, NOISE_STREAM, state.iteration)
    assert torch.equal(x, dequantize(pixels, generator=noise))


def test_a_per_level_run_trains(experiment: Experiment, judge: _Judge, tmp_path: Path) -> None:
    judge.values = iter([1.0])
    training = dataclasses.replace(experiment.training, coarse_noise="per_level", max_iterations=2)
    per_level = dataclasses.replace(experiment, training=training)
    summary = train(per_level, run_dir=tmp_path / "run", device=CPU)
    assert summary.iterations == 2 and np.isfinite(summary.final_bpd)


def test_an_old_checkpoint_without_a_best_iteration_loads_with_no_best_so_far() -> None:
    stored = torch.load(FIXTURES / "v1_checkpoint" / "last.pt", weights_only=True)["state"]
    assert "best_iteration" not in stored and stored["best_bpd"] < 20
    state = TrainState(**stored)
    # Its best_bpd was a training-batch mean, which no validation bpd may be compared with.
    assert (state.best_iteration, state.best_bpd, state.iteration) == (None, float("inf"), 2)
