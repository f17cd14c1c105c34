"""FID and KID of a trained run's samples against its training split (``repro eval fid``)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from repro.config import Experiment
from repro.datasets import load_experiment_data
from repro.distributed import SINGLE_PROCESS, World
from repro.fid import (
    InceptionWeights,
    ReferenceStatistics,
    ensure_inception_weights,
    extract_features,
    feature_statistics,
    fid_from_statistics,
    kid,
    reference_statistics,
)
from repro.fid.weights import EXTRACTOR_NAME
from repro.layout import RunLayout
from repro.outputs import claimed, stored_fields
from repro.results import FidExtractor, FidReference, FidResult, write_result
from repro.runtime import provenance
from repro.sampling import check_sampling_request, sample_run, save_samples


def evaluate_fid(
    experiment: Experiment,
    *,
    run_dir: Path,
    temperature: float,
    device: torch.device,
    num_samples: int | None = None,
    console: Console | None = None,
    world: World = SINGLE_PROCESS,
    overwrite: bool = False,
) -> FidResult | None:
    """Sample a trained run's ``evaluation.checkpoint`` at one temperature and compare with the
    training split.

    The processes of ``world`` share the sampling; rank 0 computes the metrics and writes them.
    With ``fid.seed_sets`` = k > 1, k sets of the sample count are drawn on disjoint seed ranges:
    the first set gives ``fid``, ``kid_mean`` and ``kid_std`` (and its samples are saved), every
    set's FID goes into ``fid_seed_sets`` and their standard deviation into ``fid_spread``.

    Args:
        experiment: The resolved configuration (its ``fid`` section sets count, sets, batch, seed).
        run_dir: The run folder holding the checkpoint; results go to ``run_dir/fid/``.
        temperature: Sampling temperature T in (0, 2].
        device: Where to sample and extract features.
        num_samples: Overrides ``fid.num_samples`` (the count of every set). Another count, or a
            temperature params.yaml does not list, is written to its own file
            (:meth:`RunLayout.fid`), never over a pinned result.
        console: Where to show progress.
        world: The processes sharing the sampling.
        overwrite: Replace an existing result computed from more samples or seed sets.

    Returns:
        The result, also written to ``run_dir/fid/T<temperature>.json`` (None off rank 0).

    Raises:
        SamplingSettingError: Bad temperature, sample count or number of seed sets.
        CheckpointError: No usable checkpoint.
        InceptionWeightsError: Missing or mismatched weights (run ``repro assets inception``).
        LockedError: Another process is writing the same result.
        OutputError: The result cannot be written, or would replace one computed from more.
    """
    settings, layout = experiment.fid, RunLayout(run_dir)
    count = num_samples or settings.num_samples
    check_sampling_request(temperature=temperature, num_samples=count)
    # Off the pinned protocol, a result has its own file (its count in the name).
    pinned = count == settings.num_samples and temperature in settings.temperatures
    own_count = None if pinned else count
    path = layout.fid(temperature, num_samples=own_count)
    extent = {"num_samples": count, "seed_sets": settings.seed_sets}
    with claimed(path, held=_held_extent, new=extent, overwrite=overwrite, enabled=world.is_main):
        # Rank 0 fetches weights and reference first: a missing file fails before any sampling.
        main = world.is_main
        weights, reference = _reference(experiment, device=device) if main else (None, None)
        drawn = _sample_sets(experiment, layout, count, temperature, device, console, world)
        if not main:
            return None
        stem = layout.fid_samples(temperature, num_samples=own_count)
        save_samples(drawn.sets[0], seeds=drawn.seeds[:count], stem=stem)
        result = _result(
            experiment, temperature, drawn, weights=weights, reference=reference, device=device
        )
        metrics = layout.fid_metrics / path.name if pinned else None
        write_result(path, result, metrics=metrics)
    return result


def _held_extent(path: Path) -> dict[str, int] | None:
    """The sample count and seed sets of the FID result at ``path`` (None: no readable one)."""
    held = stored_fields(path, "num_samples", "fid_seed_sets")
    if held is None:
        return None
    return {"num_samples": held["num_samples"], "seed_sets": len(held["fid_seed_sets"])}


@dataclass(frozen=True)
class SampleSets:
    """Every seed set's samples (set k: the k-th slice of ``seeds``), and the training
    iteration of the checkpoint that drew them."""

    seeds: list[int]
    sets: list[torch.Tensor]
    iteration: int


def _result(
    experiment: Experiment,
    temperature: float,
    drawn: SampleSets,
    *,
    weights: InceptionWeights,
    reference: ReferenceStatistics,
    device: torch.device,
) -> FidResult:
    """The FID result of the first set's samples (and every set's FID)."""
    count = len(drawn.sets[0])
    return FidResult(
        experiment=experiment.id,
        profile=experiment.profile,
        temperature=temperature,
        num_samples=count,
        seeds=[drawn.seeds[0], drawn.seeds[0] + count],
        checkpoint=experiment.evaluation.checkpoint,
        checkpoint_iteration=drawn.iteration,
        settings=experiment.sections("data", "solver", "evaluation", "fid"),
        **_metrics(drawn.sets, weights=weights, reference=reference, device=device),
        **_protocol(experiment, weights=weights, reference=reference, device=device),
    )


def _sample_sets(
    experiment: Experiment,
    layout: RunLayout,
    count: int,
    temperature: float,
    device: torch.device,
    console: Console | None,
    world: World,
) -> SampleSets:
    """Every seed set's samples (set k: ``count`` seeds from ``seed + k·count``)."""
    settings = experiment.fid
    # One call for every set: a sample depends on its seed alone, so set k is the k-th slice.
    seeds = list(range(settings.seed, settings.seed + settings.seed_sets * count))
    images, iteration = sample_run(
        layout,
        experiment,
        seeds=seeds,
        temperature=temperature,
        batch_size=settings.batch_size,
        device=device,
        console=console,
        world=world,
    )
    sets = [images[k * count : (k + 1) * count] for k in range(settings.seed_sets)]
    return SampleSets(seeds, sets, iteration)


