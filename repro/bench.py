"""Speed and memory of the training, evaluation and sampling paths, variant against variant.

Every variant runs in one process on the same random images of the experiment's shape, and is
reported as a ratio to the authors' formulation (adjoint backpropagation, eager, float32), so a
speed-up is measured rather than asserted.
"""

from __future__ import annotations

import dataclasses
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from mrcnf import MRCNF, dequantize
from mrcnf.cnf import BlockDynamics
from repro.checkpoint import model_config
from repro.config import Experiment
from repro.datasets import SHAPES, TRAIN_IMAGES
from repro.runtime import configure_numerics
from repro.sampling import generate_images
from repro.train import loss_terms


@dataclass(frozen=True)
class Variant:
    """One way of running the same model.

    Attributes:
        adjoint: Backpropagate with the adjoint method instead of through the solver.
        compiled: Compile every velocity network with ``torch.compile`` for evaluation and
            sampling. Training stays eager: its loss differentiates the divergence's
            vector-Jacobian product again, a double backward that compiled graphs do not support.
        tf32: Allow TF32 matrix arithmetic (CUDA only).
    """

    adjoint: bool
    compiled: bool
    tf32: bool


REFERENCE = "authors"
VARIANTS: dict[str, Variant] = {
    REFERENCE: Variant(adjoint=True, compiled=False, tf32=False),
    "direct": Variant(adjoint=False, compiled=False, tf32=False),
    "direct+compile": Variant(adjoint=False, compiled=True, tf32=False),
    "direct+tf32": Variant(adjoint=False, compiled=False, tf32=True),
    "direct+compile+tf32": Variant(adjoint=False, compiled=True, tf32=True),
}

# Dense peak arithmetic (FLOP/s) by device name, float32 and TF32, from the vendors' data sheets.
PEAK_FLOPS: dict[str, dict[str, float]] = {
    "H200": {"fp32": 67e12, "tf32": 495e12},
    "H100": {"fp32": 67e12, "tf32": 495e12},
    "A100": {"fp32": 19.5e12, "tf32": 156e12},
    "V100": {"fp32": 15.7e12, "tf32": 15.7e12},
    "2080 Ti": {"fp32": 13.4e12, "tf32": 13.4e12},
}


def image_shape(experiment: Experiment) -> tuple[int, int, int]:
    """C×H×W of the experiment's images."""
    channels, height, width = SHAPES[experiment.data.dataset]
    size = experiment.data.image_size
    return (channels, size, size) if size else (channels, height, width)


def velocity_flops(model: MRCNF, height: int, width: int) -> list[float]:
    """Multiply-adds ×2 of one evaluation of each block's velocity network, for one image."""
    flops = []
    coarsest = len(model.flows) - 1
    for level, flow in enumerate(model.flows):
        # Details of level s live at the size of level s+1; the coarsest image at its own.
        shift = min(level + 1, coarsest)
        pixels = (height >> shift) * (width >> shift)
        for block in flow.blocks:
            convs = [layer.conv for layer in block.field.layers]
            per_pixel = sum(2 * c.in_channels * c.out_channels * 9 for c in convs)
            flops.append(per_pixel * pixels)
    return flops


def _blocks(model: MRCNF) -> list[BlockDynamics]:
    return [block for flow in model.flows for block in flow.blocks]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process peak, KiB → MiB


def _timed(run: Callable[[], None], device: torch.device) -> float:
    """Seconds of one call of ``run`` after one warm-up call (compilation, allocator, caches)."""
    run()
    _sync(device)
    began = time.perf_counter()
    run()
    _sync(device)
    return time.perf_counter() - began


