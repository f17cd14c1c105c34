"""The multi-resolution continuous normalizing flow (docs/method.md §1, §2, §5).

Levels are indexed from the finest: level 0 is the image itself, level s+1 its 2×2 average. The
coarsest level's CNF models the logit of the coarsest image; every other level's CNF models the
details of level s conditioned on the image of level s+1::

    log p(x) = log p(x_{S-1}) + Σ_{s<S-1} log p(y_s | x_{s+1})  (+ the Haar log-det, if used)

Each level's latent is its CNF's output times a fixed σ_s (1, or the multi-resolution noise's
spread), with base N(0, σ_s²·I).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from mrcnf.cnf import CNF, DIVERGENCES, BlockDynamics
from mrcnf.config import MRCNFConfig, MRCNFSettingError, SolverOptions
from mrcnf.likelihood import (
    bits_per_dim,
    inverse_logit_transform,
    logit_transform,
    multiresolution_noise_scales,
    normal_log_prob,
)
from mrcnf.per_sample import EAGER, PerSampleExecution
from mrcnf.transform import get_transform, merge, split


@dataclass
class Density:
    """The result of :meth:`MRCNF.density` for a batch.

    When only some levels are integrated (``levels``), every field but ``dimensions`` covers those
    levels only: ``log_prob`` is then the log-density of their variables given their conditioning
    images, not log p(x).

    Attributes:
        log_prob: (B,) log p(x) in nats, x ∈ [0, 1]^D (the chosen levels' share of it).
        log_prob_terms: (B,) terms per chosen level, finest first; they sum to ``log_prob``.
        latents: The latent z_s of every chosen level, finest first.
        kinetic_energy: (B,) RNODE kinetic energy summed over blocks and chosen levels.
        jacobian_frobenius: (B,) RNODE Jacobian-Frobenius term summed likewise.
        dimensions: D = C·H·W of the finest image.
        levels: The integrated levels, finest first.
    """

    log_prob: Tensor
    log_prob_terms: list[Tensor]
    latents: list[Tensor]
    kinetic_energy: Tensor
    jacobian_frobenius: Tensor
    dimensions: int
    levels: tuple[int, ...]

    def bits_per_dim(self) -> Tensor:
        """(B,) bits per dimension of the 8-bit images this density was evaluated on.

        With only some levels integrated, their share of it (per dimension of the whole image),
        plus 8.
        """
        return bits_per_dim(self.log_prob, self.dimensions)

    def bits_per_dim_terms(self) -> list[Tensor]:
        """(B,) contribution of every chosen level to bits per dimension (without the +8)."""
        return [-term / (self.dimensions * math.log(2)) for term in self.log_prob_terms]


@dataclass
class _LevelInput:
    """What one level's CNF sees for a batch.

    Attributes:
        value: The CNF's input: the level's details, or the logit of the coarsest image.
        cond: The conditioning network's input (``None`` at the coarsest level).
        log_det: The log-determinant this level adds: the transform's for details, the logit's
            for the coarsest image.
    """

    value: Tensor
    cond: Tensor | None
    log_det: Tensor | float


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

    @property
    def latent_scales(self) -> tuple[float, ...]:
        """Standard deviation σ_s of every level's latent, finest first (all 1 for "standard")."""
        if self.config.latent_noise == "standard":
            return (1.0,) * self.config.resolutions
        detail_scale = get_transform(self.config.transform).detail_scale
        return multiresolution_noise_scales(self.config.resolutions, detail_scale=detail_scale)

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

    def _condition(self, coarse: Tensor) -> Tensor:
        if self.config.conditioning == "raw":
            return coarse
        # Centre the [0, 1] conditioning image so the first layer sees zero-mean inputs.
        return 2 * coarse - 1

    def _level_inputs(self, x: Tensor) -> list[_LevelInput]:
        """Every level's CNF input, from one image (B×C×H×W) or one image per level (B×S×C×H×W)."""
        count = self.config.resolutions
        if x.dim() == 4:
            pyramids = [self.pyramid(x)] * count
        elif x.dim() == 5 and x.shape[1] == count:
            pyramids = [self.pyramid(copy) for copy in x.unbind(1)]
        else:
            raise MRCNFSettingError(
                f"density needs B×C×H×W images or B×{count}×C×H×W (one per level), "
                f"got shape {tuple(x.shape)}"
            )
        inputs = []
        for level, (images, details) in enumerate(pyramids[:-1]):
            value, log_det = self._detail_input(details[level])
            log_det = log_det + self._log_abs_det * images[level + 1][0].numel()
            inputs.append(_LevelInput(value, self._condition(images[level + 1]), log_det))
        logits, logit_log_det = logit_transform(pyramids[-1][0][-1], self.config.logit_alpha)
        return [*inputs, _LevelInput(logits, None, logit_log_det)]

    def _detail_input(self, details: Tensor) -> tuple[Tensor, Tensor | float]:
        """A level's details as its CNF sees them, with the log-determinant of the mapping."""
        if not self.config.detail_logit:
            return details, 0.0
        # |y| ≤ 4/c for pixels in [0, 1], so y·c/4 + ½ lies in [0, 1]; the clamp only catches
        # rounding at the ends, where the logit's margin keeps the value finite.
        quarter = get_transform(self.config.transform).detail_scale / 4
        unit = (details * quarter + 0.5).clamp(0, 1)
        logits, logit_log_det = logit_transform(unit, self.config.logit_alpha)
        return logits, logit_log_det + details[0].numel() * math.log(quarter)

    def _detail_output(self, value: Tensor) -> Tensor:
        """Invert :meth:`_detail_input`: the details from what a level's CNF decodes."""
        if not self.config.detail_logit:
            return value
        quarter = get_transform(self.config.transform).detail_scale / 4
        return (inverse_logit_transform(value, self.config.logit_alpha) - 0.5) / quarter

    def _chosen_levels(self, levels: Sequence[int] | None) -> tuple[int, ...]:
        count = self.config.resolutions
        if levels is None:
            return tuple(range(count))
        chosen = tuple(sorted(set(levels)))
        if not chosen or len(chosen) != len(levels) or chosen[0] < 0 or chosen[-1] >= count:
            raise MRCNFSettingError(
                f"levels must name distinct levels among 0…{count - 1} (0 = finest), got {levels}"
            )
        return chosen

    def density(
        self,
        x: Tensor,
        *,
        regularize: bool | None = None,
        generator: torch.Generator | None = None,
        levels: Sequence[int] | None = None,
    ) -> Density:
        """Exact log-density of continuous images (Hutchinson-estimated unless divergence is exact).

        Each level's latent is z_s = σ_s·u_s (:attr:`latent_scales`, u_s its CNF's output) with
        base N(0, σ_s²·I); the scale's log-determinant cancels that of the base.

        Args:
            x: B×C×H×W images in [0, 1] (already dequantised), or B×S×C×H×W: one image per level,
                level s's input and conditioning image both coming from ``x[:, s]`` (the authors'
                fresh dequantisation noise per level).
            regularize: Integrate the RNODE regularisers (default: in training mode).
            generator: Source of the Hutchinson probes.
            levels: Integrate only these levels' CNFs (default: all). The probes of the others are
                drawn all the same, so a level's probes do not depend on which levels are chosen.

        Returns:
            Log-density, its per-level terms, latents and regularisers, of the chosen levels.

        Raises:
            MRCNFSettingError: A shape of ``x`` other than these, an image size the levels do not
                divide, or ``levels`` naming a level outside the model (or one twice).
        """
        regularize = self.training if regularize is None else regularize
        chosen = self._chosen_levels(levels)
        flow_kwargs = dict(
            solver=self.solver,
            divergence=self.config.divergence,
            regularize=regularize,
            generator=generator,
        )
        terms, latents, outputs = [], [], []
        per_level = zip(self.flows, self._level_inputs(x), self.latent_scales, strict=True)
        for level, (flow, given, scale) in enumerate(per_level):
            if level not in chosen:
                # Drawn and dropped, so that the probes of the chosen levels stay the same.
                flow.draw_probes(given.value, generator=generator)
                continue
            out = flow(given.value, cond=given.cond, **flow_kwargs)
            z = scale * out.z
            scale_log_det = z[0].numel() * math.log(scale)
            terms.append(
                normal_log_prob(z, scale) + scale_log_det + out.delta_log_prob + given.log_det
            )
            latents.append(z)
            outputs.append(out)
        return Density(
            log_prob=torch.stack(terms).sum(0),
            log_prob_terms=terms,
            latents=latents,
            kinetic_energy=torch.stack([out.kinetic_energy for out in outputs]).sum(0),
            jacobian_frobenius=torch.stack([out.jacobian_frobenius for out in outputs]).sum(0),
            dimensions=math.prod(x.shape[-3:]),
            levels=chosen,
        )

    def forward(
        self,
        x: Tensor,
        *,
        regularize: bool | None = None,
        generator: torch.Generator | None = None,
        levels: Sequence[int] | None = None,
    ) -> Density:
        """:meth:`density`, so that wrappers such as DistributedDataParallel can call the model."""
        return self.density(x, regularize=regularize, generator=generator, levels=levels)

    def sample(
        self,
        latents: Sequence[Tensor],
        *,
        solver: SolverOptions | None = None,
        execution: PerSampleExecution = EAGER,
    ) -> Tensor:
        """Decode latents (finest first, as :attr:`Density.latents`) into continuous images.

        Args:
            latents: One B×… latent z_s per level; each is divided by σ_s
                (:attr:`latent_scales`) before its CNF is inverted.
            solver: Overrides the current mode's solver (e.g. the per-sample solver).
            execution: How the per-sample solver runs its steps (the images do not depend on it).

        Returns:
            B×C×H×W images, approximately in [0, 1] and not clamped, so that
            ``sample(density(x).latents) ≈ x``.
        """
        if len(latents) != self.config.resolutions:
            raise ValueError(f"expected {self.config.resolutions} latents, got {len(latents)}")
        solver = solver or self.solver
        # Undo the fixed scale after each level's CNF: u_s = z_s / σ_s.
        outputs = [z / scale for z, scale in zip(latents, self.latent_scales, strict=True)]
        coarsest = self.flows[-1].inverse(outputs[-1], solver=solver, execution=execution)
        x = inverse_logit_transform(coarsest, self.config.logit_alpha)
        for level in reversed(range(self.config.resolutions - 1)):
            cond = self._condition(x)
            decoded = self.flows[level].inverse(
                outputs[level], solver=solver, cond=cond, execution=execution
            )
            x = merge(x, self._detail_output(decoded), kind=self.config.transform)
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
        """Latents z_s ~ N(0, T²·σ_s²·I), drawn image by image from each image's own seed.

        Every image's noise comes from a CPU generator seeded with its seed, so a sample depends
        on its seed only, not on the batch it is drawn in or the device it is decoded on. The
        same unit noise is scaled by σ_s (:attr:`latent_scales`), which :meth:`sample` divides
        out again: a seed decodes to the same image whatever ``latent_noise`` is.

        Args:
            seeds: One seed per image.
            height: Height of the finest image.
            width: Width of the finest image.
            temperature: T, the factor on every latent's standard deviation.
            device: Where the latents go.
            dtype: Their dtype.

        Returns:
            One B×… latent per level, finest first.
        """
        shapes = self.latent_shapes(height, width)
        per_image = []
        for seed in seeds:
            generator = torch.Generator().manual_seed(int(seed))
            per_image.append([torch.randn(shape, generator=generator) for shape in shapes])
        return [
            (torch.stack(level) * (temperature * scale)).to(device=device, dtype=dtype)
            for level, scale in zip(zip(*per_image, strict=True), self.latent_scales, strict=True)
        ]

    def compile_velocity_fields(self, **options: Any) -> None:
        """Compile every velocity network with ``torch.compile``: its velocity, and its velocity
        with the explicit vector-Jacobian product, each fused into fewer kernels.

        Values equal the eager ones to float rounding. Training compiles only with the explicit
        product (divergence ``"hutchinson"``): autograd's product would be differentiated twice,
        which compiled graphs do not support.

        Args:
            options: Keyword arguments of ``torch.compile`` (``mode``, ``dynamic``, …).
        """
        for block in self.blocks:
            field = block.field
            field.compile(**options)
            field.forward_with_vjp = torch.compile(field.forward_with_vjp, **options)

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
