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


@dataclasses.dataclass(frozen=True)
class PerImageBpd:
    """Each image's bits per dimension under one dequantisation.

    Attributes:
        bpd: float64 N, image i's bpd.
        per_resolution: float64 N×S, image i's level terms, finest first (with 8 added, a row
            sums to its bpd).
        nfe_mean: Velocity evaluations per density evaluation of a batch.
        seconds: Wall time of the pass (the slowest process's).
    """

    bpd: torch.Tensor
    per_resolution: torch.Tensor
    nfe_mean: float
    seconds: float


@torch.no_grad()
def bits_per_dim_per_image(
    model: MRCNF,
    images: torch.Tensor,
    *,
    dequantization: Dequantization,
    batch_size: int,
    seed: int,
    device: torch.device,
    console: Console | None = None,
    world: World = SINGLE_PROCESS,
) -> PerImageBpd:
    """Each image's bits per dimension under one dequantisation, with the evaluation solver.

    Batches are shared out between processes (:meth:`World.shard`); every image's values are
    computed by one process and summed over all, so every process gets every image's values and
    they do not depend on the number of processes. Each image's uniform noise is its own
    (:func:`dequantize_images`), but the Hutchinson probes (drawn per batch b from (seed, b), the
    same in every pass) and an adaptive solver's steps (shared by a batch) depend on the batch
    size.

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
        Every image's bpd and level terms, the NFE and the time.
    """
    console = console if console and world.is_main else Console(quiet=True)
    # Column 0: the bpd; then each level's term.
    values = torch.zeros(len(images), 1 + model.config.resolutions, dtype=torch.float64)
    evaluations, seconds = torch.zeros((), dtype=torch.float64), 0.0
    batches = list(enumerate(range(0, len(images), batch_size)))
    with _evaluation_mode(model), Progress(console=console, disable=console.quiet) as progress:
        ending = ", exact end" if model.config.eval_solver.exact_end else ""
        task = progress.add_task(f"bpd ({dequantization}{ending})", total=len(images))
        for index, start in world.shard(batches):
            pixels = images[start : start + batch_size]
            began = time.perf_counter()
            x = _dequantized(pixels, dequantization, seed=seed, first=start)
            values[start : start + len(pixels)], count = _batch_values(
                model, x, index=index, seed=seed, device=device
            )
            evaluations += count
            seconds += time.perf_counter() - began
            progress.advance(task, len(pixels))
    values = world.sum(values)
    return PerImageBpd(
        bpd=values[:, 0],
        per_resolution=values[:, 1:],
        nfe_mean=world.sum(evaluations).item() / len(batches),
        seconds=world.maximum(seconds),
    )


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
    """Mean bits per dimension of images under one dequantisation, with the evaluation solver:
    :func:`bits_per_dim_per_image`, averaged over the images (not over batches).

    Args:
        model: The model, evaluated in evaluation mode in its own floating-point type.
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
    measured = bits_per_dim_per_image(
        model, images, dequantization=dequantization, batch_size=batch_size, seed=seed,
        device=device, console=console, world=world,
    )  # fmt: skip
    count = len(images)
    error = None
    if count >= 2:
        error = math.sqrt(measured.bpd.var(correction=1).item() / count)
    return BpdMeasurement(
        bpd=measured.bpd.mean().item(),
        standard_error=error,
        per_resolution=measured.per_resolution.mean(0).tolist(),
        nfe_mean=measured.nfe_mean,
        seconds=measured.seconds,
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


def _batch_values(
    model: MRCNF, x: torch.Tensor, *, index: int, seed: int, device: torch.device
) -> tuple[torch.Tensor, int]:
    """One batch's values per image (bpd, then each level's term; float64, on the CPU) and its
    velocity evaluations."""
    dtype = next(model.parameters()).dtype
    # Batch b's probes are the same in every pass, so that passes differ by their inputs alone.
    probes = generator(device, seed, PROBE_STREAM, index)
    model.reset_function_evaluations()
    density = model.density(x.to(device, dtype), generator=probes)
    terms = torch.stack(density.bits_per_dim_terms(), dim=1)
    values = torch.cat([density.bits_per_dim()[:, None], terms], dim=1)
    return values.double().cpu(), model.function_evaluations


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
