"""Read the metrics that training and evaluation write under ``runs/<profile>/``.

Only the JSON files are read (never checkpoints or the training code), so tables rebuild without
torch. A missing file means "not run" and reads as ``None``; a malformed file is an error whose
one-line message names the file, because a half-written or mislabelled result must never turn
quietly into a table cell.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

_NUMBER = (int, float)
_PROVENANCE = {"profile": str, "git_commit": str, "params_hash": str, "hardware": dict, "date": str}
_HARDWARE = {"device": str, "torch": str}
_STOPPED_BY = ("max_iterations", "max_epochs", "time_budget")

# Required fields and their JSON types, per kind of results file.
_SCHEMAS: dict[str, dict[str, Any]] = {
    "train_summary": {
        "experiment": str,
        "profile": str,
        "iterations": int,
        "epochs": _NUMBER,
        "train_hours": _NUMBER,
        "seconds_per_iteration": _NUMBER,
        "stopped_by": str,
        "provenance": dict,
    },
    "eval_bpd": {
        "experiment": str,
        "profile": str,
        "bpd": _NUMBER,
        "bpd_bin_centre": _NUMBER,
        "bpd_per_resolution": list,
        "num_images": int,
        "nfe_mean": _NUMBER,
        "images_per_second": _NUMBER,
        "provenance": dict,
    },
    "fid": {
        "experiment": str,
        "profile": str,
        "temperature": _NUMBER,
        "fid": _NUMBER,
        "kid_mean": _NUMBER,
        "kid_std": _NUMBER,
        "num_samples": int,
        "provenance": dict,
    },
    "param_counts": {"profile": str, "rows": list, "provenance": dict},
}
_PARAM_ROW = {"resolutions": int, "blocks": int, "width": int, "channels": int, "params": int}
# Tables 5 and 6 are for RGB images; a count for another input (e.g. MNIST) must not fill them.
_RGB_CHANNELS = 3
PARAM_COUNTS = "param_counts.json"


def fid_file(temperature: float) -> str:
    """Where a run folder keeps the FID of one temperature, e.g. ``fid/T0.7.json``.

    Python's shortest float text (``0.7``, ``1.0``) is also how DVC writes the temperature into
    the FID stages' output paths, so the two always agree.
    """
    return f"fid/T{float(temperature)}.json"


class ResultsError(ValueError):
    """A results file is malformed or belongs elsewhere (one-line message naming the file)."""


@dataclass(frozen=True)
class Provenance:
    """Where and how a result was produced."""

    profile: str
    git_commit: str
    params_hash: str
    device: str
    torch: str
    date: str


@dataclass(frozen=True)
class Measurement:
    """One reproduced number, the file it came from and that file's provenance."""

    value: float
    source: Path
    provenance: Provenance
    extras: Mapping[str, float | int | str] = field(default_factory=dict)


def _require(condition: bool, source: Path, problem: str) -> None:
    if not condition:
        raise ResultsError(f"{source}: {problem}")


def _check_types(data: Any, schema: Mapping[str, Any], *, where: str, source: Path) -> None:
    if not isinstance(data, dict):
        raise ResultsError(f"{source}: {where or 'top level'} is not a JSON object")
    for key, kind in schema.items():
        path = f"{where}.{key}" if where else key
        if key not in data:
            raise ResultsError(f"{source}: {path} is missing")
        value = data[key]
        # bool is an int in Python but never a valid count or metric here.
        if isinstance(value, bool) or not isinstance(value, kind):
            raise ResultsError(f"{source}: {path} is {value!r}, of the wrong type")
        if isinstance(value, float) and not math.isfinite(value):
            raise ResultsError(f"{source}: {path} is {value!r}, expected a finite number")


def _provenance(data: Mapping[str, Any], *, source: Path) -> Provenance:
    raw = data["provenance"]
    _check_types(raw, _PROVENANCE, where="provenance", source=source)
    _check_types(raw["hardware"], _HARDWARE, where="provenance.hardware", source=source)
    try:
        datetime.fromisoformat(raw["date"])
    except ValueError:
        raise ResultsError(f"{source}: provenance.date {raw['date']!r} is not ISO 8601") from None
    return Provenance(
        profile=raw["profile"],
        git_commit=raw["git_commit"],
        params_hash=raw["params_hash"],
        device=raw["hardware"]["device"],
        torch=raw["hardware"]["torch"],
        date=raw["date"],
    )


