"""The multi-resolution continuous normalizing flow (docs/method.md §1, §2, §5).

Levels are indexed from the finest: level 0 is the image itself, level s+1 its 2×2 average. The
coarsest level's CNF models the logit of the coarsest image; every other level's CNF models the
details of level s conditioned on the image of level s+1::

    log p(x) = log p(x_{S-1}) + Σ_{s<S-1} log p(y_s | x_{s+1})  (+ the Haar log-det, if used)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from mrcnf.cnf import CNF, DIVERGENCES, BlockDynamics
from mrcnf.config import MRCNFConfig, MRCNFSettingError, SolverOptions
from mrcnf.likelihood import (
    bits_per_dim,
    inverse_logit_transform,
    logit_transform,
    standard_normal_log_prob,
)
from mrcnf.transform import get_transform, merge, split


@dataclass
class Density:
    """The result of :meth:`MRCNF.density` for a batch.

    Attributes:
        log_prob: (B,) log p(x) in nats, x ∈ [0, 1]^D.
        log_prob_terms: (B,) terms per level, finest first; they sum to ``log_prob``.
        latents: The latent of every level, finest first.
        kinetic_energy: (B,) RNODE kinetic energy summed over blocks and levels.
        jacobian_frobenius: (B,) RNODE Jacobian-Frobenius term summed likewise.
        dimensions: D = C·H·W of the finest image.
    """

    log_prob: Tensor
    log_prob_terms: list[Tensor]
    latents: list[Tensor]
    kinetic_energy: Tensor
    jacobian_frobenius: Tensor
    dimensions: int

    def bits_per_dim(self) -> Tensor:
        """(B,) bits per dimension of the 8-bit images this density was evaluated on."""
        return bits_per_dim(self.log_prob, self.dimensions)

    def bits_per_dim_terms(self) -> list[Tensor]:
        """(B,) contribution of every level to bits per dimension, finest first (without the +8)."""
        return [-term / (self.dimensions * math.log(2)) for term in self.log_prob_terms]


class MRCNF(nn.Module):
    """Multi-resolution continuous normalizing flow.

    Args:
        config: Architecture and numerics.

    Raises:
        MRCNFSettingError: If ``config`` names an unknown transform or divergence.
    """

    def __init__(self, config: MRCNFConfig) -> None:
        super().__init__()
        if config.divergence not in DIVERGENCES:
            raise MRCNFSettingError(
                f"unknown divergence {config.divergence!r}; choose one of {sorted(DIVERGENCES)}"
            )
        self.config = config
        self._log_abs_det = get_transform(config.transform).log_abs_det
        c, width, blocks = config.channels, config.width, config.blocks
        conditional = [
            CNF(3 * c, blocks=blocks, width=width, cond_channels=c)
            for _ in range(config.resolutions - 1)
        ]
        self.flows = nn.ModuleList([*conditional, CNF(c, blocks=blocks, width=width)])

    @property
    def solver(self) -> SolverOptions:
        """The solver of the current mode (training or evaluation)."""
        return self.config.train_solver if self.training else self.config.eval_solver

    def _check_size(self, height: int, width: int) -> None:
        factor = 2 ** (self.config.resolutions - 1)
        if height % factor or width % factor:
            raise MRCNFSettingError(
                f"{self.config.resolutions} resolutions need image sizes divisible by {factor}, "
                f"got {height}×{width}"
            )

    def pyramid(self, x: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        """Images of every level (finest first) and the details of every level but the coarsest."""
        self._check_size(*x.shape[-2:])
        images, details = [x], []
        for _ in range(self.config.resolutions - 1):
            coarse, detail = split(images[-1], kind=self.config.transform)
            images.append(coarse)
            details.append(detail)
        return images, details

    @staticmethod
    def _condition(coarse: Tensor) -> Tensor:
        # Centre the [0, 1] conditioning image so the first layer sees zero-mean inputs.
        return 2 * coarse - 1

    def density(
        self,
        x: Tensor,
        *,
        regularize: bool | None = None,
        generator: torch.Generator | None = None,
    ) -> Density:
        """Exact log-density of continuous images (Hutchinson-estimated unless divergence is exact).

        Args:
            x: B×C×H×W images in [0, 1] (already dequantised).
            regularize: Integrate the RNODE regularisers (default: in training mode).
            generator: Source of the Hutchinson probes.

        Returns:
            Log-density, its per-level terms, latents and regularisers.
        """
        regularize = self.training if regularize is None else regularize
        images, details = self.pyramid(x)
        alpha, options = self.config.logit_alpha, self.solver
        flow_kwargs = dict(
            solver=options,
            divergence=self.config.divergence,
            regularize=regularize,
            generator=generator,
        )
        logits, logit_log_det = logit_transform(images[-1], alpha)
        inputs = [*details, logits]
        conds = [self._condition(image) for image in images[1:]] + [None]
        outputs = [
            flow(value, cond=cond, **flow_kwargs)
            for flow, value, cond in zip(self.flows, inputs, conds, strict=True)
        ]
        terms = []
        for level, out in enumerate(outputs):
            term = standard_normal_log_prob(out.z) + out.delta_log_prob
            if level < len(details):
                term = term + self._log_abs_det * images[level + 1][0].numel()
            else:
                term = term + logit_log_det
            terms.append(term)
        return Density(
            log_prob=torch.stack(terms).sum(0),
            log_prob_terms=terms,
            latents=[out.z for out in outputs],
            kinetic_energy=torch.stack([out.kinetic_energy for out in outputs]).sum(0),
            jacobian_frobenius=torch.stack([out.jacobian_frobenius for out in outputs]).sum(0),
            dimensions=x[0].numel(),
        )

    def forward(
        self,
        x: Tensor,
        *,
        regularize: bool | None = None,
        generator: torch.Generator | None = None,
    ) -> Density:
        """:meth:`density`, so that wrappers such as DistributedDataParallel can call the model."""
        return self.density(x, regularize=regularize, generator=generator)

    def sample(self, latents: Sequence[Tensor], *, solver: SolverOptions | None = None) -> Tensor:
        """Decode latents (finest first, as :attr:`Density.latents`) into continuous images.

        Args:
            latents: One B×… latent per level.
            solver: Overrides the current mode's solver (e.g. the per-sample solver).

        Returns:
            B×C×H×W images, approximately in [0, 1] and not clamped, so that
            ``sample(density(x).latents) ≈ x``.
        """
        if len(latents) != self.config.resolutions:
            raise ValueError(f"expected {self.config.resolutions} latents, got {len(latents)}")
        solver = solver or self.solver
        coarsest = self.flows[-1].inverse(latents[-1], solver=solver)
        x = inverse_logit_transform(coarsest, self.config.logit_alpha)
        for level in reversed(range(self.config.resolutions - 1)):
            cond = self._condition(x)
            detail = self.flows[level].inverse(latents[level], solver=solver, cond=cond)
            x = merge(x, detail, kind=self.config.transform)
        return x

    def latent_shapes(self, height: int, width: int) -> list[tuple[int, int, int]]:
        """Shapes (C×H×W, without batch) of every level's latent, finest first."""
        self._check_size(height, width)
        c = self.config.channels
        shapes = [
            (3 * c, height >> (level + 1), width >> (level + 1))
            for level in range(self.config.resolutions - 1)
        ]
        last = self.config.resolutions - 1
        return [*shapes, (c, height >> last, width >> last)]

    def prior_latents(
        self,
        seeds: Sequence[int],
        *,
        height: int,
        width: int,
        temperature: float,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> list[Tensor]:
        """Latents z ~ N(0, T²·I), drawn image by image from each image's own seed.

        Every image's noise comes from a CPU generator seeded with its seed, so a sample depends
        on its seed only, not on the batch it is drawn in or the device it is decoded on.
        """
        shapes = self.latent_shapes(height, width)
        per_image = []
        for seed in seeds:
            generator = torch.Generator().manual_seed(int(seed))
            per_image.append([torch.randn(shape, generator=generator) for shape in shapes])
        return [
            (torch.stack(level) * temperature).to(device=device, dtype=dtype)
            for level in zip(*per_image, strict=True)
        ]

    @property
    def blocks(self) -> list[BlockDynamics]:
        """Every ODE block, finest level first."""
        return [block for flow in self.flows for block in flow.blocks]

    @property
    def function_evaluations(self) -> int:
        """Velocity-network evaluations since the last :meth:`reset_function_evaluations`."""
        return sum(block.nfe for block in self.blocks)

    def reset_function_evaluations(self) -> None:
        """Set every block's evaluation counter to zero."""
        for block in self.blocks:
            block.nfe = 0


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters of a constructed module."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
