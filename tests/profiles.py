"""A tiny MNIST profile for tests that train through params.yaml (8×8 images, width 8)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
TINY_IMAGE_SIZE = 8
# The FID calibration offline, at the tiny images' size against the first 32 training images.
TINY_CALIBRATION = {
    "dataset": "mnist",
    "image_size": TINY_IMAGE_SIZE,
    "patches": [1, 2, 4, TINY_IMAGE_SIZE],
    "test_images": 12,
    "reference_images": 32,
    "batch_size": 12,
}

# Out-of-distribution sets made offline from the tiny test images (as the smoke profile's).
TINY_OOD = {"datasets": ["inverted", "noise"], "batch_size": 32}


def tiny_profile(
    *,
    limit_train: int,
    limit_test: int,
    max_iterations: int,
    checkpoint_every_iterations: int,
    fid: dict[str, int] | None = None,
) -> dict[str, Any]:
    """A profile that trains every experiment in seconds on a CPU, not comparable with the paper."""
    overrides: dict[str, Any] = {
        "data": {
            "dataset": "mnist",
            "image_size": TINY_IMAGE_SIZE,
            "limit_train": limit_train,
            "limit_test": limit_test,
        },
        "model": {"blocks": 1, "width": 8, "logit_alpha": 1.0e-6},
        "optimizer": {"warmup_iterations": 2},
        "training": {
            "batch_size": 32,
            "max_iterations": max_iterations,
            "time_budget_hours": None,
            "checkpoint_every_iterations": checkpoint_every_iterations,
        },
        "evaluation": {"batch_size": 32},
    }
    if fid is not None:
        overrides["fid"] = fid
    return {
        "comparable": False,
        "all": overrides,
        "experiments": _progressive_sizes(),
        "calibration": TINY_CALIBRATION,
        "ood": TINY_OOD,
    }


def _progressive_sizes() -> dict[str, Any]:
    """Each progressive experiment at the image size that makes its levels match its parent's."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    experiments = {**params["experiments"], **params.get("progressive_experiments", {})}
    sizes = {}
    for name, entry in params.get("progressive_experiments", {}).items():
        parent = experiments[entry["training"]["init_from"]]
        extra = entry["model"]["resolutions"] - parent["model"]["resolutions"]
        sizes[name] = {"data": {"image_size": TINY_IMAGE_SIZE * 2**extra}}
    return sizes


def params_with_profile(name: str, profile: dict[str, Any], *, select: bool = False) -> str:
    """The repository's params.yaml with ``profile`` added as ``name`` (and chosen, if asked)."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["profiles"][name] = profile
    if select:
        params["profile"] = name
    return yaml.safe_dump(params, sort_keys=False)
