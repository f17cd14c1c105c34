"""FID, KID and Inception features on torch-fidelity's InceptionV3, usable offline.

Typical use::

    weights = ensure_inception_weights()
    reference = reference_statistics(train, dataset="cifar10", split="train", weights=weights)
    samples = extract_features(generated_images, weights=weights)
    fid = fid_from_statistics(*feature_statistics(samples), reference.mu, reference.sigma)
    kid_mean, kid_std = kid(samples, reference.features)
"""

from __future__ import annotations

from repro.fid.features import (
    InceptionScoreUnavailableError,
    extract_features,
    extract_logits,
)
from repro.fid.inception import ensure_inception_weights, torch_fidelity_cache_path
from repro.fid.metrics import (
    feature_statistics,
    fid_from_statistics,
    frechet_distance,
    inception_score,
    kid,
)
from repro.fid.reference import ReferenceStatistics, reference_key, reference_statistics
from repro.fid.weights import (
    InceptionWeights,
    InceptionWeightsError,
    inception_score_available,
)

__all__ = [
    "InceptionScoreUnavailableError",
    "InceptionWeights",
    "InceptionWeightsError",
    "ReferenceStatistics",
    "ensure_inception_weights",
    "extract_features",
    "extract_logits",
    "feature_statistics",
    "fid_from_statistics",
    "frechet_distance",
    "inception_score",
    "inception_score_available",
    "kid",
    "reference_key",
    "reference_statistics",
    "torch_fidelity_cache_path",
]
