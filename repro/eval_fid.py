"""FID and KID of a trained run's samples against its training split (``repro eval fid``)."""

from __future__ import annotations

import statistics
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
from repro.results import FidExtractor, FidReference, FidResult, write_result
from repro.runtime import provenance
from repro.sampling import (
    SamplingSettingError,
    check_sampling_request,
    sample_run,
    save_samples,
)


def evaluate_fid(
    experiment: Experiment,
    *,
    run_dir: Path,
    temperature: float,
    device: torch.device,
    num_samples: int | None = None,
    console: Console | None = None,
    world: World = SINGLE_PROCESS,
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
        num_samples: Overrides ``fid.num_samples`` (the count of every set).
        console: Where to show progress.
        world: The processes sharing the sampling.

    Returns:
        The result, also written to ``run_dir/fid/T<temperature>.json`` (None off rank 0).

    Raises:
        SamplingSettingError: Bad temperature, sample count or number of seed sets.
        CheckpointError: No usable checkpoint.
        InceptionWeightsError: Missing or mismatched weights (run ``repro assets inception``).
    """
    settings, layout = experiment.fid, RunLayout(run_dir)
    count = num_samples or settings.num_samples
    check_sampling_request(temperature=temperature, num_samples=count)
    if settings.seed_sets < 1:
        raise SamplingSettingError(f"fid.seed_sets must be at least 1, got {settings.seed_sets}")
    # Rank 0 fetches weights and reference first, so a missing file fails before any sampling.
    weights, reference = _reference(experiment, device=device) if world.is_main else (None, None)
    seeds, sets, iteration = _sample_sets(
        experiment, layout, count, temperature, device, console, world
    )
    if not world.is_main:
        return None
    save_samples(sets[0], seeds=seeds[:count], stem=layout.fid_samples(temperature))
    result = FidResult(
        experiment=experiment.id,
        profile=experiment.profile,
        temperature=temperature,
        num_samples=count,
        seeds=[seeds[0], seeds[0] + count],
        checkpoint=experiment.evaluation.checkpoint,
        checkpoint_iteration=iteration,
        **_metrics(sets, weights=weights, reference=reference, device=device),
        **_protocol(experiment, weights=weights, reference=reference, device=device),
    )
    write_result(layout.fid(temperature), result)
    return result


def _sample_sets(
    experiment: Experiment,
    layout: RunLayout,
    count: int,
    temperature: float,
    device: torch.device,
    console: Console | None,
    world: World,
) -> tuple[list[int], list[torch.Tensor], int]:
    """The seeds, every seed set's samples (set k: ``count`` seeds from ``seed + k·count``), and
    the training iteration of the checkpoint sampled."""
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
    return seeds, sets, iteration


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
