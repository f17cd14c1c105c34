"""Devices, numerics switches, seeds and provenance shared by every stage."""

from __future__ import annotations

import contextlib
import datetime
import importlib.metadata
import os
import subprocess
from collections.abc import Iterator

import numpy as np
import torch

from repro.errors import ReproError
from repro.provenance import Hardware, Numerics, Provenance

# The packages whose code computes a reproduced number, recorded in every result's provenance.
COMPUTING_PACKAGES = ("torch", "torchdiffeq", "torch-fidelity", "numpy", "scipy")

DEVICES = ("auto", "cpu", "cuda")


class DeviceError(ReproError):
    """A device that is unknown or unavailable."""


def resolve_device(name: str) -> torch.device:
    """Turn ``auto``/``cpu``/``cuda`` into a device.

    Raises:
        DeviceError: If ``cuda`` is asked for and unavailable, or the name is unknown.
    """
    if name not in DEVICES:
        raise DeviceError(f"unknown device {name!r}; choose one of {', '.join(DEVICES)}")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise DeviceError(
            "--device cuda asked for, but torch sees no CUDA device: use --device cpu"
        )
    return torch.device(name)


class _Switches:
    """Process-wide switches of ours, beside torch's own (TF32, autotuning)."""

    compiled = False


def configure_numerics(*, tf32: bool, autotune: bool = True, compiled: bool = False) -> None:
    """Switch TF32 matrix arithmetic and cuDNN's convolution autotuning on CUDA, and whether the
    models built from now on compile their velocity networks.

    Args:
        tf32: Allow TF32 (faster, changes results by about 1e-4 relative; off for reproducibility).
        autotune: Let cuDNN time its convolution algorithms for each new shape and keep the
            fastest. A solver's shapes never change, and cuDNN's default choice for the
            divergence's double backward is a slow kernel (measured on an H200); results differ
            from the untuned choice only by float rounding.
        compiled: :func:`repro.models.build_model` compiles every velocity network
            (:meth:`mrcnf.MRCNF.compile_velocity_fields`: float rounding only, 1e-6 tested).
    """
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cudnn.benchmark = autotune
    _Switches.compiled = compiled


def compiling() -> bool:
    """Whether models are built with compiled velocity networks (:func:`configure_numerics`)."""
    return _Switches.compiled


@contextlib.contextmanager
def untuned_convolutions() -> Iterator[None]:
    """cuDNN without autotuning and with deterministic algorithms, for the duration.

    Autotuning times the algorithms anew in every process and for every shape, so its choice (and
    the rounding of the result) can change with the batch size or between runs; sampling needs
    an image to depend on its seed alone.
    """
    benchmark, deterministic = torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = False, True
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = benchmark
        torch.backends.cudnn.deterministic = deterministic


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work, so that a clock read after it measures that work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def current_numerics() -> Numerics:
    """The numerics switches in force, read from torch (not assumed from options)."""
    return Numerics(
        tf32=torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32,
        autotune=torch.backends.cudnn.benchmark,
        compiled=compiling(),
    )


def package_versions() -> dict[str, str]:
    """The installed version of every package in :data:`COMPUTING_PACKAGES`."""
    return {name: importlib.metadata.version(name) for name in COMPUTING_PACKAGES}


def derived_seed(*keys: int) -> int:
    """A well-mixed 63-bit seed from integer keys (run seed, stream, step, …)."""
    return int(np.random.SeedSequence([int(k) for k in keys]).generate_state(2, np.uint64)[0] >> 1)


def generator(device: torch.device | str, *keys: int) -> torch.Generator:
    """A torch generator on ``device`` seeded from ``keys``."""
    return torch.Generator(device=device).manual_seed(derived_seed(*keys))


def hardware(device: torch.device) -> Hardware:
    """Describe where a number was measured."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = f"CPU ({os.cpu_count()} cores, {torch.get_num_threads()} threads)"
    return Hardware(device=name, torch=torch.__version__)


def git_commit() -> str:
    """The checked-out commit (``+dirty`` if the work tree has changes; ``unknown`` outside git)."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit}+dirty" if dirty else commit


def provenance(*, profile: str, params_hash: str, device: torch.device) -> Provenance:
    """Where, when and from what a result was produced."""
    return Provenance(
        profile=profile,
        git_commit=git_commit(),
        params_hash=params_hash,
        hardware=hardware(device),
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        numerics=current_numerics(),
        packages=package_versions(),
    )
