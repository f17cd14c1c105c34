"""Out-of-distribution detection by a trained run (``repro eval ood``): its test images against
every set of ``ood.datasets``, scored by bpd and by S = bpd − L(x) (docs/method.md §8)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from rich.console import Console

from repro.config import Experiment
from repro.datasets import load_dataset
from repro.distributed import SINGLE_PROCESS, World
from repro.errors import ReproError
from repro.eval_bpd import bits_per_dim_per_image
from repro.files import atomic_destination
from repro.layout import RunLayout
from repro.models import TrainedModel, load_model
from repro.ood.compression import code_length_bits_per_dim, codec_versions
from repro.ood.config import OodConfig
from repro.ood.plot import plot_ood_histograms
from repro.ood.scores import IN_DISTRIBUTION, ScoredImages, compare_sets
from repro.ood.sets import OOD_SETS
from repro.outputs import check_writable, claimed, stored_fields
from repro.results import OodResult, write_result
from repro.runtime import provenance

_SCORE_FIELDS = ("bpd", "bpd_per_resolution", "code_length")


class OodSetError(ReproError):
    """An out-of-distribution set whose images do not fit the model (one line naming the fix)."""


def evaluate_ood(
    experiment: Experiment,
    ood: OodConfig,
    *,
    run_dir: Path,
    histogram: Path,
    device: torch.device,
    console: Console | None = None,
    world: World = SINGLE_PROCESS,
    overwrite: bool = False,
) -> OodResult | None:
    """Score a run's ``evaluation.checkpoint`` on its test images and every out-of-distribution
    set; write ``ood.json``, every image's scores (``ood_scores.npz``) and the histograms.

    Every set is loaded, and every destination checked, before anything is computed. The
    processes of ``world`` share the bpd passes; rank 0 compresses, compares and writes, holding
    the result's lock.

    Args:
        experiment: The resolved configuration (its data section names the test split).
        ood: The profile's ``ood`` section.
        run_dir: The run folder.
        histogram: Where the histograms go (``ProfileLayout.ood_histogram``).
        device: Where to evaluate.
        console: Where to show progress.
        world: The processes sharing the images.
        overwrite: Replace an existing result of another checkpoint or of more images.

    Returns:
        The result (None off rank 0).

    Raises:
        CheckpointError: The run has no usable checkpoint of that name.
        DatasetNotFoundError: A set's dataset is missing.
        OodSetError: A set's images do not have the model's channels.
        LockedError: Another process is writing the same result.
        OutputError: An output cannot be written, or would replace a result computed from more.
    """
    layout = RunLayout(run_dir)
    trained = load_model(layout, experiment, device=device)
    images = load_sets(experiment, ood)
    extent = {"checkpoint": trained.checkpoint, "num_images": len(images[IN_DISTRIBUTION])}
    with claimed(
        layout.ood,
        held=lambda path: stored_fields(path, *extent),
        new=extent,
        overwrite=overwrite,
        enabled=world.is_main,
    ):
        if world.is_main:
            check_writable(layout.ood_scores)
            check_writable(histogram)
        scored = _score(trained, images, ood, device=device, console=console, world=world)
        if scored is None:
            return None
        result = _result(experiment, ood, trained, scored, device=device)
        save_scores(layout.ood_scores, scored)
        plot_ood_histograms(scored, result, out=histogram)
        write_result(layout.ood, result)
    return result


def load_sets(experiment: Experiment, ood: OodConfig) -> dict[str, torch.Tensor]:
    """The in-distribution test images, then every set of ``ood.datasets``, at the experiment's
    image size.

    Args:
        experiment: The resolved configuration (its data section names the test split).
        ood: The profile's ``ood`` section (the sets, their image count and seed).

    Returns:
        uint8 N×C×H×W images by set name, the test split's under :data:`IN_DISTRIBUTION` first.

    Raises:
        DatasetNotFoundError: A dataset is missing.
        OodSetError: A set's images do not have the in-distribution images' shape.
    """
    data = experiment.data
    limits = [n for n in (data.limit_test, ood.num_images) if n is not None]
    limit = min(limits, default=None)
    inside = load_dataset(data.dataset, image_size=data.image_size, limit_train=0, limit_test=limit)
    inside = inside.test
    images = {IN_DISTRIBUTION: inside}
    for name in ood.datasets:
        images[name] = _ood_images(name, inside=inside, limit=ood.num_images, seed=ood.seed)
    return images


def _score(
    trained: TrainedModel,
    images: Mapping[str, torch.Tensor],
    ood: OodConfig,
    *,
    device: torch.device,
    console: Console | None,
    world: World,
) -> dict[str, ScoredImages] | None:
    """Every image's scores; the bpd passes on every process, the compression on rank 0 only
    (None elsewhere)."""
    measured = {
        name: bits_per_dim_per_image(
            trained.model,
            pixels,
            dequantization=ood.dequantization,
            batch_size=ood.batch_size,
            seed=ood.seed,
            device=device,
            console=console,
            world=world,
        )
        for name, pixels in images.items()
    }
    if not world.is_main:
        return None
    effort = ood.compressor.effort
    return {
        name: ScoredImages(
            bpd=bpd.bpd.numpy(),
            bpd_per_resolution=bpd.per_resolution.numpy(),
            code_length=code_length_bits_per_dim(images[name], effort=effort).numpy(),
        )
        for name, bpd in measured.items()
    }


def _ood_images(name: str, *, inside: torch.Tensor, limit: int | None, seed: int) -> torch.Tensor:
    spec = OOD_SETS[name]
    images = inside
    if spec.dataset is not None:
        side = inside.shape[-1]
        images = load_dataset(spec.dataset, image_size=side, limit_train=0, limit_test=limit).test
    if images.shape[1:] != inside.shape[1:]:
        shape, wanted = ("×".join(map(str, s)) for s in (images.shape[1:], inside.shape[1:]))
        raise OodSetError(
            f"out-of-distribution set {name!r} has {shape} images, the model takes {wanted}: "
            "name sets of the model's channels in params.yaml's ood.datasets"
        )
    if spec.transform is not None:
        images = torch.from_numpy(spec.transform(images.numpy(), np.random.default_rng(seed)))
    return images


def _result(
    experiment: Experiment,
    ood: OodConfig,
    trained: TrainedModel,
    scored: Mapping[str, ScoredImages],
    *,
    device: torch.device,
) -> OodResult:
    inside = scored[IN_DISTRIBUTION]
    hashed = experiment.params_hash()
    return OodResult(
        experiment=experiment.id,
        profile=experiment.profile,
        dataset=experiment.data.dataset,
        num_images=len(inside.bpd),
        bpd=float(inside.bpd.mean()),
        code_length=float(inside.code_length.mean()),
        bpd_per_resolution=inside.bpd_per_resolution.mean(0).tolist(),
        sets=[compare_sets(name, inside=inside, outside=scored[name]) for name in ood.datasets],
        codec=codec_versions(),
        checkpoint=trained.checkpoint,
        checkpoint_iteration=trained.iteration,
        provenance=provenance(profile=experiment.profile, params_hash=hashed, device=device),
        settings={
            **experiment.sections("data", "solver", "evaluation"),
            "ood": dataclasses.asdict(ood),
        },
    )


def save_scores(path: Path, scored: Mapping[str, ScoredImages]) -> None:
    """Write every set's per-image scores to ``path`` atomically, as ``<set>/<field>`` arrays
    (``in_distribution/bpd``, ``svhn/code_length``, ...: the fields of :class:`ScoredImages`).

    Args:
        path: The ``.npz`` file to write.
        scored: Every set's scores by name.

    Raises:
        WriteError: The file cannot be written (any previous file is unchanged).
    """
    arrays = {
        f"{name}/{field}": getattr(scores, field)
        for name, scores in scored.items()
        for field in _SCORE_FIELDS
    }
    with atomic_destination(path) as temporary, temporary.open("wb") as stream:
        np.savez_compressed(stream, **arrays)
