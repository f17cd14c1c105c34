"""An adaptive Bogacki–Shampine (bosh3) solver with its own step size for every sample.

torchdiffeq's adaptive solvers choose one step sequence for the whole batch, so a sample decoded
beside others depends on them (slightly, through the shared error control). Here every sample
has its own time, step size and accept/reject decision, so its trajectory depends on itself alone:
the images a seed decodes to do not change with the batch size or with how work is split.

A step has static shapes and no host synchronisation: a finished sample takes steps of size zero,
which leave it unchanged. So the host asks whether every sample has finished only once per
``steps_per_check`` steps, and on CUDA those steps can be captured once as a CUDA graph and
replayed (:func:`cuda_graphed`), which removes the per-kernel launch cost that dominates small
images. Every way of running gives the same result as one step at a time.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

# Bogacki–Shampine 3(2): the third-order solution and the difference to the embedded second order.
_SOLUTION = (2 / 9, 1 / 3, 4 / 9)
_ERROR = (-5 / 72, 1 / 12, 1 / 9, -1 / 8)
_SAFETY, _MIN_FACTOR, _MAX_FACTOR = 0.9, 0.2, 10.0

Func = Callable[[Tensor, Tensor], Tensor]


class SolverState(NamedTuple):
    """Every sample's time, next trial step, value, and slope there (first same as last)."""

    t: Tensor
    dt: Tensor
    y: Tensor
    k1: Tensor


@dataclass(frozen=True)
class PerSampleExecution:
    """How the per-sample solver's steps are run; every choice gives the same result.

    Attributes:
        steps_per_check: Steps taken between two checks (host synchronisations) of whether every
            sample has finished. Extra steps of finished samples change nothing.
        cuda_graph: Capture those steps once per solve as a CUDA graph and replay it (CUDA only;
            the right-hand side must be capturable: no host synchronisation inside). Replays
            are not seen by Python: evaluation counters (``BlockDynamics.nfe``) count the
            capture only.
    """

    steps_per_check: int = 1
    cuda_graph: bool = False

    def __post_init__(self) -> None:
        if self.steps_per_check < 1:
            raise ValueError(f"steps_per_check must be ≥ 1, got {self.steps_per_check}")


EAGER = PerSampleExecution()


def _per_sample(values: Tensor, like: Tensor) -> Tensor:
    return values.view(-1, *([1] * (like.dim() - 1)))


def bosh3_step(
    func: Func, state: SolverState, *, t1: float, atol: float, rtol: float, finish: float
) -> SolverState:
    """One attempted step of every sample (accepted or rejected by its own error estimate).

    Args:
        func: The right-hand side; it receives per-sample times of shape (B,).
        state: Every sample's time, trial step, value and slope.
        t1: End time.
        atol: Absolute tolerance.
        rtol: Relative tolerance.
        finish: A sample within this distance of ``t1`` has finished; it steps by zero.

    Returns:
        The state after the step. Shapes and dtypes are those of ``state``.
    """
    t, dt, y, k1 = state
    remaining = t1 - t
    done = remaining.abs() <= finish
    # Never step past t1; finished samples take zero steps.
    dt = torch.where(done, torch.zeros_like(dt), torch.sign(dt) * dt.abs().minimum(remaining.abs()))
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
    factor = (_SAFETY * ratio.clamp_min(1e-10).pow(-1 / 3)).clamp(_MIN_FACTOR, _MAX_FACTOR)
    return SolverState(
        t=torch.where(accept, t + dt, t),
        dt=torch.where(done, dt, dt * factor),
        y=torch.where(mask, y_new, y),
        k1=torch.where(mask, k4, k1),
    )


def cuda_graphed(
    steps: Callable[[SolverState], SolverState], state: SolverState
) -> tuple[Callable[[SolverState], SolverState], SolverState]:
    """``steps`` captured as a CUDA graph, and ``steps(state)``.

    The capture needs a warm-up run of ``steps`` on a side stream; that run is the first real
    advance, so nothing is computed twice.

    Returns:
        A function that replays the graph on a state (copied into the graph's inputs; the result
        is the graph's own output buffers, valid until the next replay), and the state after one
        eager run of ``steps``.
    """
    # The state's device, whichever is current (under torchrun every rank has its own GPU).
    on_device = torch.cuda.device(state.y.device)
    with on_device:
        inputs = SolverState(*(tensor.clone() for tensor in state))
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            advanced = steps(inputs)
        torch.cuda.current_stream().wait_stream(side)
        advanced = SolverState(*(tensor.clone() for tensor in advanced))
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            outputs = steps(inputs)

    def replay(current: SolverState) -> SolverState:
        with on_device:
            for target, source in zip(inputs, current, strict=True):
                target.copy_(source)
            graph.replay()
        return outputs

    return replay, advanced


def odeint_per_sample(
    func: Func,
    y0: Tensor,
    *,
    t0: float,
    t1: float,
    atol: float,
    rtol: float,
    first_step: float | None = None,
    max_steps: int = 100_000,
    execution: PerSampleExecution = EAGER,
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
        execution: How the steps are run (the result does not depend on it).

    Returns:
        The state at ``t1``.

    Raises:
        RuntimeError: If the step limit is reached.
        ValueError: If a CUDA graph is asked for a tensor that is not on a CUDA device.
    """
    if execution.cuda_graph and y0.device.type != "cuda":
        raise ValueError(f"a CUDA graph needs a CUDA tensor, got one on {y0.device}")
    batch, span, chunk = y0.shape[0], t1 - t0, execution.steps_per_check
    finish = 1e-12 * max(1.0, abs(span))
    first = abs(span) * 0.05 if first_step is None else first_step
    t = y0.new_full((batch,), t0)
    state = SolverState(t, y0.new_full((batch,), math.copysign(first, span)), y0, func(t, y0))

    def steps(current: SolverState) -> SolverState:
        for _ in range(chunk):
            current = bosh3_step(func, current, t1=t1, atol=atol, rtol=rtol, finish=finish)
        return current

    advance, taken = steps, 0
    for _ in range(math.ceil(max_steps / chunk)):
        if bool(((t1 - state.t).abs() <= finish).all()):
            # A graph's output buffers belong to it: hand out a copy.
            return state.y.clone() if execution.cuda_graph else state.y
        if execution.cuda_graph and advance is steps:
            advance, state = cuda_graphed(steps, state)
        else:
            state = advance(state)
        taken += chunk
    raise RuntimeError(f"per-sample solver took more than {taken} steps")
