"""FID, KID and IS from features, delegating the arithmetic to torch-fidelity.

Calling torch-fidelity's own statistics-to-metric functions makes the suite's numbers
torch-fidelity's numbers, rather than a re-implementation that agrees with them up to rounding.
"""

from __future__ import annotations

import numpy as np
import torch
from torch_fidelity.metric_fid import (
    KEY_METRIC_FID,
    fid_features_to_statistics,
    fid_statistics_to_metric,
)
from torch_fidelity.metric_isc import (
    KEY_METRIC_ISC_MEAN,
    KEY_METRIC_ISC_STD,
    isc_features_to_metric,
)
from torch_fidelity.metric_kid import (
    KEY_METRIC_KID_MEAN,
    KEY_METRIC_KID_STD,
    kid_features_to_metric,
)

# torch-fidelity's defaults, so suite numbers are comparable with its command line.
KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000
IS_SPLITS = 10
SEED = 2020

Features = torch.Tensor | np.ndarray


def feature_statistics(features: Features) -> tuple[np.ndarray, np.ndarray]:
    """Return the mean and covariance FID compares.

    Args:
        features: N×D array or tensor, N ≥ 2.

    Returns:
        ``(mu, sigma)``: float64 arrays of shape D and D×D (unbiased covariance, as torch-fidelity).

    Raises:
        ValueError: ``features`` is not 2-d or has fewer than 2 rows.
    """
    statistics = fid_features_to_statistics(_as_tensor(features, minimum_rows=2))
    return statistics["mu"], statistics["sigma"]


def fid_from_statistics(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    """Return the Fréchet distance between two Gaussians given by mean and covariance.

    Args:
        mu1: Mean of the first set, shape D.
        sigma1: Covariance of the first set, D×D.
        mu2: Mean of the second set, shape D.
        sigma2: Covariance of the second set, D×D.

    Returns:
        FID as torch-fidelity computes it (trace of the product's square root via eigenvalues).

    Raises:
        ValueError: The shapes do not describe two D-dimensional Gaussians.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    dim = mu1.shape[0] if mu1.ndim == 1 else -1
    if mu2.shape != (dim,) or sigma1.shape != (dim, dim) or sigma2.shape != (dim, dim):
        raise ValueError(
            f"statistics do not match: mu {mu1.shape} / {mu2.shape}, "
            f"sigma {sigma1.shape} / {sigma2.shape}"
        )
    result = fid_statistics_to_metric(
        {"mu": mu1, "sigma": sigma1}, {"mu": mu2, "sigma": sigma2}, verbose=False
    )
    return float(result[KEY_METRIC_FID])


def frechet_distance(features_a: Features, features_b: Features) -> float:
    """Return the FID between two feature sets (N×D each, N ≥ 2)."""
    return fid_from_statistics(*feature_statistics(features_a), *feature_statistics(features_b))


def kid(
    features_a: Features,
    features_b: Features,
    *,
    subsets: int = KID_SUBSETS,
    subset_size: int = KID_SUBSET_SIZE,
    seed: int = SEED,
) -> tuple[float, float]:
    """Return the Kernel Inception Distance: unbiased MMD² with the cubic polynomial kernel.

    Args:
        features_a: N×D features, N ≥ 2.
        features_b: M×D features, M ≥ 2.
        subsets: Number of random subsets the MMD is averaged over.
        subset_size: Samples per subset, clipped to ``min(N, M)`` so small sets still work.
        seed: Seed of the subset sampling.

    Returns:
        ``(mean, std)`` over the subsets. Values slightly below 0 mean "indistinguishable".

    Raises:
        ValueError: Fewer than 2 samples on a side, mismatched widths, or ``subsets`` < 1.
    """
    a = _as_tensor(features_a, minimum_rows=2)
    b = _as_tensor(features_b, minimum_rows=2)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature widths differ: {a.shape[1]} vs {b.shape[1]}")
    if subsets < 1 or subset_size < 2:
        raise ValueError(f"need subsets ≥ 1 and subset_size ≥ 2, got {subsets}, {subset_size}")
    result = kid_features_to_metric(
        a,
        b,
        kid_subsets=subsets,
        kid_subset_size=min(subset_size, len(a), len(b)),
        rng_seed=seed,
        verbose=False,
    )
    return float(result[KEY_METRIC_KID_MEAN]), float(result[KEY_METRIC_KID_STD])


def inception_score(
    logits: Features, *, splits: int = IS_SPLITS, seed: int = SEED
) -> tuple[float, float]:
    """Return the Inception Score from classifier logits.

    Only logits from :func:`repro.fid.extract_logits` are valid input; that function refuses
    weights without a classifier, which is how an IS request fails for converted weights.

    Args:
        logits: N×1008 unbiased logits, N ≥ ``splits``.
        splits: Number of splits the score is averaged over.
        seed: Seed of the shuffle before splitting.

    Returns:
        ``(mean, std)`` over the splits.

    Raises:
        ValueError: ``splits`` < 1, fewer rows than splits, or non-finite logits.
    """
    if splits < 1:
        raise ValueError(f"splits must be positive, got {splits}")
    values = _as_tensor(logits, minimum_rows=splits)
    if not torch.isfinite(values).all():
        raise ValueError("logits are not finite; the Inception weights have no classifier")
    result = isc_features_to_metric(values, splits=splits, shuffle=True, rng_seed=seed)
    return float(result[KEY_METRIC_ISC_MEAN]), float(result[KEY_METRIC_ISC_STD])


def _as_tensor(features: Features, *, minimum_rows: int) -> torch.Tensor:
    values = torch.as_tensor(features).detach().to(device="cpu", dtype=torch.float64)
    if values.dim() != 2 or len(values) < minimum_rows:
        raise ValueError(f"need an N×D array with N ≥ {minimum_rows}, got {tuple(values.shape)}")
    return values
