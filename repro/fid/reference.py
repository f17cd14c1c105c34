"""Inception statistics of a dataset split, computed once and cached as ``.npz``.

Each file sits in ``<cache>/fid_reference/`` and is named by dataset, split, image count, image
size and the extractor weights' sha256, so a change of any of them yields a new file rather than
stale numbers. Besides ``mu`` and ``sigma`` (all that FID needs) the file keeps the features of a
seeded random subset of at most ``max_stored_features`` images, because KID is computed from
features; 10,000 float32 rows of 2048 are 80 MB, and KID's subsets hold 1,000 samples each.
"""

from __future__ import annotations

import logging
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from repro.fid.features import extract_features
from repro.fid.metrics import feature_statistics
from repro.fid.weights import InceptionWeights
from repro.files import atomic_destination
from repro.paths import cache_dir

REFERENCE_FOLDER = "fid_reference"
DEFAULT_STORED_FEATURES = 10_000
_SUBSET_SEED = 0
_NAME_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class ReferenceStatistics:
    """Cached Inception statistics of one dataset split.

    Attributes:
        mu: Mean of the 2048-d features over all ``count`` images (float64).
        sigma: Their covariance (float64, 2048×2048).
        features: Features of a seeded random subset of the images, for KID (float64).
        count: Number of images the statistics cover.
        path: The ``.npz`` file they were read from or written to.
    """

    mu: np.ndarray
    sigma: np.ndarray
    features: np.ndarray
    count: int
    path: Path


def reference_key(
    *, dataset: str, split: str, count: int, image_size: tuple[int, int], weights: InceptionWeights
) -> str:
    """Return the file stem that identifies a reference: e.g. ``cifar10-train-n50000-32x32-<sha>``.

    Raises:
        ValueError: ``dataset`` or ``split`` is not a plain file-name token.
    """
    for label, value in (("dataset", dataset), ("split", split)):
        if not _NAME_PART.fullmatch(value):
            raise ValueError(f"{label} must be a plain token (letters, digits, _.-), got {value!r}")
    height, width = image_size
    return f"{dataset}-{split}-n{count}-{height}x{width}-inception-{weights.sha256[:16]}"


def reference_statistics(
    images: torch.Tensor,
    *,
    dataset: str,
    split: str,
    weights: InceptionWeights,
    max_stored_features: int = DEFAULT_STORED_FEATURES,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    cache: Path | None = None,
) -> ReferenceStatistics:
    """Return the reference statistics of ``images``, from the cache when present.

    Args:
        images: All images of the split, uint8 N×C×H×W (C = 1 or 3).
        dataset: Dataset name for the cache key, e.g. ``"cifar10"``.
        split: Split name for the cache key, e.g. ``"train"``.
        weights: Inception weights; their sha256 is part of the key.
        max_stored_features: Most feature rows kept for KID; a cached file with fewer than
            ``min(N, max_stored_features)`` rows is recomputed.
        batch_size: Images per Inception forward pass.
        device: Where the Inception network runs.
        cache: Artefact cache folder; defaults to :func:`repro.paths.cache_dir`.

    Returns:
        The statistics and the stored feature subset.

    Raises:
        ValueError: Fewer than 2 images, a bad image tensor, a negative
            ``max_stored_features``, or a bad dataset/split name.
    """
    if images.dtype != torch.uint8 or images.dim() != 4 or len(images) < 2:
        raise ValueError(
            f"need at least 2 uint8 images as N×C×H×W, got {images.dtype} {tuple(images.shape)}"
        )
    if max_stored_features < 0:
        raise ValueError(f"max_stored_features must be non-negative, got {max_stored_features}")
    count = len(images)
    key = reference_key(
        dataset=dataset,
        split=split,
        count=count,
        image_size=(images.shape[2], images.shape[3]),
        weights=weights,
    )
    path = (cache_dir() if cache is None else cache) / REFERENCE_FOLDER / f"{key}.npz"
    stored_rows = min(count, max_stored_features)
    cached = _load(path, weights=weights, count=count, stored_rows=stored_rows)
    if cached is not None:
        return cached

    log.info("computing Inception reference statistics %s", key)
    features = extract_features(images, weights=weights, batch_size=batch_size, device=device)
    mu, sigma = feature_statistics(features)
    rows = np.random.default_rng(_SUBSET_SEED).choice(count, size=stored_rows, replace=False)
    # torch-fidelity's features are float32 values, so float32 storage loses nothing.
    subset = features.numpy()[np.sort(rows)].astype(np.float32)
    with atomic_destination(path) as temporary, temporary.open("wb") as stream:
        np.savez(
            stream, mu=mu, sigma=sigma, features=subset, count=count, weights_sha256=weights.sha256
        )
    return ReferenceStatistics(
        mu=mu, sigma=sigma, features=subset.astype(np.float64), count=count, path=path
    )


def _load(
    path: Path, *, weights: InceptionWeights, count: int, stored_rows: int
) -> ReferenceStatistics | None:
    if not path.is_file():
        return None
    try:
        with np.load(path) as archive:
            record = {name: archive[name] for name in archive.files}
        usable = (
            str(record["weights_sha256"]) == weights.sha256
            and int(record["count"]) == count
            and len(record["features"]) >= stored_rows
        )
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        log.warning("recomputing unreadable reference statistics %s (%s)", path, error)
        return None
    if not usable:
        return None
    return ReferenceStatistics(
        mu=record["mu"],
        sigma=record["sigma"],
        features=record["features"].astype(np.float64),
        count=count,
        path=path,
    )