class Results:
    """The results of one profile (``runs/<profile>/``), read lazily and at most once per file.

    Args:
        results_dir: the profile's folder.
        profile: the profile the results must belong to; a file that names another profile is
            an error, so results of a smoke run cannot pass for a full run's.
    """

    def __init__(self, results_dir: Path, *, profile: str) -> None:
        self.results_dir = results_dir
        self.profile = profile
        self._files: dict[Path, tuple[dict[str, Any], Provenance] | None] = {}

    def _read(self, path: Path, *, kind: str) -> tuple[dict[str, Any], Provenance] | None:
        if path not in self._files:
            self._files[path] = self._parse(path, kind=kind) if path.is_file() else None
        return self._files[path]

    def _parse(self, path: Path, *, kind: str) -> tuple[dict[str, Any], Provenance]:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ResultsError(f"{path}: not readable JSON ({error})") from None
        _check_types(data, _SCHEMAS[kind], where="", source=path)
        provenance = _provenance(data, source=path)
        for where, profile in (("", data["profile"]), ("provenance.", provenance.profile)):
            problem = f"{where}profile is {profile!r}, expected {self.profile!r}"
            _require(profile == self.profile, path, problem)
        return data, provenance

    def _experiment_file(
        self, experiment: str, relative: str, *, kind: str
    ) -> tuple[dict[str, Any], Provenance, Path] | None:
        path = self.results_dir / experiment / relative
        found = self._read(path, kind=kind)
        if found is None:
            return None
        data, provenance = found
        problem = f"experiment is {data['experiment']!r}, expected {experiment!r}"
        _require(data["experiment"] == experiment, path, problem)
        return data, provenance, path

    def bpd(self, experiment: str) -> Measurement | None:
        """Return the test-set bpd (dequantised estimate), or ``None`` if not evaluated.

        Raises:
            ResultsError: ``eval_bpd.json`` is malformed or names another experiment/profile.
        """
        found = self._experiment_file(experiment, "eval_bpd.json", kind="eval_bpd")
        if found is None:
            return None
        data, provenance, path = found
        extras = {key: data[key] for key in ("bpd_bin_centre", "num_images", "nfe_mean")}
        return Measurement(float(data["bpd"]), path, provenance, extras)

    def train_hours(self, experiment: str) -> Measurement | None:
        """Return the measured training time in hours, or ``None`` if not trained.

        Raises:
            ResultsError: ``train_summary.json`` is malformed or names another experiment/profile.
        """
        found = self._experiment_file(experiment, "train_summary.json", kind="train_summary")
        if found is None:
            return None
        data, provenance, path = found
        problem = f"stopped_by is {data['stopped_by']!r}, expected one of {_STOPPED_BY}"
        _require(data["stopped_by"] in _STOPPED_BY, path, problem)
        extras = {key: data[key] for key in ("iterations", "epochs", "stopped_by")}
        return Measurement(float(data["train_hours"]), path, provenance, extras)

    def fid(self, experiment: str, temperature: float) -> Measurement | None:
        """Return the FID of samples drawn at ``temperature``, or ``None`` if not computed.

        Raises:
            ResultsError: the :func:`fid_file` is malformed, names another experiment/profile,
                or holds another temperature.
        """
        relative = fid_file(temperature)
        found = self._experiment_file(experiment, relative, kind="fid")
        if found is None:
            return None
        data, provenance, path = found
        problem = f"temperature is {data['temperature']}, expected {temperature}"
        _require(math.isclose(data["temperature"], temperature, abs_tol=1e-9), path, problem)
        extras = {key: data[key] for key in ("kid_mean", "kid_std", "num_samples")}
        return Measurement(float(data["fid"]), path, provenance, extras)

    def param_count(self, *, resolutions: int, blocks: int, width: int) -> Measurement | None:
        """Return the exact parameter count of an RGB model, or ``None`` if not counted.

        Args:
            resolutions: number of resolutions.
            blocks: ODE blocks per resolution.
            width: hidden width of the velocity network (Table 6's "channels").

        Raises:
            ResultsError: ``param_counts.json`` is malformed or lists the configuration twice.
        """
        path = self.results_dir / PARAM_COUNTS
        found = self._read(path, kind="param_counts")
        if found is None:
            return None
        data, provenance = found
        wanted = {"resolutions": resolutions, "blocks": blocks, "width": width}
        matches = []
        for index, row in enumerate(data["rows"]):
            _check_types(row, _PARAM_ROW, where=f"rows[{index}]", source=path)
            if row["channels"] == _RGB_CHANNELS and all(row[k] == v for k, v in wanted.items()):
                matches.append(row)
        _require(len(matches) <= 1, path, f"rows list {wanted} (RGB) {len(matches)} times")
        # Kept an int: a parameter count is exact and should print without a decimal point.
        return Measurement(matches[0]["params"], path, provenance) if matches else None
