"""Bits per dimension on a test set (METHOD §2)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import Progress

from mrcnf import MRCNF, dequantize
from repro.checkpoint import load_model
from repro.config import Experiment
from repro.datasets import load_dataset
from repro.runtime import generator, provenance, write_json

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
) -> dict[str, Any]:
    """Average bits per dimension over images, with uniform and with bin-centre dequantisation.

    Args:
        model: The model, evaluated with its evaluation solver.
        images: uint8 N×C×H×W test images.
        batch_size: Images per batch.
        seed: Seed of the dequantisation noise and Hutchinson probes (batch b uses (seed, b)).
        device: Where to evaluate.
        console: Where to show progress (None: quiet).

    Returns:
        ``bpd``, ``bpd_bin_centre``, ``bpd_per_resolution`` (finest first; with 8 added to their
        sum they give ``bpd``), ``num_images``, ``nfe_mean`` (per density evaluation of a batch)
        and ``images_per_second``.
    """
    model.eval()
    console = console or Console(quiet=True)
    sums = {"bpd": 0.0, "bpd_bin_centre": 0.0}
    per_resolution = torch.zeros(model.config.resolutions, dtype=torch.float64)
    evaluations, seconds = 0, 0.0
    batches = range(0, len(images), batch_size)
    with Progress(console=console, disable=console.quiet) as progress:
        task = progress.add_task("eval bpd", total=len(images))
        for index, start in enumerate(batches):
            pixels = images[start : start + batch_size]
            noisy = dequantize(pixels, generator=generator("cpu", seed, NOISE_STREAM, index))
            centred = dequantize(pixels, bin_centre=True)
            began = time.perf_counter()
            model.reset_function_evaluations()
            for key, x in (("bpd", noisy), ("bpd_bin_centre", centred)):
                probes = generator(device, seed, PROBE_STREAM, index)
                density = model.density(x.to(device), generator=probes)
                sums[key] += density.bits_per_dim().double().sum().item()
                if key == "bpd":
                    terms = torch.stack(density.bits_per_dim_terms()).double()
                    per_resolution += terms.sum(1).cpu()
            evaluations += model.function_evaluations
            seconds += time.perf_counter() - began
            progress.advance(task, len(pixels))
    count = len(images)
    return {
        "bpd": sums["bpd"] / count,
        "bpd_bin_centre": sums["bpd_bin_centre"] / count,
        "bpd_per_resolution": (per_resolution / count).tolist(),
        "num_images": count,
        "nfe_mean": evaluations / (2 * len(batches)),
        "images_per_second": 2 * count / seconds,
    }


def evaluate_run(
    experiment: Experiment,
    *,
    run_dir: Path,
    device: torch.device,
    checkpoint: str = "last",
    console: Console | None = None,
) -> dict[str, Any]:
    """Evaluate a trained run on its test split and write ``run_dir/eval_bpd.json``.

    Raises:
        CheckpointError: If the run has no usable checkpoint.
    """
    model, _ = load_model(run_dir, experiment, which=checkpoint, device=device)
    data = experiment.data
    test = load_dataset(
        data.dataset,
        image_size=data.image_size,
        limit_train=data.limit_train,
        limit_test=data.limit_test,
    ).test
    result = evaluate_bits_per_dim(
        model,
        test,
        batch_size=experiment.evaluation.batch_size,
        seed=experiment.evaluation.seed,
        device=device,
        console=console,
    )
    result = {
        "experiment": experiment.id,
        "profile": experiment.profile,
        "checkpoint": checkpoint,
        **result,
        "provenance": provenance(
            profile=experiment.profile, params_hash=experiment.params_hash(), device=device
        ),
    }
    write_json(run_dir / "eval_bpd.json", result)
    return result
