"""The paper's FID calibration (``repro eval calibration``): FID and KID between a dataset's
training split and its test split with pixels shuffled in k×k patches, for every k of
``params.yaml``'s ``calibration`` section; no model is involved (docs/method.md §8).

On CIFAR10 the paper measured 340.42, 299.99, 235.22, 101.36 and 33.06 for k = 1 … 16 and 3.15
for the unshuffled test set: a machine whose FID pipeline and data give these numbers computes
Table 7's FIDs as the paper did.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch
from rich.console import Console

from repro.config import CalibrationConfig
from repro.datasets import load_dataset
from repro.fid import (
    InceptionWeights,
    ReferenceStatistics,
    ensure_inception_weights,
    reference_statistics,
)
from repro.fid_images import distances, extractor_record, settings_hash
from repro.layout import ProfileLayout
from repro.outputs import claimed, stored_fields
from repro.results import CalibrationResult, FidReference, ShuffledFid, write_result
from repro.runtime import provenance
from repro.shuffle import image_seeds, shuffle_patches


def evaluate_calibration(
    settings: CalibrationConfig,
    *,
    profile: str,
    device: torch.device,
    console: Console | None = None,
    overwrite: bool = False,
) -> CalibrationResult:
    """FID and KID of the shuffled test split against the training split, per patch size, written
    to ``runs/<profile>/calibration/fid_shuffled.json`` (and its numbers beside it).

    The training split's statistics are the FID stages' cached reference when the count and
    image size agree (the whole CIFAR10 training split in the ``paper`` profile).

    Args:
        settings: The profile's ``calibration`` section (:meth:`repro.config.Params.calibration`).
        profile: The profile whose results folder receives the result.
        device: Where Inception runs.
        console: Where to report each patch size's FID (None: quiet).
        overwrite: Replace an existing result computed from more images or other data.

    Returns:
        The result, as written.

    Raises:
        DatasetNotFoundError: The dataset is absent and could not be fetched.
        DatasetSettingError: ``image_size`` is not the native side over a power of two.
        InceptionWeightsError: Missing or mismatched weights (run ``repro assets inception``).
        LockedError: Another process is writing the same result.
        OutputError: The result cannot be written, or would replace one computed from more.
    """
    splits = load_dataset(
        settings.dataset,
        image_size=settings.image_size,
        limit_train=settings.reference_images,
        limit_test=settings.test_images,
    )
    test, side = splits.test, splits.test.shape[-1]
    extent = {
        "images": f"{settings.dataset} {side}x{side}",
        "test_images": len(test),
        "reference_images": len(splits.train),
    }
    path = ProfileLayout(profile).calibration
    with claimed(path, held=_held_extent, new=extent, overwrite=overwrite):
        weights = ensure_inception_weights()
        reference = reference_statistics(
            splits.train, dataset=settings.dataset, split="train", weights=weights,
            device=device, batch_size=settings.batch_size,
        )  # fmt: skip
        seeds = image_seeds(settings.seed, len(test))
        entries = [
            _shuffled_fid(test, seeds, patch=k, reference=reference, weights=weights,
                          settings=settings, device=device, console=console)
            for k in settings.patches
        ]  # fmt: skip
        result = _result(
            settings, profile=profile, side=side, test_images=len(test), entries=entries,
            reference=reference, weights=weights, device=device,
        )  # fmt: skip
        write_result(path, result)
    return result


def _result(
    settings: CalibrationConfig,
    *,
    profile: str,
    side: int,
    test_images: int,
    entries: list[ShuffledFid],
    reference: ReferenceStatistics,
    weights: InceptionWeights,
    device: torch.device,
) -> CalibrationResult:
    """The result of every patch size's FID, with what it compared and how."""
    plain = {"calibration": asdict(settings)}
    return CalibrationResult(
        profile=profile,
        dataset=settings.dataset,
        image_size=side,
        test_images=test_images,
        seed=settings.seed,
        patches=entries,
        reference=FidReference(dataset=settings.dataset, split="train", count=reference.count),
        extractor=extractor_record(weights),
        provenance=provenance(profile=profile, params_hash=settings_hash(plain), device=device),
        settings=plain,
    )


def _shuffled_fid(
    test: torch.Tensor,
    seeds: list[int],
    *,
    patch: int,
    reference: ReferenceStatistics,
    weights: InceptionWeights,
    settings: CalibrationConfig,
    device: torch.device,
    console: Console | None,
) -> ShuffledFid:
    """FID and KID of the test images shuffled in ``patch``×``patch`` patches."""
    shuffled = shuffle_patches(test, patch=patch, seeds=seeds)
    measured = distances(
        shuffled, reference, weights=weights, device=device, batch_size=settings.batch_size
    )
    if console is not None:
        console.log(f"{patch}×{patch} patches: FID {measured.fid:.2f}")
    return ShuffledFid(patch=patch, **asdict(measured))


def _held_extent(path: Path) -> dict[str, object] | None:
    """What the calibration result at ``path`` was computed from (None: no readable one)."""
    held = stored_fields(path, "dataset", "image_size", "test_images", "reference")
    if held is None or not isinstance(held["reference"], dict):
        return None
    side = held["image_size"]
    return {
        "images": f"{held['dataset']} {side}x{side}",
        "test_images": held["test_images"],
        "reference_images": held["reference"].get("count"),
    }
