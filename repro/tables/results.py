"""Read one profile's result files for the tables, through the dataclasses of :mod:`repro.results`.

Only the JSON files are read (never checkpoints or the training code), so tables rebuild without
torch. Only a path that does not exist means "not run" and reads as ``None``. A path that exists
but is no readable result file (a directory, no read permission, not JSON), a malformed file, or
one that belongs to another profile, experiment or temperature, is a :class:`ResultsError` whose
one-line message names the file, because a half-written or mislabelled result must never turn
quietly into a table cell. A well-formed file holding a value that cannot be right (a negative
total bpd, FID or standard deviation, a NaN) is read, and
:func:`~repro.tables.plausibility.result_problems` (the one plausibility check of tables,
comparison and plot) names those values on each :class:`Measurement`, so its cell is marked
invalid and never compared.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from repro.layout import ProfileLayout
from repro.provenance import Provenance
from repro.published import PAPER_CHANNELS
from repro.results import (
    BpdResult,
    CalibrationResult,
    FidResult,
    Judgement,
    OodResult,
    ParamCounts,
    Result,
    ResultsError,
    ShuffledBpd,
    ShuffledBpdResult,
    ShuffledFid,
    TrainSummary,
)
from repro.tables.plausibility import Problem, result_problems, unverified_weights

R = TypeVar("R", bound=Result)

# A rerun of the stage is the fix for every unreadable result file.
_RERUN = "rerun the stage that writes it (dvc repro)"


class ResultFileError(ResultsError):
    """A result path that exists but is no readable JSON file (one line: the path and the fix)."""


def read_result_file(path: Path, kind: type[R]) -> R:
    """Read an existing result file, keeping non-finite numbers for :func:`result_problems`.

    NaN and infinity, which the schema refuses elsewhere, are read as they are, so that a table
    can still be built and mark only the cells of this file invalid.

    Args:
        path: A path that exists.
        kind: The result dataclass the path holds.

    Returns:
        The result, non-finite numbers included.

    Raises:
        ResultFileError: The path is a directory or not a regular file, cannot be read, or is
            not UTF-8 JSON.
        ResultsError: The JSON is not this kind of result.
    """
    return kind.from_json(_load_json(path), source=path, finite=False)


def _load_json(path: Path) -> Any:
    if path.is_dir():
        raise ResultFileError(f"{path}: is a directory, not a result file; remove it and {_RERUN}")
    if not path.is_file():
        raise ResultFileError(f"{path}: not a regular file (a broken link?); replace it: {_RERUN}")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ResultFileError(
            f"{path}: cannot be read ({error.strerror or error}); make it readable "
            f"(chmod a+r) or {_RERUN}"
        ) from None
    except UnicodeDecodeError:
        raise ResultFileError(f"{path}: not UTF-8 text (corrupt); delete it and {_RERUN}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ResultFileError(
            f"{path}: not valid JSON ({error.msg}, line {error.lineno}); delete it and {_RERUN}"
        ) from None


@dataclass(frozen=True)
class Measurement:
    """One reproduced number, the file it came from and that file's provenance.

    ``standard_error`` is the number's own uncertainty where its file records one (bpd: the
    standard error of the mean over the test images; FID: the standard deviation over seed
    sets); ``None`` for exact or single numbers and for files written before it was recorded.
    ``problems`` names the impossible values of its file(s) (:func:`result_problems`): a number
    with any is never shown or compared. ``unverified``
    says what the number rests on that the suite could not verify (:func:`unverified_weights`):
    it is shown, never compared.
    """

    value: float
    source: Path
    provenance: Provenance
    extras: Mapping[str, float | int | str] = field(default_factory=dict)
    standard_error: float | None = None
    problems: tuple[Problem, ...] = ()
    unverified: str | None = None


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
            # Only an absent path is "not run": a directory or a broken link there is an error.
            present = path.exists() or path.is_symlink()
            self._files[path] = self._parse(path, kind) if present else None
        return self._files[path]

    def _parse(self, path: Path, kind: type[R]) -> R:
        result = read_result_file(path, kind)
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
            result.bpd,
            path,
            result.provenance,
            extras,
            standard_error=result.bpd_standard_error,
            problems=_problems(path, result),
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
        return Measurement(
            result.train_hours, path, result.provenance, extras, problems=_problems(path, result)
        )

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
            result.fid,
            path,
            result.provenance,
            extras,
            standard_error=result.fid_spread,
            problems=_problems(path, result),
            unverified=unverified_weights(result),
        )

    def ood(self, experiment: str) -> OodResult | None:
        """A run's out-of-distribution detection result as read (every set's auROCs), or
        ``None`` if not computed; :mod:`repro.tables.ood` turns it into measurements."""
        return self._run_result(experiment, self.layout.run(experiment).ood, OodResult)

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

    def calibration_fid(self, patch: int) -> Measurement | None:
        """The FID calibration's FID of the test split shuffled in ``patch``×``patch`` patches,
        or ``None`` if it was not computed (or not for that patch size).

        Its extras hold the KID, the dataset, the image side (``image_size``: that patch size
        leaves the images unshuffled) and the images compared (``test_images``,
        ``reference_images``).

        Raises:
            ResultsError: Also when the file lists the patch size twice.
        """
        path = self.layout.calibration
        result = self._read(path, CalibrationResult)
        entry = None if result is None else _patch_entry(path, result.patches, patch)
        if result is None or entry is None:
            return None
        extras = {
            "kid_mean": entry.kid_mean,
            "kid_std": entry.kid_std,
            "dataset": result.dataset,
            "image_size": result.image_size,
            "test_images": result.test_images,
            "reference_images": result.reference.count,
        }
        return Measurement(
            entry.fid,
            path,
            result.provenance,
            extras,
            problems=_problems(path, result) + _entry_problems(path, entry),
            unverified=unverified_weights(result),
        )

    def shuffled_bpd(self, experiment: str, patch: int) -> Measurement | None:
        """A run's bpd of its test images shuffled in ``patch``×``patch`` patches, or ``None``
        if it was not computed (or not for that patch size).

        Raises:
            ResultsError: Also when the file lists the patch size twice.
        """
        path = self.layout.run(experiment).shuffled_bpd
        result = self._run_result(experiment, path, ShuffledBpdResult)
        entry = None if result is None else _patch_entry(path, result.patches, patch)
        if result is None or entry is None:
            return None
        extras = {"num_images": result.num_images, "checkpoint": result.checkpoint}
        return Measurement(
            entry.bpd,
            path,
            result.provenance,
            extras,
            standard_error=entry.bpd_standard_error,
            problems=_problems(path, result) + _entry_problems(path, entry),
        )


def _patch_entry(
    path: Path, entries: list[ShuffledFid] | list[ShuffledBpd], patch: int
) -> ShuffledFid | ShuffledBpd | None:
    """The entry of one patch size in a per-patch result (None: not computed)."""
    matches = [entry for entry in entries if entry.patch == patch]
    if len(matches) > 1:
        raise ResultsError(f"{path}: patches list k = {patch} {len(matches)} times; list it once")
    return matches[0] if matches else None


def _entry_problems(path: Path, entry: ShuffledFid | ShuffledBpd) -> tuple[Problem, ...]:
    """The impossible values of one patch size's entry, named with its k."""
    return tuple(Problem(path, f"k={entry.patch}: {text}") for text in result_problems(entry))


def _problems(path: Path, result: Result) -> tuple[Problem, ...]:
    """The impossible values of a result, each with its file (a sum may rest on two)."""
    return tuple(Problem(path, text) for text in result_problems(result))


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
