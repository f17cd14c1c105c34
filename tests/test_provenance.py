"""Every result says how its numbers were computed: numerics read from torch, pinned packages."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import torch

from repro.config import load_params
from repro.models import build_model
from repro.runtime import COMPUTING_PACKAGES, configure_numerics, provenance

REPO = Path(__file__).resolve().parents[1]


def test_provenance_records_the_numerics_in_force_and_the_computing_packages() -> None:
    try:
        configure_numerics(tf32=True, autotune=False)
        recorded = provenance(profile="p", params_hash="h", device=torch.device("cpu"))
        assert (recorded.numerics.tf32, recorded.numerics.autotune) == (True, False)
    finally:
        configure_numerics(tf32=False)
    assert recorded.packages == {
        name: importlib.metadata.version(name) for name in COMPUTING_PACKAGES
    }


def _compiled(field: torch.nn.Module) -> bool:
    """Whether both of a velocity network's entry points run compiled."""
    return field._compiled_call_impl is not None and "forward_with_vjp" in vars(field)


def test_the_compile_switch_builds_compiled_models_and_is_recorded() -> None:
    experiment = load_params(REPO / "params.yaml").experiment("cifar10-2res-small", profile="smoke")
    try:
        configure_numerics(tf32=False, compiled=True)
        compiled = build_model(experiment, channels=1)
        recorded = provenance(profile="p", params_hash="h", device=torch.device("cpu"))
    finally:
        configure_numerics(tf32=False)
    assert recorded.numerics.compiled
    assert all(_compiled(block.field) for block in compiled.blocks)
    assert not any(_compiled(block.field) for block in build_model(experiment, channels=1).blocks)


def test_every_computing_package_is_pinned_exactly_and_installed_at_its_pin() -> None:
    pins = dict(
        re.findall(r'^\s*"([\w-]+)==([\w.]+)",', (REPO / "pyproject.toml").read_text(), re.M)
    )
    for name in COMPUTING_PACKAGES:
        assert pins.get(name) == importlib.metadata.version(name), name
