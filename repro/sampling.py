"""Sampling at a temperature, one seed per image: a sample depends on its seed alone."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.progress import Progress
from torchvision.utils import save_image

from mrcnf import MRCNF, SolverOptions, quantize
from mrcnf.config import PER_SAMPLE
from mrcnf.per_sample import EAGER, PerSampleExecution
from repro.config import Experiment
from repro.distributed import SINGLE_PROCESS, World
from repro.errors import ReproError
from repro.experiment import FID_SAMPLES, TEMPERATURES
from repro.files import atomic_destination
from repro.layout import RunLayout
from repro.models import load_model
from repro.runtime import untuned_convolutions

# On CUDA the per-sample solver replays its steps as CUDA graphs, asking the host whether every
# sample has finished once per four steps: fewer synchronisations, at most three zero-size steps
# too many per solve. [decision] The count is a guess until measured (docs/performance.md).
CUDA_SAMPLING = PerSampleExecution(steps_per_check=4, cuda_graph=True)


class SamplingSettingError(ReproError):
    """A temperature or sample count that cannot give a meaningful result."""


def check_sampling_request(*, temperature: float, num_samples: int) -> None:
    """Reject settings that cannot give a meaningful FID (the ranges params.yaml declares).

    Raises:
        SamplingSettingError: Temperature outside :data:`TEMPERATURES` (NaN included) or a
            sample count outside :data:`FID_SAMPLES`.
    """
    if not TEMPERATURES.contains(temperature):
        raise SamplingSettingError(
            f"temperature must lie {TEMPERATURES.describe()}, got {temperature}"
        )
    if not FID_SAMPLES.contains(num_samples):
        raise SamplingSettingError(
            f"FID needs at least 2 samples (and at most {FID_SAMPLES.high:,}), got {num_samples}"
        )


@torch.no_grad()
def generate_images(
    model: MRCNF,
    *,
    seeds: Sequence[int],
    height: int,
    width: int,
    temperature: float,
    batch_size: int,
    device: torch.device,
    console: Console | None = None,
    world: World = SINGLE_PROCESS,
    execution: PerSampleExecution | None = None,
) -> torch.Tensor:
    """Decode one image per seed with the evaluation tolerances, each sample on its own steps.

    Image i depends on ``seeds[i]`` only, not on ``batch_size``, on the other seeds, on how many
    processes share the work (each decodes its :meth:`World.shard` of the seeds), or on
    ``execution``. cuDNN runs untuned (:func:`~repro.runtime.untuned_convolutions`) meanwhile.

    Args:
        execution: How the solver runs its steps; ``None``: :data:`CUDA_SAMPLING` on CUDA, one
            step at a time elsewhere.

    Returns:
        uint8 N×C×H×W images on the CPU, all of them on every process.
    """
    solve = model.config.eval_solver
    solver = SolverOptions(method=PER_SAMPLE, atol=solve.atol, rtol=solve.rtol)
    if execution is None:
        execution = CUDA_SAMPLING if device.type == "cuda" else EAGER
    console = console if console and world.is_main else Console(quiet=True)
    mine = world.shard(list(seeds))
    images = []
    with untuned_convolutions(), Progress(console=console, disable=console.quiet) as progress:
        task = progress.add_task(f"sample T={temperature}", total=len(mine))
        for start in range(0, len(mine), batch_size):
            chunk = mine[start : start + batch_size]
            latents = model.prior_latents(
                chunk, height=height, width=width, temperature=temperature, device=device
            )
            decoded = model.sample(latents, solver=solver, execution=execution)
            images.append(quantize(decoded).cpu())
            progress.advance(task, len(chunk))
    channels = model.config.channels
    local = (
        torch.cat(images) if images else torch.empty(0, channels, height, width, dtype=torch.uint8)
    )
    return world.gather_shards(local)


def sample_run(
    layout: RunLayout,
    experiment: Experiment,
    *,
    seeds: Sequence[int],
    temperature: float,
    batch_size: int,
    device: torch.device,
    console: Console | None = None,
    world: World = SINGLE_PROCESS,
) -> tuple[torch.Tensor, int]:
    """:func:`generate_images` from a run's ``evaluation.checkpoint``, at its images' size.

    Returns:
        The images, and the training iteration of the checkpoint that drew them.

    Raises:
        CheckpointError: No usable checkpoint of that name in the run.
    """
    trained = load_model(layout, experiment, device=device)
    _, height, width = trained.image_shape
    images = generate_images(
        trained.model,
        seeds=seeds,
        height=height,
        width=width,
        temperature=temperature,
        batch_size=batch_size,
        device=device,
        console=console,
        world=world,
    )
    return images, trained.iteration


def save_samples(images: torch.Tensor, *, seeds: Sequence[int], stem: Path) -> None:
    """Write ``<stem>.npz`` (images and seeds) and ``<stem>.png``, a grid of the first 64, each
    atomically: an interrupted or failed write leaves the previous file whole.

    Raises:
        WriteError: A file cannot be written (no space, no permission, a folder in the way).
    """
    # Not with_suffix: stems such as "T0.70" contain a dot.
    with atomic_destination(Path(f"{stem}.npz")) as temporary, temporary.open("wb") as stream:
        np.savez_compressed(stream, images=images.numpy(), seeds=np.asarray(seeds))
    with atomic_destination(Path(f"{stem}.png")) as temporary:
        save_image(images[:64].float() / 255, temporary, format="png", nrow=8, padding=1)


def samples_held(npz: Path) -> dict[str, int] | None:
    """How many images the samples file ``npz`` holds (None: no readable file there)."""
    try:
        with np.load(npz) as stored:
            return {"num_samples": len(stored["seeds"])}
    except (OSError, ValueError, KeyError):
        return None
