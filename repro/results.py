"""Every result file the suite writes, each declared once as a dataclass that writes and reads it.

Writers (training, evaluation, FID, parameter counts) build these dataclasses and
:func:`write_result` them; the tables read them back with :meth:`Result.read`. A result is
written twice: the whole of it, with its provenance (``<name>.json``), and its numbers alone
(``<name>.metrics.json``, what ``dvc metrics show`` prints), both atomically. Nothing here imports
torch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

from repro.errors import ReproError
from repro.files import write_json
from repro.provenance import NumericsSpan, Provenance
from repro.schema import SchemaError, from_mapping, to_plain

R = TypeVar("R", bound="Result")
StoppedBy = Literal["max_iterations", "max_epochs", "time_budget"]


class ResultsError(ReproError):
    """A results file is malformed or belongs elsewhere (one-line message naming the file)."""


class Result:
    """What every result dataclass shares: its JSON form and its numeric metrics.

    Fields added after a kind of result was first written have defaults, so older files still read.
    """

    # The fields a user compares across runs: the only ones DVC shows as metrics.
    METRICS: ClassVar[tuple[str, ...]] = ()
    provenance: Provenance

    def to_json(self) -> dict[str, Any]:
        return to_plain(self)

    def metrics(self) -> dict[str, float | int]:
        return {name: getattr(self, name) for name in self.METRICS}

    @classmethod
    def from_json(cls: type[R], data: Any, *, source: Path, finite: bool = True) -> R:
        """Build the result from parsed JSON, checking every field.

        Args:
            data: The parsed JSON.
            source: The file it came from, for messages.
            finite: Refuse NaN and infinity; off, they are kept for the tables to mark.

        Raises:
            ResultsError: A field is missing, unknown or of the wrong type, naming ``source``.
        """
        try:
            return from_mapping(cls, data, finite=finite)
        except SchemaError as error:
            raise ResultsError(f"{source}: {error}") from None

    @classmethod
    def read(cls: type[R], path: Path) -> R:
        """Read a result file.

        Raises:
            ResultsError: The file is unreadable, not JSON, or not this kind of result.
        """
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ResultsError(f"{path}: not readable JSON ({error})") from None
        return cls.from_json(data, source=path)


def metrics_path(path: Path) -> Path:
    """The numbers-only companion of a result: ``eval_bpd.json`` -> ``eval_bpd.metrics.json``."""
    return path.with_name(f"{path.name.removesuffix('.json')}.metrics.json")


def write_result(path: Path, result: Result, *, metrics: Path | None = None) -> None:
    """Write ``result`` to ``path`` and its numbers to ``metrics`` (default:
    :func:`metrics_path`), each atomically."""
    write_json(path, result.to_json())
    write_json(metrics or metrics_path(path), result.metrics())


@dataclass(frozen=True)
class TrainSummary(Result):
    """How a training run ended (``train_summary.json``)."""

    METRICS: ClassVar[tuple[str, ...]] = ("train_hours", "seconds_per_iteration", "iterations")
    experiment: str
    profile: str
    iterations: int
    epochs: float
    train_hours: float
    seconds_per_iteration: float
    stopped_by: StoppedBy
    provenance: Provenance
    time_budget_hours: float | None = None
    final_bpd: float | None = None
    processes: int = 1
    # More than one span: the run was resumed under other numerics, as asked for.
    numerics_history: list[NumericsSpan] | None = None
    # The checkpoint with the lowest validation bpd (training.validation); None before
    # validation was recorded.
    best_iteration: int | None = None
    best_validation_bpd: float | None = None
    # A progressive run: the experiment its levels started from, and the levels it trained.
    init_from: str | None = None
    trained_levels: list[int] | None = None


@dataclass(frozen=True)
class Judgement:
    """How a run's ``best`` checkpoint was chosen, as its stored configuration says
    (``training.validation``; ``held_out_images`` from its data section)."""

    images: Literal["test", "held_out"]
    every_epochs: float
    dequantization: Literal["bin_centre", "uniform"]
    held_out_images: int = 0


@dataclass(frozen=True)
class BpdResult(Result):
    """Bits per dimension on a test split (``eval_bpd.json``).

    ``bpd_per_resolution`` holds each level's contribution, finest first; with 8 added (the bits
    of the 256 dequantisation bins) their sum is ``bpd``. ``bpd_standard_error`` and
    ``bpd_bin_centre_standard_error`` are the standard errors of the two means over the test
    images, sqrt(sample variance / N) (None in files written before they were recorded, or for
    a single image).

    ``checkpoint`` is the checkpoint scored (``best`` or ``last``, ``evaluation.checkpoint``),
    saved at training iteration ``checkpoint_iteration``; ``judged_by`` says how a ``best``
    checkpoint was chosen (None for ``last``). ``exact_end`` is the evaluation
    solver's setting that gave ``bpd``; ``bpd_interpolated_end`` and ``bpd_exact_end`` are the
    uniform bpd with the solver interpolating back from past t = 1 (torchdiffeq's Runge–Kutta
    default, the authors') and with a step ending exactly at t = 1 (None in older files).
    """

    METRICS: ClassVar[tuple[str, ...]] = (
        "bpd",
        "bpd_bin_centre",
        "nfe_mean",
        "bpd_standard_error",
    )
    experiment: str
    profile: str
    bpd: float
    bpd_bin_centre: float
    bpd_per_resolution: list[float]
    num_images: int
    nfe_mean: float
    images_per_second: float
    provenance: Provenance
    checkpoint: str = "last"
    processes: int = 1
    bpd_standard_error: float | None = None
    bpd_bin_centre_standard_error: float | None = None
    checkpoint_iteration: int | None = None
    judged_by: Judgement | None = None
    exact_end: bool = False
    bpd_interpolated_end: float | None = None
    bpd_exact_end: float | None = None
    # The settings it was computed with (data, solver and evaluation sections; None in files
    # written before they were recorded).
    settings: dict[str, Any] | None = None


@dataclass(frozen=True)
class FidReference:
    dataset: str
    split: str
    count: int


@dataclass(frozen=True)
class FidExtractor:
    """The feature extractor a FID was computed with.

    Attributes:
        name: torch-fidelity's extractor.
        weights_sha256: Hex sha256 of the Inception weights file.
        weights_origin: Where the weights came from (``InceptionWeights.origin``).
        weights_verified: Whether the weights matched a pinned hash. Files written before the
            check existed lack the field; their weights were checked by layout only, so they
            read as unverified.
    """

    name: str
    weights_sha256: str
    weights_origin: str
    weights_verified: bool = False


@dataclass(frozen=True)
class FidResult(Result):
    """FID and KID of one temperature's samples against the training split (``fid/T<t>.json``).

    ``seeds`` is the half-open range of the samples' seeds, those of the first seed set, which
    ``fid``, ``kid_mean`` and ``kid_std`` describe. With several seed sets (``fid.seed_sets``),
    ``fid_seed_sets`` holds the FID of each, set k drawn from the next ``num_samples`` seeds
    (``seeds[0] + k·num_samples`` on), and ``fid_spread`` their sample standard deviation (None
    with one set, and in files written before seed sets existed).
    """

    METRICS: ClassVar[tuple[str, ...]] = ("fid", "kid_mean", "kid_std", "fid_spread")
    experiment: str
    profile: str
    temperature: float
    fid: float
    kid_mean: float
    kid_std: float
    num_samples: int
    provenance: Provenance
    seeds: list[int] | None = None
    reference: FidReference | None = None
    extractor: FidExtractor | None = None
    fid_seed_sets: list[float] | None = None
    fid_spread: float | None = None
    # The checkpoint sampled (evaluation.checkpoint) and its training iteration.
    checkpoint: str = "last"
    checkpoint_iteration: int | None = None
    # The settings it was computed with (data, solver, evaluation and fid sections; None in
    # files written before they were recorded).
    settings: dict[str, Any] | None = None


@dataclass(frozen=True)
class ParamCount:
    resolutions: int
    blocks: int
    width: int
    channels: int
    params: int


@dataclass(frozen=True)
class ParamCounts(Result):
    """Exact parameter counts of constructed models (``param_counts.json``)."""

    profile: str
    rows: list[ParamCount]
    provenance: Provenance

    def metrics(self) -> dict[str, float | int]:
        return {f"{r.resolutions}x{r.blocks}x{r.width}/c{r.channels}": r.params for r in self.rows}


@dataclass(frozen=True)
class ShuffledFid:
    """FID and KID of the test images shuffled in ``patch``×``patch`` patches."""

    patch: int
    fid: float
    kid_mean: float
    kid_std: float


@dataclass(frozen=True)
class CalibrationResult(Result):
    """The FID calibration (``calibration/fid_shuffled.json``): the test images shuffled in k×k
    patches (image i by seed + i) against the training split, per k; metrics as ``fid_k4``."""

    METRICS: ClassVar[tuple[str, ...]] = ("fid", "kid_mean", "kid_std")
    profile: str
    dataset: str
    image_size: int
    test_images: int
    seed: int
    patches: list[ShuffledFid]
    reference: FidReference
    extractor: FidExtractor
    provenance: Provenance
    settings: dict[str, Any]

    def metrics(self) -> dict[str, float | int]:
        return {f"{n}_k{e.patch}": getattr(e, n) for e in self.patches for n in self.METRICS}


@dataclass(frozen=True)
class ShuffledBpd:
    """Uniform-dequantisation bpd of the test images shuffled in ``patch``×``patch`` patches."""

    patch: int
    bpd: float
    bpd_standard_error: float | None
    bpd_per_resolution: list[float]


@dataclass(frozen=True)
class ShuffledBpdResult(Result):
    """A run's bpd of its test images shuffled as the calibration's (``shuffled_bpd.json``)."""

    METRICS: ClassVar[tuple[str, ...]] = ("bpd",)
    experiment: str
    profile: str
    num_images: int
    seed: int
    patches: list[ShuffledBpd]
    checkpoint: str
    checkpoint_iteration: int
    provenance: Provenance
    settings: dict[str, Any]

    def metrics(self) -> dict[str, float | int]:
        return {f"{n}_k{e.patch}": getattr(e, n) for e in self.patches for n in self.METRICS}


@dataclass(frozen=True)
class OodSetScores:
    """One out-of-distribution set (``name``, of ``repro.ood.sets``) filling the published
    ``column``; auROCs with its images positive, of bpd, S = bpd − L(x) and each level's term."""

    column: str
    name: str
    description: str
    num_images: int
    auroc_bpd: float
    auroc_S: float
    auroc_per_resolution: list[float]
    bpd: float
    code_length: float


@dataclass(frozen=True)
class OodResult(Result):
    """Out-of-distribution detection by a run (``ood.json``; per image: ``ood_scores.npz``)."""

    METRICS: ClassVar[tuple[str, ...]] = ("auroc_bpd", "auroc_S", "bpd")
    experiment: str
    profile: str
    dataset: str
    num_images: int
    bpd: float
    code_length: float
    bpd_per_resolution: list[float]
    sets: list[OodSetScores]
    codec: dict[str, str]
    checkpoint: str
    checkpoint_iteration: int
    provenance: Provenance
    settings: dict[str, Any]

    def metrics(self) -> dict[str, float | int]:
        named = {f"{m}_{s.column}": getattr(s, m) for s in self.sets for m in self.METRICS}
        return {"bpd": self.bpd, **named}
