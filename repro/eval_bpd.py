"""Bits per dimension of a trained run on its test split (``repro eval bpd``), and of any images
under one dequantisation (what training's validation judges the ``best`` checkpoint by)."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import torch
from rich.console import Console
from rich.progress import Progress

from mrcnf import MRCNF, SolverOptions, dequantize
from repro.config import Experiment
from repro.datasets import load_experiment_data
from repro.distributed import SINGLE_PROCESS, World
from repro.layout import RunLayout
from repro.models import load_model
from repro.outputs import claimed, stored_fields
from repro.results import BpdResult, write_result
from repro.runtime import generator, provenance

NOISE_STREAM, PROBE_STREAM = 0, 1
Dequantization = Literal["uniform", "bin_centre"]
# Slots of a pass's summed vector: bpd, its square, velocity evaluations, then each level's term.
_BPD, _SQUARES, _EVALUATIONS, _LEVELS = range(4)


@dataclasses.dataclass(frozen=True)
class BpdMeasurement:
    """Bits per dimension of images under one dequantisation.

    Attributes:
        bpd: The mean over the images.
        standard_error: sqrt(sample variance / N) of the mean (None for one image).
        per_resolution: Each level's mean contribution, finest first (with 8 added they sum to
            ``bpd``).
        nfe_mean: Velocity evaluations per density evaluation of a batch.
        seconds: Wall time of the pass (the slowest process's).
    """

    bpd: float
    standard_error: float | None
    per_resolution: list[float]
    nfe_mean: float
    seconds: float


@torch.no_grad()
def measure_bits_per_dim(
    model: MRCNF,
    images: torch.Tensor,
    *,
    dequantization: Dequantization,
    batch_size: int,
    seed: int,
    device: torch.device,
    console: Console | None = None,
    world: World = SINGLE_PROCESS,
) -> BpdMeasurement:
    """Bits per dimension of images under one dequantisation, with the evaluation solver.

    Batches are shared out between processes (:meth:`World.shard`) and their sums and sums of
    squares added up, so the result does not depend on the number of processes. Each image's
    uniform noise is its own (:func:`dequantize_images`), but the Hutchinson probes (drawn per
    batch b from (seed, b), the same in every pass) and an adaptive solver's steps (shared by a
    batch) depend on the batch size.

    Args:
        model: The model, evaluated in evaluation mode (its mode is restored afterwards) in its
            own floating-point type.
        images: uint8 N×C×H×W images.
        dequantization: ``uniform`` (each image's own noise) or ``bin_centre`` (u = 0.5).
        batch_size: Images per batch.
        seed: Seed of the dequantisation noise and Hutchinson probes.
        device: Where to evaluate.
        console: Where to show progress (None: quiet).
        world: The processes sharing the work.

    Returns:
        The mean over the images, its standard error, the per-level terms, NFE and time.
    """
    console = console if console and world.is_main else Console(quiet=True)
    sums = torch.zeros(_LEVELS + model.config.resolutions, dtype=torch.float64)
    seconds = 0.0
    batches = list(enumerate(range(0, len(images), batch_size)))
    with _evaluation_mode(model), Progress(console=console, disable=console.quiet) as progress:
        ending = ", exact end" if model.config.eval_solver.exact_end else ""
        task = progress.add_task(f"bpd ({dequantization}{ending})", total=len(images))
        for index, start in world.shard(batches):
            pixels = images[start : start + batch_size]
            began = time.perf_counter()
            x = _dequantized(pixels, dequantization, seed=seed, first=start)
            sums += _batch_sums(model, x, index=index, seed=seed, device=device)
            seconds += time.perf_counter() - began
            progress.advance(task, len(pixels))
    totals, count = world.sum(sums), len(images)
    return BpdMeasurement(
        bpd=totals[_BPD].item() / count,
        standard_error=_standard_error(totals, count),
        per_resolution=(totals[_LEVELS:] / count).tolist(),
        nfe_mean=totals[_EVALUATIONS].item() / len(batches),
        seconds=world.maximum(seconds),
    )


def evaluate_bits_per_dim(
    model: MRCNF,
    images: torch.Tensor,
    *,
    batch_size: int,
    seed: int,
    device: torch.device,
    console: Console | None = None,
    world: World = SINGLE_PROCESS,
) -> dict[str, Any]:
    """Average bits per dimension over images: uniform and bin-centre dequantisation with the
    evaluation solver, and uniform once more with the solver's other way of ending at t = 1.

    Every pass is a :func:`measure_bits_per_dim` with the same noise and probes, so their
    differences are the dequantisation's and the solver ending's alone.

    Args:
        model: The model, evaluated with its evaluation solver in its own floating-point type.
        images: uint8 N×C×H×W test images.
        batch_size: Images per batch.
        seed: Seed of the dequantisation noise and Hutchinson probes.
        device: Where to evaluate.
        console: Where to show progress (None: quiet).
        world: The processes sharing the work.

    Returns:
        ``bpd``, ``bpd_bin_centre``, the standard errors of both means (``bpd_standard_error``,
        ``bpd_bin_centre_standard_error``: sqrt(sample variance / N), None for one image),
        ``bpd_per_resolution`` (finest first; with 8 added they sum to ``bpd``), ``num_images``,
        ``nfe_mean`` (per density evaluation of a batch), ``images_per_second``, ``processes``,
        ``exact_end`` (whether the evaluation solver's steps that gave ``bpd`` end exactly at
        t = 1: its setting, or True for a fixed grid), and the uniform bpd with each ending,
        ``bpd_interpolated_end`` and ``bpd_exact_end`` (one of them ``bpd``; a fixed grid has no
        interpolated end: None).
    """
    measure = functools.partial(
        measure_bits_per_dim, model, images, batch_size=batch_size, seed=seed, device=device,
        console=console, world=world,
    )  # fmt: skip
    uniform, centre = measure(dequantization="uniform"), measure(dequantization="bin_centre")
    other_ending = _other_ending(model.config.eval_solver)
    other_bpd = None
    if other_ending is not None:
        with _eval_solver(model, other_ending):
            other_bpd = measure(dequantization="uniform").bpd
    exact_end = other_ending is None or model.config.eval_solver.exact_end
    by_ending = {exact_end: uniform.bpd, not exact_end: other_bpd}
    return {
        "bpd": uniform.bpd,
        "bpd_bin_centre": centre.bpd,
        "bpd_standard_error": uniform.standard_error,
        "bpd_bin_centre_standard_error": centre.standard_error,
        "bpd_per_resolution": uniform.per_resolution,
        "num_images": len(images),
        "nfe_mean": (uniform.nfe_mean + centre.nfe_mean) / 2,
        "images_per_second": 2 * len(images) / (uniform.seconds + centre.seconds),
        "processes": world.size,
        "exact_end": exact_end,
        "bpd_interpolated_end": by_ending[False],
        "bpd_exact_end": by_ending[True],
    }


def dequantize_images(pixels: torch.Tensor, *, seed: int, first: int) -> torch.Tensor:
    """Uniformly dequantised images, image ``first + i`` (of the evaluated set) with its own noise.

    Each image's noise comes from the stream (seed, :data:`NOISE_STREAM`, its index), so an image
    is dequantised the same whatever batch it falls in.
    """
    return torch.cat(
        [
            dequantize(image[None], generator=generator("cpu", seed, NOISE_STREAM, first + i))
            for i, image in enumerate(pixels)
        ]
    )


def _dequantized(
    pixels: torch.Tensor, dequantization: Dequantization, *, seed: int, first: int
) -> torch.Tensor:
    if dequantization == "bin_centre":
        return dequantize(pixels, bin_centre=True)
    return dequantize_images(pixels, seed=seed, first=first)


@contextlib.contextmanager
def _evaluation_mode(model: MRCNF) -> Iterator[None]:
    """The model in evaluation mode (its evaluation solver), then back in the mode it was in."""
    training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(training)


def _other_ending(solver: SolverOptions) -> SolverOptions | None:
    """The solver with the other way of ending at t = 1; None for a fixed grid, whose last step
    ends exactly at t = 1 whatever ``exact_end`` says (and which refuses the setting)."""
    if not solver.adaptive:
        return None
    return dataclasses.replace(solver, exact_end=not solver.exact_end)


@contextlib.contextmanager
def _eval_solver(model: MRCNF, solver: SolverOptions) -> Iterator[None]:
    """The model with another evaluation solver, then with its own again."""
    config = model.config
    model.config = dataclasses.replace(config, eval_solver=solver)
    try:
        yield
    finally:
        model.config = config


def _batch_sums(
    model: MRCNF, x: torch.Tensor, *, index: int, seed: int, device: torch.device
) -> torch.Tensor:
    """One batch's sums, laid out as the slots above (float64, on the CPU)."""
    sums = torch.zeros(_LEVELS + model.config.resolutions, dtype=torch.float64)
    dtype = next(model.parameters()).dtype
    # Batch b's probes are the same in every pass, so that passes differ by their inputs alone.
    probes = generator(device, seed, PROBE_STREAM, index)
    model.reset_function_evaluations()
    density = model.density(x.to(device, dtype), generator=probes)
    values = density.bits_per_dim().double().cpu()
    sums[_BPD], sums[_SQUARES] = values.sum(), values.square().sum()
    sums[_EVALUATIONS] = model.function_evaluations
    sums[_LEVELS:] = torch.stack(density.bits_per_dim_terms()).double().sum(1).cpu()
    return sums


def _standard_error(totals: torch.Tensor, count: int) -> float | None:
    """sqrt(sample variance / N) of N values, from the slots of their sum and sum of squares.

    The variance is a difference of float64 sums: its relative rounding is near
    1e-16 · mean² / variance, far below any digit shown.
    """
    if count < 2:
        return None
    variance = max(totals[_SQUARES].item() - totals[_BPD].item() ** 2 / count, 0.0) / (count - 1)
    return math.sqrt(variance / count)


def evaluate_run(
    experiment: Experiment,
    *,
    run_dir: Path,
    device: torch.device,
    console: Console | None = None,
    world: World = SINGLE_PROCESS,
    overwrite: bool = False,
) -> BpdResult:
    """Evaluate a run's ``evaluation.checkpoint`` on its test split and write its
    ``eval_bpd.json`` (rank 0, holding the file's lock).

    Args:
        experiment: The resolved configuration.
        run_dir: The run folder.
        device: Where to evaluate.
        console: Where to show progress.
        world: The processes sharing the test images.
        overwrite: Replace an existing result of another checkpoint or of more images.

    Raises:
        CheckpointError: If the run has no usable checkpoint of that name.
        LockedError: Another process is writing the same result.
        OutputError: The result cannot be written, or would replace one computed from more.
    """
    layout = RunLayout(run_dir)
    trained = load_model(layout, experiment, device=device)
    test = load_experiment_data(experiment.data).test
    extent = {"checkpoint": trained.checkpoint, "num_images": len(test)}
    with claimed(
        layout.eval_bpd,
        held=lambda path: stored_fields(path, *extent),
        new=extent,
        overwrite=overwrite,
        enabled=world.is_main,
    ):
        measured = evaluate_bits_per_dim(
            trained.model, test, batch_size=experiment.evaluation.batch_size,
            seed=experiment.evaluation.seed, device=device, console=console, world=world,
        )  # fmt: skip
        hashed = experiment.params_hash()
        result = BpdResult(
            experiment=experiment.id,
            profile=experiment.profile,
            checkpoint=trained.checkpoint,
            checkpoint_iteration=trained.iteration,
            judged_by=trained.judged_by,
            **measured,
            provenance=provenance(profile=experiment.profile, params_hash=hashed, device=device),
            settings=experiment.sections("data", "solver", "evaluation"),
        )
        if world.is_main:
            write_result(layout.eval_bpd, result)
    return result
