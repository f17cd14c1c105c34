"""An adaptive Bogacki–Shampine (bosh3) solver with its own step size for every sample.

torchdiffeq's adaptive solvers choose one step sequence for the whole batch, so a sample decoded
beside others depends on them (slightly, through the shared error control). Here every sample
has its own time, step size and accept/reject decision, so its trajectory depends on itself alone:
the images a seed decodes to do not change with the batch size or with how work is split.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

# Bogacki–Shampine 3(2): the third-order solution and the difference to the embedded second order.
_SOLUTION = (2 / 9, 1 / 3, 4 / 9)
_ERROR = (-5 / 72, 1 / 12, 1 / 9, -1 / 8)
_SAFETY, _MIN_FACTOR, _MAX_FACTOR = 0.9, 0.2, 10.0


def _per_sample(values: Tensor, like: Tensor) -> Tensor:
    return values.view(-1, *([1] * (like.dim() - 1)))


def odeint_per_sample(
    func: Callable[[Tensor, Tensor], Tensor],
    y0: Tensor,
    *,
    t0: float,
    t1: float,
    atol: float,
    rtol: float,
    first_step: float | None = None,
    max_steps: int = 100_000,
) -> Tensor:
    """Integrate dy/dt = func(t, y) from ``t0`` to ``t1``, each sample with its own steps.

    Args:
        func: The right-hand side; it receives per-sample times of shape (B,).
        y0: B×… initial state.
        t0: Start time.
        t1: End time (may be smaller than ``t0``).
        atol: Absolute tolerance.
        rtol: Relative tolerance.
        first_step: Size of the first trial step (positive); ``None``: 5% of the interval.
        max_steps: Give up after this many attempted steps.

    Returns:
        The state at ``t1``.

    Raises:
        RuntimeError: If the step limit is reached.
    """
    batch = y0.shape[0]
    span = t1 - t0
    t = y0.new_full((batch,), t0)
    first = abs(span) * 0.05 if first_step is None else first_step
    dt = y0.new_full((batch,), math.copysign(first, span))
    y, k1 = y0, func(t, y0)
    for _ in range(max_steps):
        remaining = t1 - t
        done = remaining.abs() <= 1e-12 * max(1.0, abs(span))
        if bool(done.all()):
            return y
        # Never step past t1; finished samples take zero steps.
        dt = torch.where(
            done, torch.zeros_like(dt), torch.sign(dt) * dt.abs().minimum(remaining.abs())
        )
        h = _per_sample(dt, y)
        k2 = func(t + dt / 2, y + h / 2 * k1)
        k3 = func(t + 3 * dt / 4, y + 3 * h / 4 * k2)
        y_new = y + h * (_SOLUTION[0] * k1 + _SOLUTION[1] * k2 + _SOLUTION[2] * k3)
        k4 = func(t + dt, y_new)
        error = h * (_ERROR[0] * k1 + _ERROR[1] * k2 + _ERROR[2] * k3 + _ERROR[3] * k4)
        scale = atol + rtol * torch.maximum(y.abs(), y_new.abs())
        ratio = (error / scale).pow(2).flatten(1).mean(1).sqrt()
        accept = (ratio <= 1) & ~done
        mask = _per_sample(accept, y)
        y = torch.where(mask, y_new, y)
        k1 = torch.where(mask, k4, k1)
        t = torch.where(accept, t + dt, t)
        factor = (_SAFETY * ratio.clamp_min(1e-10).pow(-1 / 3)).clamp(_MIN_FACTOR, _MAX_FACTOR)
        dt = torch.where(done, dt, dt * factor)
    raise RuntimeError(f"per-sample solver took more than {max_steps} steps")
