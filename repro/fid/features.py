"""Inception features of uint8 image batches, through torch-fidelity's InceptionV3."""

from __future__ import annotations

import functools
from pathlib import Path

import torch
from torch_fidelity import FeatureExtractorInceptionV3

from repro.errors import ReproError
from repro.fid.weights import InceptionWeights, build_extractor, inception_score_available

POOL_FEATURES = "2048"
LOGITS = "logits_unbiased"
_WIDTHS = {POOL_FEATURES: 2048, LOGITS: 1008}


class InceptionScoreUnavailableError(ReproError, RuntimeError):
    """The Inception weights in use have no classifier, so logits and IS would be meaningless."""


def extract_features(
    images: torch.Tensor,
    *,
    weights: InceptionWeights,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """Return the 2048-d pool features FID and KID are defined on.

    torch-fidelity resizes every image to 299×299 itself (TF1-compatible bilinear), so images of
    any size go in unchanged.

    Args:
        images: uint8 tensor N×C×H×W with C = 1 (replicated to RGB) or C = 3.
        weights: Weights from :func:`repro.fid.ensure_inception_weights`.
        batch_size: Images per forward pass.
        device: Where the network runs.

    Returns:
        float64 CPU tensor N×2048.

    Raises:
        ValueError: ``images`` is not a uint8 N×{1,3}×H×W tensor, or ``batch_size`` < 1.
    """
    return _extract(
        images, weights=weights, layer=POOL_FEATURES, batch_size=batch_size, device=device
    )


def extract_logits(
    images: torch.Tensor,
    *,
    weights: InceptionWeights,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """Return the 1008-way unbiased logits the Inception Score is defined on.

    Args:
        images: uint8 tensor N×C×H×W with C = 1 or C = 3.
        weights: Weights with a classifier (see :func:`repro.fid.inception_score_available`).
        batch_size: Images per forward pass.
        device: Where the network runs.

    Returns:
        float64 CPU tensor N×1008.

    Raises:
        InceptionScoreUnavailableError: ``weights`` have no classifier (converted weights).
        ValueError: ``images`` has the wrong dtype or shape.
    """
    if not inception_score_available(weights):
        raise InceptionScoreUnavailableError(
            f"Inception weights {weights.path.name} ({weights.origin}) have no classifier, so the "
            f"Inception Score is unavailable; provide torch-fidelity's original weights via "
            f"MRCNF_INCEPTION_WEIGHTS or its torch hub cache"
        )
    return _extract(images, weights=weights, layer=LOGITS, batch_size=batch_size, device=device)


def _extract(
    images: torch.Tensor,
    *,
    weights: InceptionWeights,
    layer: str,
    batch_size: int,
    device: str | torch.device,
) -> torch.Tensor:
    _check_images(images)
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    if len(images) == 0:
        return torch.empty((0, _WIDTHS[layer]), dtype=torch.float64)
    device = torch.device(device)
    extractor = _cached_extractor(str(weights.path), weights.sha256, layer, str(device))
    outputs = []
    with torch.inference_mode():
        for batch in images.split(batch_size):
            rgb = batch.expand(-1, 3, -1, -1) if batch.shape[1] == 1 else batch
            (features,) = extractor(rgb.to(device))
            outputs.append(features.to(device="cpu", dtype=torch.float64))
    return torch.cat(outputs)


def _check_images(images: torch.Tensor) -> None:
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8:
        raise ValueError(f"images must be a uint8 tensor, got {getattr(images, 'dtype', images)!r}")
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must be N×C×H×W with C in (1, 3), got {tuple(images.shape)}")


@functools.lru_cache(maxsize=2)
def _cached_extractor(
    path: str, sha256: str, layer: str, device: str
) -> FeatureExtractorInceptionV3:
    # sha256 is only part of the cache key: a file replaced in place must be loaded afresh.
    return build_extractor(Path(path), features=(layer,)).to(device)
