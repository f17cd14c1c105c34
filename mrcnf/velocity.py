"""The velocity network f(z, t | cond) of one ODE block (docs/method.md §1, as in FFJORD and
RNODE)."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F


class ConcatTimeConv2d(nn.Module):
    """A 3×3 convolution that also sees the time ``t`` as one constant input channel.

    Args:
        in_channels: Channels of the input, not counting the time channel.
        out_channels: Output channels.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels + 1, out_channels, kernel_size=3, padding=1)

    def forward(self, t: Tensor, h: Tensor) -> Tensor:
        # t is a scalar, or one time per sample (per-sample solvers).
        time_channel = t.to(h).reshape(-1, 1, 1, 1).expand(h.shape[0], 1, *h.shape[2:])
        return self.conv(torch.cat([time_channel, h], dim=1))

    def transpose(self, grad_output: Tensor, *, channels: int) -> Tensor:
        """The vector-Jacobian product with the first ``channels`` input channels (not time).

        Args:
            grad_output: B×out_channels×H×W vector.
            channels: How many leading input channels to return the product for.

        Returns:
            B×channels×H×W: ``grad_output`` pulled back through the convolution.
        """
        weight = self.conv.weight[:, 1 : 1 + channels]
        return F.conv_transpose2d(grad_output, weight, padding=self.conv.padding)


class VelocityField(nn.Module):
    """Four concat-time 3×3 convolutions with softplus between them.

    The last layer's weights start at zero (its bias keeps PyTorch's default initialisation, as in
    the authors' code), so a fresh block is close to the identity map.

    Args:
        channels: Channels of the state z.
        width: Hidden channels of the three inner layers.
        cond_channels: Channels of the conditioning image concatenated at the first layer
            (0 for an unconditional field).
    """

    def __init__(self, channels: int, *, width: int = 64, cond_channels: int = 0) -> None:
        super().__init__()
        self.cond_channels = cond_channels
        self.layers = nn.ModuleList(
            [
                ConcatTimeConv2d(channels + cond_channels, width),
                ConcatTimeConv2d(width, width),
                ConcatTimeConv2d(width, width),
                ConcatTimeConv2d(width, channels),
            ]
        )
        nn.init.zeros_(self.layers[-1].conv.weight)

    def forward(self, t: Tensor, z: Tensor, cond: Tensor | None = None) -> Tensor:
        """Evaluate dz/dt.

        Args:
            t: Scalar time, or (B,) times.
            z: B×C×H×W state.
            cond: B×cond_channels×H×W conditioning image, required iff ``cond_channels > 0``.

        Returns:
            The velocity, shaped like ``z``.
        """
        h = z if cond is None else torch.cat([z, cond], dim=1)
        for layer in self.layers[:-1]:
            h = F.softplus(layer(t, h))
        return self.layers[-1](t, h)

    def forward_with_vjp(
        self, t: Tensor, z: Tensor, cond: Tensor | None, vector: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Evaluate dz/dt and vectorᵀ·∂f/∂z, the latter by an explicit backward pass.

        The pull-back is written with ordinary differentiable operations (transposed
        convolutions, sigmoids) instead of ``torch.autograd.grad(..., create_graph=True)``. The
        value is the same; but training differentiates it again, and autograd's double backward
        of a convolution computes its weight term as a convolution with the batch as channels and
        the whole image as the kernel, which cuDNN runs with a slow kernel (40% of a training
        iteration on CIFAR10, 74% on ImageNet64, measured on an H200). Differentiating the
        transposed convolutions uses cuDNN's ordinary backward kernels instead, and evaluation
        builds no graph at all.

        This mirrors :meth:`forward` by hand: a change to the network's layers or activations
        must be made here too. ``tests/test_velocity.py``
        (``test_explicit_vector_jacobian_product_equals_autograd``, float64, 1e-9) fails when
        the two drift apart.

        Args:
            t: Scalar time, or (B,) times.
            z: B×C×H×W state.
            cond: Conditioning image, as in :meth:`forward`.
            vector: B×C×H×W vector ε.

        Returns:
            ``(f, εᵀ∂f/∂z)``, both shaped like ``z``.
        """
        h = z if cond is None else torch.cat([z, cond], dim=1)
        pre_activations = []
        for layer in self.layers[:-1]:
            pre_activations.append(layer(t, h))
            h = F.softplus(pre_activations[-1])
        f = self.layers[-1](t, h)
        grad = vector
        for layer, pre in zip(self.layers[:0:-1], reversed(pre_activations), strict=True):
            # softplus' = sigmoid
            grad = layer.transpose(grad, channels=pre.shape[1]) * torch.sigmoid(pre)
        return f, self.layers[0].transpose(grad, channels=z.shape[1])
