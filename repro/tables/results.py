"""Read one profile's result files for the tables, through the dataclasses of :mod:`repro.results`.

Only the JSON files are read (never checkpoints or the training code), so tables rebuild without
torch. A missing file means "not run" and reads as ``None``; a malformed file, or one that belongs
to another profile, experiment or temperature, is a :class:`ResultsError` whose one-line message
names the file, because a half-written or mislabelled result must never turn quietly into a table
cell.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from repro.layout import ProfileLayout
from repro.published import PAPER_CHANNELS
from repro.results import (
    BpdResult,
    FidResult,
    Judgement,
    ParamCounts,
    Provenance,
    Result,
    ResultsError,
    TrainSummary,
)

R = TypeVar("R", bound=Result)


@dataclass(frozen=True)
class Measurement:
    """One reproduced number, the file it came from and that file's provenance.

    ``standard_error`` is the number's own uncertainty where its file records one (bpd: the
    standard error of the mean over the test images; FID: the standard deviation over seed
    sets); ``None`` for exact or single numbers and for files written before it was recorded.
    """

    value: float
    source: Path
    provenance: Provenance
    extras: Mapping[str, float | int | str] = field(default_factory=dict)
    standard_error: float | None = None


class Results:
    """The results of one profile, each file read lazily and at most once.

    Every file must name the layout's profile (at its top level and in its provenance), so the
    results of a smoke run cannot pass for a full run's.
    """

    def __init__(self, layout: ProfileLayout) -> None:
        self.layout = layout
        self._files: dict[Path, Result | None] = {}

    @property
    def profile(self) -> str:
        return self.layout.profile

    def _read(self, path: Path, kind: type[R]) -> R | None:
        # Each path holds one kind of result (the layout says which), so the path is the key.
        if path not in self._files:
            self._files[path] = self._parse(path, kind) if path.is_file() else None
        return self._files[path]

    def _parse(self, path: Path, kind: type[R]) -> R:
        result = kind.read(path)
        for where, profile in (
            ("profile", result.profile),
            ("provenance.profile", result.provenance.profile),
        ):
            if profile != self.profile:
                raise ResultsError(f"{path}: {where} is {profile!r}, expected {self.profile!r}")
        return result

    def _run_result(self, experiment: str, path: Path, kind: type[R]) -> R | None:
        result = self._read(path, kind)
        if result is not None and result.experiment != experiment:
            problem = f"experiment is {result.experiment!r}, expected {experiment!r}"
            raise ResultsError(f"{path}: {problem}")
        return result

    def bpd(self, experiment: str) -> Measurement | None:
        """The test-set bpd (uniform dequantisation), or ``None`` if not evaluated.

        Its extras hold the bin-centre estimate, the checkpoint scored (``checkpoint``,
        ``checkpoint_iteration``; for a best one how it was judged: ``judged_on``,
        ``judged_every_epochs``, ``judged_by``, ``held_out_images``) and the bpd of both solver
        endings (``solver_end`` names the one that gave the value).
        """
        path = self.layout.run(experiment).eval_bpd
        result = self._run_result(experiment, path, BpdResult)
        if result is None:
            return None
        extras: dict[str, float | int | str] = {
            "bpd_bin_centre": result.bpd_bin_centre,
            "num_images": result.num_images,
            "nfe_mean": result.nfe_mean,
            "checkpoint": result.checkpoint,
            "solver_end": "exact" if result.exact_end else "interpolated",
        }
        # Older files lack these; an absent key reads as "not recorded".
        optional = {
            "bpd_bin_centre_standard_error": result.bpd_bin_centre_standard_error,
            "checkpoint_iteration": result.checkpoint_iteration,
            **_judgement_extras(result.judged_by),
            "bpd_exact_end": result.bpd_exact_end,
            "bpd_interpolated_end": result.bpd_interpolated_end,
        }
        extras.update({key: value for key, value in optional.items() if value is not None})
        return Measurement(
            result.bpd, path, result.provenance, extras, standard_error=result.bpd_standard_error
        )

    def train_hours(self, experiment: str) -> Measurement | None:
        """The measured training time in hours, or ``None`` if not trained.

        Its extras hold the compute behind it: ``iterations``, ``epochs``, ``stopped_by`` and
        the ``time_budget_hours`` the run had, where it had one.
        """
        path = self.layout.run(experiment).train_summary
        result = self._run_result(experiment, path, TrainSummary)
        if result is None:
            return None
        extras: dict[str, float | int | str] = {
            "iterations": result.iterations,
            "epochs": result.epochs,
            "stopped_by": result.stopped_by,
        }
        if result.time_budget_hours is not None:
            extras["time_budget_hours"] = result.time_budget_hours
        return Measurement(result.train_hours, path, result.provenance, extras)

    def fid(self, experiment: str, temperature: float) -> Measurement | None:
        """The FID of samples drawn at ``temperature``, or ``None`` if not computed.

        Raises:
            ResultsError: Also when the file holds another temperature's FID.
        """
        path = self.layout.run(experiment).fid(temperature)
        result = self._run_result(experiment, path, FidResult)
        if result is None:
            return None
        if not math.isclose(result.temperature, temperature, abs_tol=1e-9):
            problem = f"temperature is {result.temperature}, expected {temperature}"
            raise ResultsError(f"{path}: {problem}")
        extras = {
            "kid_mean": result.kid_mean,
            "kid_std": result.kid_std,
            "num_samples": result.num_samples,
        }
        if result.fid_seed_sets is not None:
            extras["seed_sets"] = len(result.fid_seed_sets)
        return Measurement(
            result.fid, path, result.provenance, extras, standard_error=result.fid_spread
        )

    def param_count(self, *, resolutions: int, blocks: int, width: int) -> Measurement | None:
        """The exact parameter count of the paper's (RGB) model of this size, or ``None``.

        ``width`` is the velocity network's hidden width (Table 6's "channels"). Rows counted for
        other inputs (e.g. MNIST's one channel) never fill Tables 5 and 6.

        Raises:
            ResultsError: Also when the file lists the configuration twice.
        """
        path = self.layout.param_counts
        counts = self._read(path, ParamCounts)
        if counts is None:
            return None
        wanted = (resolutions, blocks, width)
        matches = [
            row
            for row in counts.rows
            if row.channels == PAPER_CHANNELS and (row.resolutions, row.blocks, row.width) == wanted
        ]
        if len(matches) > 1:
            raise ResultsError(
                f"{path}: rows list resolutions={resolutions}, blocks={blocks}, width={width} "
                f"(RGB) {len(matches)} times; count each configuration once"
            )
        # Kept an int: a parameter count is exact and should print without a decimal point.
        return Measurement(matches[0].params, path, counts.provenance) if matches else None


def _judgement_extras(judgement: Judgement | None) -> dict[str, float | int | str | None]:
    """How a best checkpoint was chosen, as flat extras (CSV columns); nothing for ``last``."""
    if judgement is None:
        return {}
    return {
        "judged_on": judgement.images,
        "judged_every_epochs": judgement.every_epochs,
        "judged_by": judgement.dequantization,
        "held_out_images": judgement.held_out_images if judgement.images == "held_out" else None,
    }
