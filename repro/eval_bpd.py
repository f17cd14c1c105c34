"""Bits per dimension of a trained run on its test split (``repro eval bpd``)."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import Progress

from mrcnf import MRCNF, dequantize
from repro.config import Experiment
from repro.datasets import load_experiment_data
from repro.distributed import SINGLE_PROCESS, World
from repro.layout import RunLayout
from repro.models import load_model
from repro.results import BpdResult, write_result
from repro.runtime import generator, provenance

NOISE_STREAM, PROBE_STREAM = 0, 1
# Slots of the summed vector: bpd, bin-centre bpd, their squares, then each level's contribution.
_BPD, _CENTRE, _BPD_SQUARES, _CENTRE_SQUARES, _LEVELS = range(5)


@torch.no_grad()
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
    """Average bits per dimension over images, with uniform and with bin-centre dequantisation.

    Batches are shared out between processes (:meth:`World.shard`) and their sums and sums of
    squares added up, so the result does not depend on the number of processes. Each image's
    noise is its own (:func:`dequantize_images`), but the Hutchinson probes (drawn per batch b
    from (seed, b)) and an adaptive solver's steps (shared by a batch) depend on the batch size.

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
        ``nfe_mean`` (per density evaluation of a batch), ``images_per_second``, ``processes``.
    """
    model.eval()
    console = console if console and world.is_main else Console(quiet=True)
    sums = torch.zeros(_LEVELS + model.config.resolutions, dtype=torch.float64)
    evaluations, seconds = 0, 0.0
    batches = list(enumerate(range(0, len(images), batch_size)))
    with Progress(console=console, disable=console.quiet) as progress:
        task = progress.add_task("eval bpd", total=len(images))
        for index, start in world.shard(batches):
            pixels = images[start : start + batch_size]
            began = time.perf_counter()
            model.reset_function_evaluations()
            sums += _batch_sums(model, pixels, first=start, index=index, seed=seed, device=device)
            evaluations += model.function_evaluations
            seconds += time.perf_counter() - began
            progress.advance(task, len(pixels))
    totals = world.sum(torch.cat([sums, torch.tensor([evaluations], dtype=torch.float64)]))
    count, elapsed = len(images), world.maximum(seconds)
    return {
        "bpd": totals[_BPD].item() / count,
        "bpd_bin_centre": totals[_CENTRE].item() / count,
        "bpd_standard_error": _standard_error(totals, _BPD, _BPD_SQUARES, count),
        "bpd_bin_centre_standard_error": _standard_error(totals, _CENTRE, _CENTRE_SQUARES, count),
        "bpd_per_resolution": (totals[_LEVELS:-1] / count).tolist(),
        "num_images": count,
        "nfe_mean": totals[-1].item() / (2 * len(batches)),
        "images_per_second": 2 * count / elapsed,
        "processes": world.size,
    }


def dequantize_images(pixels: torch.Tensor, *, seed: int, first: int) -> torch.Tensor:
    """Uniformly dequantised images, image ``first + i`` (of the test split) with its own noise.

    Each image's noise comes from the stream (seed, :data:`NOISE_STREAM`, its index), so an image
    is dequantised the same whatever batch it falls in.
    """
    return torch.cat(
        [
            dequantize(image[None], generator=generator("cpu", seed, NOISE_STREAM, first + i))
            for i, image in enumerate(pixels)
        ]
    )


def _batch_sums(
    model: MRCNF,
    pixels: torch.Tensor,
    *,
    first: int,
    index: int,
    seed: int,
    device: torch.device,
) -> torch.Tensor:
    """One batch's sums, laid out as the slots above (float64, on the CPU)."""
    sums = torch.zeros(_LEVELS + model.config.resolutions, dtype=torch.float64)
    dtype = next(model.parameters()).dtype
    noisy = dequantize_images(pixels, seed=seed, first=first)
    centred = dequantize(pixels, bin_centre=True)
    for mean, squares, x in ((_BPD, _BPD_SQUARES, noisy), (_CENTRE, _CENTRE_SQUARES, centred)):
        # The same probes for both dequantisations, so their difference is not probe noise.
        probes = generator(device, seed, PROBE_STREAM, index)
        density = model.density(x.to(device, dtype), generator=probes)
        values = density.bits_per_dim().double().cpu()
        sums[mean], sums[squares] = values.sum(), values.square().sum()
        if mean == _BPD:
            sums[_LEVELS:] = torch.stack(density.bits_per_dim_terms()).double().sum(1).cpu()
    return sums


def _standard_error(totals: torch.Tensor, total: int, squares: int, count: int) -> float | None:
    """sqrt(sample variance / N) of N values, from the slots of their sum and sum of squares.

    The variance is a difference of float64 sums: its relative rounding is near
    1e-16 · mean² / variance, far below any digit shown.
    """
    if count < 2:
        return None
    variance = max(totals[squares].item() - totals[total].item() ** 2 / count, 0.0) / (count - 1)
    return math.sqrt(variance / count)


def evaluate_run(
    experiment: Experiment,
    *,
    run_dir: Path,
    device: torch.device,
    checkpoint: str = "last",
    console: Console | None = None,
    world: World = SINGLE_PROCESS,
) -> BpdResult:
    """Evaluate a trained run on its test split and write its ``eval_bpd.json`` (rank 0).

    Raises:
        CheckpointError: If the run has no usable checkpoint.
    """
    layout = RunLayout(run_dir)
    model, _ = load_model(layout, experiment, which=checkpoint, device=device)
    test = load_experiment_data(experiment.data).test
    measured = evaluate_bits_per_dim(
        model,
        test,
        batch_size=experiment.evaluation.batch_size,
        seed=experiment.evaluation.seed,
        device=device,
        console=console,
        world=world,
    )
    hashed = experiment.params_hash()
    result = BpdResult(
        experiment=experiment.id,
        profile=experiment.profile,
        checkpoint=checkpoint,
        **measured,
        provenance=provenance(profile=experiment.profile, params_hash=hashed, device=device),
    )
    if world.is_main:
        write_result(layout.eval_bpd, result)
    return result
