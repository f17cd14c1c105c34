"""A trained run's bits per dimension of its test images shuffled in k×k patches (``repro eval
shuffled-bpd``): the log-likelihood the paper plots against k beside its FID calibration
(docs/method.md §8).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch
from rich.console import Console

from mrcnf import MRCNF
from repro.config import CalibrationConfig, Experiment
from repro.datasets import load_experiment_data
from repro.distributed import SINGLE_PROCESS, World
from repro.errors import ReproError
from repro.eval_bpd import measure_bits_per_dim
from repro.layout import RunLayout
from repro.models import TrainedModel, load_model
from repro.outputs import claimed, stored_fields
from repro.results import ShuffledBpd, ShuffledBpdResult, write_result
from repro.runtime import provenance
from repro.shuffle import image_seeds, shuffle_patches


class NoPatchSizeError(ReproError):
    """No patch size of the calibration section tiles an experiment's images."""


def evaluate_shuffled_bpd(
    experiment: Experiment,
    calibration: CalibrationConfig,
    *,
    run_dir: Path,
    device: torch.device,
    console: Console | None = None,
    world: World = SINGLE_PROCESS,
    overwrite: bool = False,
) -> ShuffledBpdResult:
    """The bpd of a run's ``evaluation.checkpoint`` on its test images shuffled in k×k patches,
    for every k of ``calibration.patches`` that divides the images' side, written to
    ``run_dir/shuffled_bpd.json`` (rank 0, holding the file's lock).

    Image i is shuffled with the permutation of ``calibration.seed`` + i, as the calibration's
    test images are; each bpd is :func:`repro.eval_bpd.measure_bits_per_dim` with uniform
    dequantisation and the evaluation's seed and batch, so the unshuffled entry (k = the image
    side) is ``repro eval bpd``'s ``bpd``.

    Args:
        experiment: The resolved configuration.
        calibration: The profile's ``calibration`` section (its patch sizes and seed).
        run_dir: The run folder.
        device: Where to evaluate.
        console: Where to show progress.
        world: The processes sharing the test images.
        overwrite: Replace an existing result of another checkpoint or of more images.

    Raises:
        CheckpointError: If the run has no usable checkpoint of that name.
        NoPatchSizeError: No patch size divides the experiment's image side.
        LockedError: Another process is writing the same result.
        OutputError: The result cannot be written, or would replace one computed from more.
    """
    layout = RunLayout(run_dir)
    trained = load_model(layout, experiment, device=device)
    test = load_experiment_data(experiment.data).test
    height, width = test.shape[-2:]
    patches = [k for k in calibration.patches if height % k == 0 and width % k == 0]
    if not patches:
        raise NoPatchSizeError(
            f"no size of calibration.patches {calibration.patches} divides {experiment.id}'s "
            f"{height}×{width} images: add a divisor of {height} and {width} in params.yaml"
        )
    extent = {"checkpoint": trained.checkpoint, "num_images": len(test)}
    with claimed(
        layout.shuffled_bpd,
        held=lambda path: stored_fields(path, *extent),
        new=extent,
        overwrite=overwrite,
        enabled=world.is_main,
    ):
        seeds = image_seeds(calibration.seed, len(test))
        entries = [
            _shuffled_bpd(trained.model, shuffle_patches(test, patch=k, seeds=seeds), patch=k,
                          experiment=experiment, device=device, console=console, world=world)
            for k in patches
        ]  # fmt: skip
        result = _result(
            experiment, calibration, trained, num_images=len(test), entries=entries, device=device
        )
        if world.is_main:
            write_result(layout.shuffled_bpd, result)
    return result


def _result(
    experiment: Experiment,
    calibration: CalibrationConfig,
    trained: TrainedModel,
    *,
    num_images: int,
    entries: list[ShuffledBpd],
    device: torch.device,
) -> ShuffledBpdResult:
    """The result of every patch size's bpd, with the settings and checkpoint behind it."""
    settings = experiment.sections("data", "solver", "evaluation")
    return ShuffledBpdResult(
        experiment=experiment.id,
        profile=experiment.profile,
        num_images=num_images,
        seed=calibration.seed,
        patches=entries,
        checkpoint=trained.checkpoint,
        checkpoint_iteration=trained.iteration,
        provenance=provenance(
            profile=experiment.profile, params_hash=experiment.params_hash(), device=device
        ),
        settings={**settings, "calibration": asdict(calibration)},
    )


def _shuffled_bpd(
    model: MRCNF,
    images: torch.Tensor,
    *,
    patch: int,
    experiment: Experiment,
    device: torch.device,
    console: Console | None,
    world: World,
) -> ShuffledBpd:
    """The bpd of one patch size's shuffled images, as ``repro eval bpd`` measures its ``bpd``."""
    measured = measure_bits_per_dim(
        model, images, dequantization="uniform", batch_size=experiment.evaluation.batch_size,
        seed=experiment.evaluation.seed, device=device, console=console, world=world,
    )  # fmt: skip
    return ShuffledBpd(
        patch=patch,
        bpd=measured.bpd,
        bpd_standard_error=measured.standard_error,
        bpd_per_resolution=measured.per_resolution,
    )
