"""The settings of an MRCNF: architecture and solvers, declared once and free of torch.

These dataclasses are the single declaration of every model and solver setting: the harness
validates its configuration files against them, so a new option is one field here. Importing this
module does not import torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal, get_args

# MRCNFSettingError is defined beside the ranges (which raise it) and is imported from here too.
from mrcnf.bounds import Interval, MRCNFSettingError, PositiveFloat, PositiveInt, check_ranges

# How the coarse image enters a conditional level's velocity network.
Conditioning = Literal["centred", "raw"]
# The base distribution of every level's latent.
LatentNoise = Literal["standard", "multiresolution"]

# The solver's states (z, log p) are of order 1 or more: a tolerance of 1 (absolute or relative)
# accepts an error as large as the state itself, so such a "solve" means nothing.
Tolerance = Annotated[float, Interval(low=0, high=1, low_open=True, high_open=True)]
# The logit transform maps [0, 1] to [α, 1 − α]: at α = 0.5 every pixel maps to one point.
LogitMargin = Annotated[float, Interval(low=0, high=0.5, high_open=True)]


# bosh3 with every sample's own steps (sampling only).
PER_SAMPLE = "bosh3_per_sample"
# Solvers that choose their steps: torchdiffeq's adaptive Runge–Kutta methods and PER_SAMPLE.
ADAPTIVE_METHODS = frozenset(
    {"adaptive_heun", "bosh3", "dopri5", "dopri8", "fehlberg2", PER_SAMPLE}
)


@dataclass(frozen=True)
class SolverOptions:
    """How to integrate one block.

    Attributes:
        method: A torchdiffeq solver name (``"bosh3"``, ``"dopri5"``, ``"rk4"``, …), or
            ``"bosh3_per_sample"``: bosh3 with every sample's own steps, so that a sample does not
            depend on its batch (sampling only).
        atol: Absolute tolerance on z and log p.
        rtol: Relative tolerance on z and log p.
        adjoint: Backpropagate with the adjoint method (constant memory, an extra solve) instead of
            directly through the solver's operations (faster when memory allows).
        step_size: Step of fixed-grid methods; ``None`` for adaptive ones.
        first_step: The first step an adaptive solver tries; ``None``: the solver's own guess.
        exact_end: Make an adaptive solver end a step exactly at the end of the interval.
            Otherwise torchdiffeq's Runge–Kutta solvers step past it and interpolate back
            (a lower-order estimate of the end state).

    Raises:
        MRCNFSettingError: A tolerance outside (0, 1), a step that is not positive, or
            ``first_step``/``exact_end`` given to a solver that does not choose its steps.
    """

    method: str = "bosh3"
    atol: Tolerance = 1e-3
    rtol: Tolerance = 1e-3
    adjoint: bool = False
    step_size: PositiveFloat | None = None
    first_step: PositiveFloat | None = None
    exact_end: bool = False

    def __post_init__(self) -> None:
        check_ranges(self)
        # A fixed grid has no step sequence to steer: asking for it is a mistake, not a no-op.
        steered = [name for name in ("first_step", "exact_end") if getattr(self, name)]
        if steered and not self.adaptive:
            methods = ", ".join(sorted(ADAPTIVE_METHODS))
            raise MRCNFSettingError(
                f"solver {steered[0]} needs an adaptive method ({methods}, without step_size), "
                f"got {self.method!r} with step_size {self.step_size}"
            )

    @property
    def adaptive(self) -> bool:
        """Whether the solver chooses its own steps (``first_step`` and ``exact_end`` apply)."""
        return self.step_size is None and self.method in ADAPTIVE_METHODS


@dataclass(frozen=True)
class MRCNFConfig:
    """Architecture and numerics of an MRCNF.

    Attributes:
        channels: Image channels (3 for RGB, 1 for grey).
        resolutions: Number of levels S (1: a plain single-resolution CNF).
        blocks: ODE blocks per resolution.
        width: Hidden width of the velocity networks.
        transform: ``"unimodular"`` (MRCNF) or ``"haar"`` (the paper's ablation).
        logit_alpha: Margin of the logit transform at the coarsest level (and of the details'
            with ``detail_logit``).
        detail_logit: Also map every level's details into [0, 1] (y·c/4 + ½, clamped: y/2 + ½
            for Haar) and take their logit, as the authors' code does for its Haar arm; off, a
            conditional level's CNF models the details themselves (the paper's definition).
        conditioning: How a conditional level sees its coarse image x ∈ [0, 1]: ``"centred"``
            (2x − 1) or ``"raw"`` (x, as the authors' code).
        latent_noise: ``"standard"``: every level's latent is N(0, I); ``"multiresolution"``:
            level s's latent is N(0, σ_s² I), σ_s the standard deviation that one unit-variance
            noise image at the finest level has at level s after the transform (the paper's
            "multi-resolution noise"; a fixed scale after each level's CNF, which leaves
            log-likelihoods, gradients and samples unchanged).
        divergence: A key of :data:`mrcnf.cnf.DIVERGENCES`: ``"hutchinson"`` (the network's own
            vector-Jacobian product), ``"hutchinson_autograd"`` (the same value from autograd,
            slower to train) or ``"exact"``.
        train_solver: Solver used in training mode (the paper: bosh3, 1e-3).
        eval_solver: Solver used in evaluation mode (the paper: bosh3, 1e-5).

    Raises:
        MRCNFSettingError: A size below 1, a logit margin outside [0, 0.5), or an unknown
            conditioning or latent noise.
    """

    channels: PositiveInt
    resolutions: PositiveInt
    blocks: PositiveInt
    width: PositiveInt = 64
    transform: str = "unimodular"
    logit_alpha: LogitMargin = 0.05
    divergence: str = "hutchinson"
    conditioning: Conditioning = "centred"
    latent_noise: LatentNoise = "standard"
    detail_logit: bool = False
    train_solver: SolverOptions = field(default_factory=SolverOptions)
    eval_solver: SolverOptions = field(default_factory=lambda: SolverOptions(atol=1e-5, rtol=1e-5))

    def __post_init__(self) -> None:
        check_ranges(self)
        choices = {
            "conditioning": Conditioning,
            "latent_noise": LatentNoise,
        }
        for name, kind in choices.items():
            if getattr(self, name) not in get_args(kind):
                raise MRCNFSettingError(
                    f"unknown {name} {getattr(self, name)!r}; choose one of {get_args(kind)}"
                )
