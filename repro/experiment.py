"""The resolved configuration of one experiment: a typed dataclass per ``params.yaml`` section.

Every field's type, with the range of every number (:class:`mrcnf.bounds.Interval` metadata), is
the one declaration of what a setting may hold: :mod:`repro.config` reads ``params.yaml`` into
these, checkpoints read their stored configuration back through them, and the constructors check
the ranges again. The model and solver sections are the library's own settings
(:mod:`mrcnf.config`), so a new model option is one field there plus its line in ``params.yaml``.
Nothing here imports torch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from mrcnf.bounds import (
    Interval,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    check_ranges,
)
from mrcnf.config import MRCNFConfig, SolverOptions

# Settings of MRCNFConfig that the model section does not hold: the channels come from the
# dataset, the solvers from the solver section.
_SUPPLIED_ELSEWHERE = ("channels", "train_solver", "eval_solver")

# Sampling temperatures (fid.temperatures, repro sample and repro eval fid --temperature): T = 0
# decodes every seed to the same image, and beyond 2 the latents lie far outside what the flow
# was trained on (the paper samples at 0.5 to 1).
TEMPERATURES = Interval(low=0, high=2, low_open=True)
Temperature = Annotated[float, TEMPERATURES]
# Batches in training, evaluation and sampling: far more images than a GPU holds the
# activations of for these models, so a larger value can only be a typo.
BATCH_SIZES = Interval(low=1, high=65_536)
BatchSize = Annotated[int, BATCH_SIZES]
# Seeds key torch generators (manual_seed: 64 bits) and numpy's SeedSequence (no negative
# keys); FID image i uses seed + i, stored as int64 in the samples' .npz. Below 2**62 every seed
# derived from one stays within int64, whatever the sample count.
SEEDS = Interval(low=0, high=2**62, high_open=True)
Seed = Annotated[int, SEEDS]
# FID (and KID) compare sample statistics: at least 2 images for a covariance. Every set's
# samples are held in host memory as uint8: 200,000 (four times the usual 50,000) ImageNet64
# images are 2.5 GB, ImageNet128 ones 10 GB.
FID_SAMPLES = Interval(low=2, high=200_000)
# Each seed set is another full sampling run and another num_samples images in memory; 10 sets
# give a spread of the FID.
SEED_SETS = Interval(low=1, high=10)


@dataclass(frozen=True)
class DataConfig:
    dataset: str
    image_size: PositiveInt | None = None
    """Which sizes a dataset can be reduced to (its native size over a power of two) is checked
    when its images are loaded."""
    limit_train: PositiveInt | None = None
    limit_test: PositiveInt | None = None
    horizontal_flip: bool = False
    held_out_images: NonNegativeInt = 0
    """Images removed from the end of the training split to judge the best checkpoint on
    (``training.validation.images: held_out``); an epoch is then shorter by as many images."""

    def __post_init__(self) -> None:
        check_ranges(self)


def _model_section() -> type:
    """``MRCNFConfig`` without the settings supplied elsewhere: the ``model`` section's schema."""
    hints = typing.get_type_hints(MRCNFConfig, include_extras=True)
    fields = []
    for declared in dataclasses.fields(MRCNFConfig):
        if declared.name in _SUPPLIED_ELSEWHERE:
            continue
        default = {}
        if declared.default is not dataclasses.MISSING:
            default = {"default": declared.default}
        elif declared.default_factory is not dataclasses.MISSING:
            default = {"default_factory": declared.default_factory}
        fields.append((declared.name, hints[declared.name], dataclasses.field(**default)))

    def validate(section: Any) -> None:
        # The library's own checks, on a configuration completed with a valid channel count.
        MRCNFConfig(channels=1, **dataclasses.asdict(section))

    namespace = {"__post_init__": validate}
    return dataclasses.make_dataclass("ModelConfig", fields, frozen=True, namespace=namespace)


ModelConfig = _model_section()


@dataclass(frozen=True)
class SolversConfig:
    train: SolverOptions
    eval: SolverOptions


@dataclass(frozen=True)
class LossConfig:
    """RNODE's regularisation weights (0: the term is left out of the loss)."""

    kinetic_energy: NonNegativeFloat
    jacobian_frobenius: NonNegativeFloat

    def __post_init__(self) -> None:
        check_ranges(self)


@dataclass(frozen=True)
class OptimizerConfig:
    """Adam's learning rate and the authors' gradient rules."""

    lr: PositiveFloat
    warmup_iterations: NonNegativeInt
    """Linear warm-up over this many iterations (0: the full rate from the first)."""
    grad_clip: PositiveFloat
    """The gradient norm is clipped to this."""
    skip_grad_norm: PositiveFloat
    """A step whose gradient norm (before clipping) is at least this is skipped."""
    max_consecutive_skips: NonNegativeInt
    """Training stops after more consecutive skipped steps than this (0: at the first)."""

    def __post_init__(self) -> None:
        check_ranges(self)


@dataclass(frozen=True)
class ValidationConfig:
    """How training judges the ``best`` checkpoint (its bpd under the evaluation solver)."""

    every_epochs: PositiveFloat = 2.0
    # Not "on": YAML 1.1 reads that key as the boolean true.
    images: Literal["test", "held_out"] = "test"
    dequantization: Literal["bin_centre", "uniform"] = "bin_centre"

    def __post_init__(self) -> None:
        check_ranges(self)


# A level named by its place: the finest (level 0) or the coarsest; integers count from the finest.
LevelName = Literal["finest", "coarsest"]