def _metrics(
    sets: list[torch.Tensor],
    *,
    weights: InceptionWeights,
    reference: ReferenceStatistics,
    device: torch.device,
) -> dict[str, Any]:
    """FID and KID of the first set, and the FID of every set with their standard deviation."""
    features = extract_features(sets[0], weights=weights, device=device)
    kid_mean, kid_std = kid(features, reference.features)
    fids = [_fid(features, reference)]
    # Each further set's features are dropped once its FID is known (50,000 × 2048 floats each).
    fids += [_fid(extract_features(s, weights=weights, device=device), reference) for s in sets[1:]]
    return {
        "fid": fids[0],
        "kid_mean": kid_mean,
        "kid_std": kid_std,
        "fid_seed_sets": fids,
        "fid_spread": statistics.stdev(fids) if len(fids) >= 2 else None,
    }


def _fid(features: torch.Tensor, reference: ReferenceStatistics) -> float:
    return fid_from_statistics(*feature_statistics(features), reference.mu, reference.sigma)


def _protocol(
    experiment: Experiment,
    *,
    weights: InceptionWeights,
    reference: ReferenceStatistics,
    device: torch.device,
) -> dict[str, Any]:
    """The result's fields saying what the samples were compared with, by what, and where."""
    return {
        "reference": FidReference(
            dataset=experiment.data.dataset, split="train", count=reference.count
        ),
        "extractor": FidExtractor(
            name=f"torch-fidelity {EXTRACTOR_NAME}",
            weights_sha256=weights.sha256,
            weights_origin=weights.origin,
            weights_verified=weights.verified,
        ),
        "provenance": provenance(
            profile=experiment.profile, params_hash=experiment.params_hash(), device=device
        ),
    }


def _reference(
    experiment: Experiment, *, device: torch.device
) -> tuple[InceptionWeights, ReferenceStatistics]:
    """The Inception weights and the (cached) statistics of the training split."""
    weights = ensure_inception_weights()
    data = experiment.data
    # The training split, capped where the profile asks for fewer reference images.
    train = load_experiment_data(data, max_train=experiment.fid.reference_images).train
    reference = reference_statistics(
        train, dataset=data.dataset, split="train", weights=weights, device=device
    )
    return weights, reference
