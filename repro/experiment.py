"""The resolved configuration of one experiment: a typed dataclass per ``params.yaml`` section.

Every field's type (and, in ``__post_init__``, its range) is the one declaration of what a
setting may hold: :mod:`repro.config` reads ``params.yaml`` into these, checkpoints read their
stored configuration back through them. The model and solver sections are the library's own
settings (:mod:`mrcnf.config`), so a new model option is one field there plus its line in
``params.yaml``. Nothing here imports torch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from dataclasses import dataclass
from typing import Any, Literal

from mrcnf.config import MRCNFConfig, SolverOptions

# Settings of MRCNFConfig that the model section does not hold: the channels come from the
# dataset, the solvers from the solver section.
_SUPPLIED_ELSEWHERE = ("channels", "train_solver", "eval_solver")


@dataclass(frozen=True)
class DataConfig:
    dataset: str
    image_size: int | None = None
    limit_train: int | None = None
    limit_test: int | None = None
    horizontal_flip: bool = False
    held_out_images: int = 0
    """Images removed from the end of the training split to judge the best checkpoint on
    (``training.validation.images: held_out``); an epoch is then shorter by as many images."""

    def __post_init__(self) -> None:
        if self.held_out_images < 0:
            raise ValueError(f"held_out_images must be ≥ 0, got {self.held_out_images}")


def _model_section() -> type:
    """``MRCNFConfig`` without the settings supplied elsewhere: the ``model`` section's schema."""
    hints = typing.get_type_hints(MRCNFConfig)
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
    kinetic_energy: float
    jacobian_frobenius: float


@dataclass(frozen=True)
class OptimizerConfig:
    lr: float
    warmup_iterations: int
    grad_clip: float
    skip_grad_norm: float
    max_consecutive_skips: int


@dataclass(frozen=True)
class ValidationConfig:
    """How training judges the ``best`` checkpoint (its bpd under the evaluation solver)."""

    every_epochs: float = 2.0
    # Not "on": YAML 1.1 reads that key as the boolean true.
    images: Literal["test", "held_out"] = "test"
    dequantization: Literal["bin_centre", "uniform"] = "bin_centre"

    def __post_init__(self) -> None:
        if not self.every_epochs > 0:
            raise ValueError(f"every_epochs must be positive, got {self.every_epochs}")


# A level named by its place: the finest (level 0) or the coarsest; integers count from the finest.
LevelName = Literal["finest", "coarsest"]


@dataclass(frozen=True)
class TrainingConfig:
    """Training settings; ``time_budget_hours`` is a number of hours once the experiment is
    resolved (``published``: the hours Table 5 prints for the experiment's cell;
    ``published_beyond_parent``: those less the hours of the ``init_from`` experiment's cell)."""

    batch_size: int
    epochs: int
    seed: int
    accumulation_steps: int = 1
    max_iterations: int | None = None
    time_budget_hours: float | Literal["published", "published_beyond_parent"] | None = None
    checkpoint_every_iterations: int = 1000
    checkpoint_every_minutes: float = 30.0
    validation: ValidationConfig = ValidationConfig()
    init_from: str | None = None
    """Another experiment whose trained levels start this one's, matched by resolution."""
    train_levels: Literal["all"] | list[LevelName | int] = "all"
    """The levels trained; the others keep their initial (``init_from``) weights."""
    coarse_noise: Literal["shared", "per_level"] = "shared"
    """Coarse levels from the finest level's dequantised image, or each from its own
    dequantisation of the 8-bit image (the authors' code)."""

    def __post_init__(self) -> None:
        if min(self.batch_size, self.accumulation_steps, self.epochs) < 1:
            raise ValueError("batch_size, accumulation_steps and epochs must be positive")
        if self.train_levels == []:
            raise ValueError("train_levels names no level: name at least one, or use 'all'")
        if self.train_levels != "all" and self.init_from is None:
            raise ValueError(
                "train_levels other than 'all' need init_from: levels not trained would keep "
                "their random initialisation"
            )


@dataclass(frozen=True)
class EvaluationConfig:
    batch_size: int
    seed: int = 0
    checkpoint: Literal["best", "last"] = "last"
    """The checkpoint that bpd, samples and FID are computed from (``best``: the lowest
    validation bpd, see :class:`ValidationConfig`)."""


@dataclass(frozen=True)
class FidConfig:
    temperatures: list[float]
    num_samples: int
    batch_size: int
    reference_images: int | None = None
    seed: int = 0
    seed_sets: int = 1
    """Sample sets on disjoint seed ranges (set k: seeds from seed + k·num_samples); the first
    gives FID and KID, every set's FID their spread (1: one set, the usual protocol)."""


@dataclass(frozen=True)
class Table5Cell:
    """The published Table 5 cell an experiment reproduces."""

    model: str
    dataset: str


@dataclass(frozen=True)
class PaperCells:
    """Where an experiment's numbers appear in the paper."""

    table5: Table5Cell | None = None


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