@dataclass(frozen=True)
class TrainingConfig:
    """Training settings; ``time_budget_hours`` is a number of hours once the experiment is
    resolved (``published``: the hours Table 5 prints for the experiment's cell;
    ``published_beyond_parent``: those less the hours of the ``init_from`` experiment's cell)."""

    batch_size: BatchSize
    epochs: PositiveInt
    seed: Seed
    accumulation_steps: PositiveInt = 1
    max_iterations: PositiveInt | None = None
    time_budget_hours: PositiveFloat | Literal["published", "published_beyond_parent"] | None = None
    checkpoint_every_iterations: PositiveInt = 1000
    checkpoint_every_minutes: PositiveFloat = 30.0
    validation: ValidationConfig = ValidationConfig()
    init_from: str | None = None
    """Another experiment whose trained levels start this one's, matched by resolution."""
    train_levels: Literal["all"] | list[LevelName | NonNegativeInt] = "all"
    """The levels trained; the others keep their initial (``init_from``) weights. Indices count
    from the finest level, 0; that they lie inside the model is checked with its resolutions."""
    coarse_noise: Literal["shared", "per_level"] = "shared"
    """Coarse levels from the finest level's dequantised image, or each from its own
    dequantisation of the 8-bit image (the authors' code)."""

    def __post_init__(self) -> None:
        check_ranges(self)
        if self.train_levels == []:
            raise ValueError("train_levels names no level: name at least one, or use 'all'")
        if self.train_levels != "all" and self.init_from is None:
            raise ValueError(
                "train_levels other than 'all' need init_from: levels not trained would keep "
                "their random initialisation"
            )


@dataclass(frozen=True)
class EvaluationConfig:
    batch_size: BatchSize
    seed: Seed = 0
    checkpoint: Literal["best", "last"] = "last"
    """The checkpoint that bpd, samples and FID are computed from (``best``: the lowest
    validation bpd, see :class:`ValidationConfig`)."""

    def __post_init__(self) -> None:
        check_ranges(self)


@dataclass(frozen=True)
class FidConfig:
    temperatures: list[Temperature]
    num_samples: Annotated[int, FID_SAMPLES]
    batch_size: BatchSize
    reference_images: Annotated[int, Interval(low=2)] | None = None
    """Training images whose statistics the samples are compared with (FID needs 2 or more;
    null: the whole training split)."""
    seed: Seed = 0
    seed_sets: Annotated[int, SEED_SETS] = 1
    """Sample sets on disjoint seed ranges (set k: seeds from seed + k·num_samples); the first
    gives FID and KID, every set's FID their spread (1: one set, the usual protocol)."""

    def __post_init__(self) -> None:
        check_ranges(self)


@dataclass(frozen=True)
class Table5Cell:
    """A published cell of bpd, params and hours an experiment reproduces: a row (model) and a
    dataset, of Table 5 or of the transform ablation, which has Table 5's layout."""

    model: str
    dataset: str


@dataclass(frozen=True)
class PaperCells:
    """Where an experiment's numbers appear in the paper."""

    table5: Table5Cell | None = None
    ablation: Table5Cell | None = None
    """Its cell of the transform ablation (Haar vs MRCNF, with and without multi-resolution
    noise); the MRCNF rows with the noise are Table 5's experiments themselves."""


@dataclass(frozen=True)
class Experiment:
    """The resolved configuration of one experiment under one profile."""

    id: str
    profile: str
    data: DataConfig
    model: ModelConfig
    solver: SolversConfig
    loss: LossConfig
    optimizer: OptimizerConfig
    training: TrainingConfig
    evaluation: EvaluationConfig
    fid: FidConfig
    paper: PaperCells = PaperCells()

    def __post_init__(self) -> None:
        if self.training.validation.images == "held_out" and not self.data.held_out_images:
            raise ValueError(
                "training.validation.images is held_out, but data.held_out_images is 0: set the "
                "number of training images to hold out"
            )

    def to_dict(self) -> dict[str, Any]:
        """The configuration as plain JSON-serialisable data."""
        return dataclasses.asdict(self)

    def sections(self, *names: str) -> dict[str, Any]:
        """Some sections of the configuration as plain data: what a result records of the
        settings it was computed with."""
        return {name: dataclasses.asdict(getattr(self, name)) for name in names}

    def params_hash(self) -> str:
        """A short hash of the resolved configuration, for provenance."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def model_config(self, *, channels: int) -> MRCNFConfig:
        """The library configuration of this experiment's model for images of ``channels``."""
        return MRCNFConfig(
            channels=channels,
            **dataclasses.asdict(self.model),
            train_solver=self.solver.train,
            eval_solver=self.solver.eval,
        )


@dataclass(frozen=True)
class CalibrationConfig:
    """The FID calibration (docs/method.md §8): a dataset's test split, its pixels shuffled in
    k×k patches, against its training split; no model is involved. That each patch size divides
    the images' side is checked when ``params.yaml`` is read (``Params.calibration``).
    """

    dataset: str
    patches: list[PositiveInt]
    """Patch sides k; the images' own side is the unshuffled test split."""
    seed: Seed
    """Test image i is shuffled with its own permutation, drawn from seed + i."""
    batch_size: BatchSize
    """Images per Inception forward pass (does not change the features)."""
    image_size: PositiveInt | None = None
    """null: the dataset's native size."""
    test_images: Annotated[int, FID_SAMPLES] | None = None
    """The first this many test images (null: the whole test split)."""
    reference_images: Annotated[int, Interval(low=2)] | None = None
    """The first this many training images (null: the whole training split)."""

    def __post_init__(self) -> None:
        check_ranges(self)
        if not self.patches:
            raise ValueError("patches names no patch size: list at least one")
        if len(set(self.patches)) != len(self.patches):
            raise ValueError(f"patches lists a size twice: {self.patches}")