def peak_flops(device: torch.device, *, tf32: bool) -> float | None:
    """The device's dense peak for the arithmetic in use, when known."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, peaks in PEAK_FLOPS.items():
        if key in name:
            return peaks["tf32" if tf32 else "fp32"]
    return None


def bench_variant(
    experiment: Experiment,
    variant: Variant,
    *,
    device: torch.device,
    batch_size: int,
    iterations: int,
    seed: int = 0,
) -> dict[str, Any]:
    """Time training iterations, bpd evaluation and sampling of one variant.

    Returns:
        Seconds per iteration, milliseconds per function evaluation (forward and backward), NFE,
        images/s for evaluation and sampling, peak memory and achieved FLOP/s of the velocity
        networks (forward: f plus its vector-Jacobian product, counted as 3 evaluations of f).
    """
    configure_numerics(tf32=variant.tf32)
    channels, height, width = image_shape(experiment)
    config = model_config(experiment, channels=channels)
    train_solver = dataclasses.replace(config.train_solver, adjoint=variant.adjoint)
    torch.manual_seed(seed)
    model = MRCNF(dataclasses.replace(config, train_solver=train_solver)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=experiment.optimizer.lr)
    generator = torch.Generator().manual_seed(seed)
    pixels = torch.randint(0, 256, (batch_size, channels, height, width), generator=generator)
    x = dequantize(pixels.to(torch.uint8)).to(device)
    flops = velocity_flops(model, height, width)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    forward_s = backward_s = 0.0
    forward_flops = 0.0
    nfe_forward = nfe_backward = 0
    for step in range(iterations + 1):  # the first iteration warms up (and compiles)
        model.train()
        model.reset_function_evaluations()
        _sync(device)
        began = time.perf_counter()
        loss = loss_terms(model.density(x), experiment.loss)[0]
        _sync(device)
        middle = time.perf_counter()
        counts = [block.nfe for block in _blocks(model)]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        _sync(device)
        ended = time.perf_counter()
        if step == 0:
            continue
        forward_s += middle - began
        backward_s += ended - middle
        forward_flops += 3 * batch_size * sum(n * f for n, f in zip(counts, flops, strict=True))
        nfe_forward += sum(counts)
        nfe_backward += model.function_evaluations - sum(counts)

    model.eval()
    if variant.compiled:
        for block in _blocks(model):
            block.field.compile()

    def evaluate() -> None:
        with torch.no_grad():
            model.density(x)

    def sample() -> None:
        seeds = list(range(batch_size))
        generate_images(
            model,
            seeds=seeds,
            height=height,
            width=width,
            temperature=1.0,
            batch_size=batch_size,
            device=device,
        )

    eval_s, sample_s = (_timed(run, device) for run in (evaluate, sample))
    peak = peak_flops(device, tf32=variant.tf32)
    achieved = forward_flops / forward_s
    return {
        "seconds_per_iteration": (forward_s + backward_s) / iterations,
        "ms_per_evaluation_forward": 1e3 * forward_s / max(nfe_forward, 1),
        # Direct backpropagation evaluates nothing anew: its cost is per forward evaluation.
        "ms_per_evaluation_backward": 1e3 * backward_s / max(nfe_backward or nfe_forward, 1),
        "nfe_forward": nfe_forward / iterations,
        "nfe_backward": nfe_backward / iterations,
        "eval_images_per_second": batch_size / eval_s,
        "sample_images_per_second": batch_size / sample_s,
        "peak_memory_mb": _peak_memory_mb(device),
        "forward_tflops": achieved / 1e12,
        "share_of_peak": None if peak is None else achieved / peak,
    }


def bench(
    experiment: Experiment,
    *,
    device: torch.device,
    variants: list[str],
    batch_size: int | None = None,
    iterations: int = 3,
) -> dict[str, Any]:
    """Run every named variant and express each as a ratio to the authors' formulation.

    Raises:
        ValueError: An unknown variant, or TF32 asked for off CUDA.
    """
    unknown = [name for name in variants if name not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variant {unknown[0]!r}; choose from {', '.join(VARIANTS)}")
    if device.type != "cuda" and any(VARIANTS[name].tf32 for name in variants):
        raise ValueError("TF32 variants need --device cuda")
    batch = batch_size or experiment.training.batch_size
    names = [REFERENCE, *(name for name in variants if name != REFERENCE)]
    rows = {
        name: bench_variant(
            experiment, VARIANTS[name], device=device, batch_size=batch, iterations=iterations
        )
        for name in names
    }
    reference = rows[REFERENCE]["seconds_per_iteration"]
    for row in rows.values():
        row["speedup_vs_authors"] = reference / row["seconds_per_iteration"]
    return {
        "experiment": experiment.id,
        "batch_size": batch,
        "iterations": iterations,
        "variants": rows,
    }


def projected_hours(experiment: Experiment, *, seconds_per_iteration: float) -> float:
    """Hours the pinned schedule takes at the measured speed (early NFE; it grows in training)."""
    iterations = experiment.training.epochs * (
        TRAIN_IMAGES[experiment.data.dataset] // experiment.training.batch_size
    )
    if experiment.training.max_iterations is not None:
        iterations = min(iterations, experiment.training.max_iterations)
    return iterations * seconds_per_iteration / 3600
