"""Where, when and how a number was computed: recorded in every result and checkpoint. Nothing
here imports torch (:mod:`repro.runtime` reads the values from it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Hardware:
    device: str
    torch: str


@dataclass(frozen=True)
class Numerics:
    """The arithmetic a number was computed with.

    Attributes:
        tf32: TF32 matrix arithmetic allowed on CUDA (moves bits/dim by 1e-4 to 1e-3).
        autotune: cuDNN picked its convolution algorithms by timing (float rounding only).
        compiled: The velocity networks ran compiled by ``torch.compile`` (float rounding only).
    """

    tf32: bool
    autotune: bool
    compiled: bool = False


@dataclass(frozen=True)
class NumericsSpan:
    """The numerics a training run used from one iteration on (until the next span)."""

    from_iteration: int
    numerics: Numerics


@dataclass(frozen=True)
class Provenance:
    """Where, when and from what a result was produced.

    ``packages`` holds the version of every package that computes a number (torch, torchdiffeq,
    torch-fidelity); results written before these were recorded lack them.
    """

    profile: str
    git_commit: str
    params_hash: str
    hardware: Hardware
    date: str
    numerics: Numerics | None = None
    packages: dict[str, str] | None = None

    def __post_init__(self) -> None:
        datetime.fromisoformat(self.date)  # a ValueError names a date that is not ISO 8601
