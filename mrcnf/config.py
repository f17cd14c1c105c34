"""The settings of an MRCNF: architecture and solvers, declared once and free of torch.

These dataclasses are the single declaration of every model and solver setting: the harness
validates its configuration files against them, so a new option is one field here. Importing this
module does not import torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class MRCNFSettingError(ValueError):
    """An invalid model or solver setting (one line naming the setting)."""


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
    """

    method: str = "bosh3"
    atol: float = 1e-3
    rtol: float = 1e-3
    adjoint: bool = False
    step_size: float | None = None

    def __post_init__(self) -> None:
        if not (self.atol > 0 and self.rtol > 0):
            raise MRCNFSettingError(f"solver tolerances must be positive, got {self}")
        if self.step_size is not None and not self.step_size > 0:
            raise MRCNFSettingError(f"solver step_size must be positive, got {self.step_size}")


@dataclass(frozen=True)
class MRCNFConfig:
    """Architecture and numerics of an MRCNF.

    Attributes:
        channels: Image channels (3 for RGB, 1 for grey).
        resolutions: Number of levels S (1: a plain single-resolution CNF).
        blocks: ODE blocks per resolution.
        width: Hidden width of the velocity networks.
        transform: ``"unimodular"`` (MRCNF) or ``"haar"`` (the paper's ablation).
        logit_alpha: Margin of the logit transform at the coarsest level.
        divergence: A key of :data:`mrcnf.cnf.DIVERGENCES`: ``"hutchinson"`` (the network's own
            vector-Jacobian product), ``"hutchinson_autograd"`` (the same value from autograd,
            slower to train) or ``"exact"``.
        train_solver: Solver used in training mode (the paper: bosh3, 1e-3).
        eval_solver: Solver used in evaluation mode (the paper: bosh3, 1e-5).

    Raises:
        MRCNFSettingError: A size that is not positive, or a logit margin outside [0, 0.5).
    """

    channels: int
    resolutions: int
    blocks: int
    width: int = 64
    transform: str = "unimodular"
    logit_alpha: float = 0.05
    divergence: str = "hutchinson"
    train_solver: SolverOptions = field(default_factory=SolverOptions)
    eval_solver: SolverOptions = field(default_factory=lambda: SolverOptions(atol=1e-5, rtol=1e-5))

    def __post_init__(self) -> None:
        sizes = {
            name: getattr(self, name) for name in ("channels", "resolutions", "blocks", "width")
        }
        for name, value in sizes.items():
            if value < 1:
                raise MRCNFSettingError(f"{name} must be positive, got {value}")
        if not 0 <= self.logit_alpha < 0.5:
            raise MRCNFSettingError(f"logit_alpha must lie in [0, 0.5), got {self.logit_alpha}")
