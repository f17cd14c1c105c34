"""The one plausibility check of every reproduced number: which values of a result cannot be right,
and which FIDs rest on Inception weights the suite could not verify.

Tables, ``repro compare`` and the FID plot read a result's problems here and nowhere else: a
number with a problem is marked invalid and never shown or compared; an unverified FID is shown
but never compared.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repro.results import (
    BpdResult,
    CalibrationResult,
    FidResult,
    Result,
    ShuffledBpd,
    ShuffledFid,
)

# sqrtm's rounding leaves the FID of two identical feature sets a hair below zero.
FID_ROUNDING = 1e-6


@dataclass(frozen=True)
class Problem:
    """An impossible value found in a result file: the file and what is wrong, e.g.
    ``bpd is -1.5 (a total bpd cannot be below 0)``."""

    source: Path
    text: str

    def __str__(self) -> str:
        return f"{self.source}: {self.text}"


@dataclass(frozen=True)
class _Floor:
    """A field of a result that cannot be below ``lowest``; ``what`` names it in the message."""

    name: str
    lowest: float
    what: str


# Per-level bpd terms (bpd_per_resolution) may be negative: only their sum plus 8 may not.
# Per-patch entries of the calibration and shuffled-bpd results are checked one by one.
_FLOORS: dict[type, tuple[_Floor, ...]] = {
    BpdResult: (
        *(
            _Floor(name, 0.0, "a total bpd")
            for name in ("bpd", "bpd_bin_centre", "bpd_interpolated_end", "bpd_exact_end")
        ),
        _Floor("bpd_standard_error", 0.0, "a standard error"),
        _Floor("bpd_bin_centre_standard_error", 0.0, "a standard error"),
    ),
    FidResult: (
        _Floor("fid", -FID_ROUNDING, "an FID"),
        _Floor("fid_seed_sets", -FID_ROUNDING, "an FID"),
        _Floor("kid_std", 0.0, "a standard deviation"),
        _Floor("fid_spread", 0.0, "a spread over seed sets"),
    ),
    ShuffledFid: (
        _Floor("fid", -FID_ROUNDING, "an FID"),
        _Floor("kid_std", 0.0, "a standard deviation"),
    ),
    ShuffledBpd: (
        _Floor("bpd", 0.0, "a total bpd"),
        _Floor("bpd_standard_error", 0.0, "a standard error"),
    ),
}


def _numbers(name: str, value: Any) -> list[tuple[str, float]]:
    """The numbers a field holds, each with its name (``fid_seed_sets[1]`` for a list's)."""
    if isinstance(value, float | int) and not isinstance(value, bool):
        return [(name, value)]
    if isinstance(value, list | tuple):
        return [(f"{name}[{i}]", v) for i, v in enumerate(value) if isinstance(v, float | int)]
    return []


def result_problems(result: Result | ShuffledFid | ShuffledBpd) -> tuple[str, ...]:
    """The values of a result that cannot be right, each named with its field; empty if none.

    Impossible are: any number of the result's own fields that is not finite (NaN, infinity), a
    total bpd below 0, an FID below ``-FID_ROUNDING``, and a negative standard error, standard
    deviation or spread. Per-level bpd terms may be negative. This is the one plausibility check
    behind the tables, ``repro compare`` and the FID plot.

    Args:
        result: A result as read (or built in memory), or one per-patch entry of one.

    Returns:
        One phrase per impossible value, e.g. ``"bpd is -1.5 (a total bpd cannot be below 0)"``.
    """
    problems = []
    for declared in dataclasses.fields(result):
        for name, value in _numbers(declared.name, getattr(result, declared.name)):
            if not math.isfinite(value):
                problems.append(f"{name} is {value} (not a finite number)")
    for floor in _FLOORS.get(type(result), ()):
        for name, value in _numbers(floor.name, getattr(result, floor.name)):
            if math.isfinite(value) and value < floor.lowest:
                problems.append(f"{name} is {value:g} ({floor.what} cannot be below 0)")
    return tuple(problems)


def unverified_weights(result: FidResult | CalibrationResult) -> str | None:
    """Why an FID cannot be trusted to match the paper's protocol, or ``None`` if it can.

    Args:
        result: An FID result as read.

    Returns:
        ``"computed with unverified Inception weights (<sha256 prefix>)"`` where the FID's file
        records an extractor whose weights were not verified (files that record an extractor
        but not its verification read as unverified); ``None`` where they were, or where the
        file records no extractor at all (the oldest format: nothing to judge the weights by).
    """
    extractor = result.extractor
    if extractor is None or extractor.weights_verified:
        return None
    return f"computed with unverified Inception weights ({extractor.weights_sha256[:12]})"
