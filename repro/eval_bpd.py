"""Bits per dimension of a trained run on its test split (``repro eval bpd``)."""

from __future__ import annotations

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

    Batches are shared out between processes (:meth:`World.shard`) and their sums added up, so
    the result does not depend on the number of processes.

    Args:
        model: The model, evaluated with its evaluation solver.
        images: uint8 N×C×H×W test images.
        batch_size: Images per batch.
        seed: Seed of the dequantisation noise and Hutchinson probes (batch b uses (seed, b)).
        device: Where to evaluate.
        console: Where to show progress (None: quiet).
        world: The processes sharing the work.

    Returns:
        ``bpd``, ``bpd_bin_centre``, ``bpd_per_resolution`` (finest first; with 8 added to their
        sum they give ``bpd``), ``num_images``, ``nfe_mean`` (per density evaluation of a batch)
        and ``images_per_second``.
    """
    model.eval()
    console = console if console and world.is_main else Console(quiet=True)
    # bpd, bin-centre bpd, then one bpd contribution per resolution; summed over images.
    sums = torch.zeros(2 + model.config.resolutions, dtype=torch.float64)
    evaluations, seconds = 0, 0.0
    batches = list(enumerate(range(0, len(images), batch_size)))
    with Progress(console=console, disable=console.quiet) as progress:
        task = progress.add_task("eval bpd", total=len(images))
        for index, start in world.shard(batches):
            pixels = images[start : start + batch_size]
            noisy = dequantize(pixels, generator=generator("cpu", seed, NOISE_STREAM, index))
            centred = dequantize(pixels, bin_centre=True)
            began = time.perf_counter()
            model.reset_function_evaluations()
            for slot, x in enumerate((noisy, centred)):
                probes = generator(device, seed, PROBE_STREAM, index)
                density = model.density(x.to(device), generator=probes)
                sums[slot] += density.bits_per_dim().double().sum().item()
                if slot == 0:
                    sums[2:] += torch.stack(density.bits_per_dim_terms()).double().sum(1).cpu()
            evaluations += model.function_evaluations
            seconds += time.perf_counter() - began
            progress.advance(task, len(pixels))
    totals = world.sum(torch.cat([sums, torch.tensor([evaluations], dtype=torch.float64)]))
    count, elapsed = len(images), world.maximum(seconds)
    return {
        "bpd": totals[0].item() / count,
        "bpd_bin_centre": totals[1].item() / count,
        "bpd_per_resolution": (totals[2:-1] / count).tolist(),
        "num_images": count,
        "nfe_mean": totals[-1].item() / (2 * len(batches)),
        "images_per_second": 2 * count / elapsed,
        "processes": world.size,
    }


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
