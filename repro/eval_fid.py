"""FID and KID of a trained run's samples against its training split (``repro eval fid``)."""

from __future__ import annotations

from pathlib import Path

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
) -> FidResult | None:
    """Sample a trained run at one temperature and compare with the training split.

    The processes of ``world`` share the sampling; rank 0 computes the metrics and writes them.

    Args:
        experiment: The resolved configuration (its ``fid`` section sets count, batch and seed).
        run_dir: The run folder holding the checkpoint; results go to ``run_dir/fid/``.
        temperature: Sampling temperature T in (0, 2].
        device: Where to sample and extract features.
        num_samples: Overrides ``fid.num_samples``.
        console: Where to show progress.
        world: The processes sharing the sampling.

    Returns:
        The result, also written to ``run_dir/fid/T<temperature>.json`` (None off rank 0).

    Raises:
        SamplingSettingError: Bad temperature or sample count.
        CheckpointError: No usable checkpoint.
        InceptionWeightsError: Missing or mismatched weights (run ``repro assets inception``).
    """
    settings, layout = experiment.fid, RunLayout(run_dir)
    count = num_samples or settings.num_samples
    check_sampling_request(temperature=temperature, num_samples=count)
    # Rank 0 fetches weights and reference first, so a missing file fails before any sampling.
    weights, reference = _reference(experiment, device=device) if world.is_main else (None, None)
    seeds = list(range(settings.seed, settings.seed + count))
    images = sample_run(
        layout,
        experiment,
        seeds=seeds,
        temperature=temperature,
        batch_size=settings.batch_size,
        device=device,
        console=console,
        world=world,
    )
    if not world.is_main:
        return None
    save_samples(images, seeds=seeds, stem=layout.fid_samples(temperature))
    features = extract_features(images, weights=weights, device=device)
    kid_mean, kid_std = kid(features, reference.features)
    hashed = experiment.params_hash()
    result = FidResult(
        experiment=experiment.id,
        profile=experiment.profile,
        temperature=temperature,
        fid=fid_from_statistics(*feature_statistics(features), reference.mu, reference.sigma),
        kid_mean=kid_mean,
        kid_std=kid_std,
        num_samples=count,
        seeds=[seeds[0], seeds[-1] + 1],
        reference=FidReference(
            dataset=experiment.data.dataset, split="train", count=reference.count
        ),
        extractor=FidExtractor(
            name=f"torch-fidelity {EXTRACTOR_NAME}",
            weights_sha256=weights.sha256,
            weights_origin=weights.origin,
        ),
        provenance=provenance(profile=experiment.profile, params_hash=hashed, device=device),
    )
    write_result(layout.fid(temperature), result)
    return result


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
