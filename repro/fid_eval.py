"""FID and KID of an experiment's samples against its training split (Table 7)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from repro.checkpoint import load_model
from repro.config import Experiment
from repro.datasets import load_dataset
from repro.fid import (
    ensure_inception_weights,
    extract_features,
    feature_statistics,
    fid_from_statistics,
    kid,
    reference_statistics,
)
from repro.fid.weights import EXTRACTOR_NAME
from repro.runtime import provenance, write_json
from repro.sampling import check_sampling_request, generate_images, save_samples
from repro.tables.results import fid_file


def evaluate_fid(
    experiment: Experiment,
    *,
    run_dir: Path,
    temperature: float,
    device: torch.device,
    num_samples: int | None = None,
    console: Console | None = None,
) -> dict[str, Any]:
    """Sample a trained run at one temperature and compare with the training split.

    Args:
        experiment: The resolved configuration (its ``fid`` section sets count, batch and seed).
        run_dir: The run folder holding the checkpoint; results go to ``run_dir/fid/``.
        temperature: Sampling temperature T in (0, 2].
        device: Where to sample and extract features.
        num_samples: Overrides ``fid.num_samples``.
        console: Where to show progress.

    Returns:
        The result, also written to ``run_dir/fid/T<temperature>.json``.

    Raises:
        ValueError: Bad temperature or sample count.
        CheckpointError: No usable checkpoint.
        InceptionWeightsError: Missing or mismatched weights (run ``repro assets inception``).
    """
    settings = experiment.fid
    count = num_samples or settings.num_samples
    check_sampling_request(temperature=temperature, num_samples=count)
    weights = ensure_inception_weights()
    model, (_, height, width) = load_model(run_dir, experiment, device=device)
    data = experiment.data
    # The reference is the training split, capped where the profile asks for fewer images.
    limits = [n for n in (settings.reference_images, data.limit_train) if n is not None]
    train = load_dataset(
        data.dataset,
        image_size=data.image_size,
        limit_train=min(limits, default=None),
        limit_test=data.limit_test,
    ).train
    reference = reference_statistics(
        train, dataset=data.dataset, split="train", weights=weights, device=device
    )
    seeds = list(range(settings.seed, settings.seed + count))
    images = generate_images(
        model,
        seeds=seeds,
        height=height,
        width=width,
        temperature=temperature,
        batch_size=settings.batch_size,
        device=device,
        console=console,
    )
    result_path = run_dir / fid_file(temperature)
    save_samples(images, seeds=seeds, stem=result_path.with_name(f"{result_path.stem}_samples"))
    features = extract_features(images, weights=weights, device=device)
    kid_mean, kid_std = kid(features, reference.features)
    result = {
        "experiment": experiment.id,
        "profile": experiment.profile,
        "temperature": temperature,
        "fid": fid_from_statistics(*feature_statistics(features), reference.mu, reference.sigma),
        "kid_mean": kid_mean,
        "kid_std": kid_std,
        "num_samples": count,
        "seeds": [seeds[0], seeds[-1] + 1],
        "reference": {"dataset": data.dataset, "split": "train", "count": reference.count},
        "extractor": {
            "name": f"torch-fidelity {EXTRACTOR_NAME}",
            "weights_sha256": weights.sha256,
            "weights_origin": weights.origin,
        },
        "provenance": provenance(
            profile=experiment.profile, params_hash=experiment.params_hash(), device=device
        ),
    }
    write_json(result_path, result)
    return result
