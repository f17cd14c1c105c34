"""Measuring one variant: training, evaluation and sampling speed, memory, and a kernel profile."""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

from mrcnf import MRCNF
from repro.bench.images import bench_images
from repro.bench.variants import Variant, bench_model, default_variant
from repro.config import Experiment
from repro.datasets.registry import image_shape
from repro.optimization import StepOutcome, optimization_step
from repro.runtime import configure_numerics, synchronize
from repro.sampling import generate_images

# Dense peak arithmetic (FLOP/s) by device name, float32 and TF32, from the vendors' data sheets.
PEAK_FLOPS: dict[str, dict[str, float]] = {
    "H200": {"fp32": 67e12, "tf32": 495e12},
    "H100": {"fp32": 67e12, "tf32": 495e12},
    "A100": {"fp32": 19.5e12, "tf32": 156e12},
    "V100": {"fp32": 15.7e12, "tf32": 15.7e12},
    "2080 Ti": {"fp32": 13.4e12, "tf32": 13.4e12},
}


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


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process peak, KiB → MiB


def _timed(run: Callable[[], object], device: torch.device, *, repeats: int = 3) -> float:
    """Median seconds of ``repeats`` calls of ``run`` after a warm-up call (compilation, caches).

    One call alone varied by 1.6× between identical runs on an H200.
    """
    run()
    durations = []
    for _ in range(repeats):
        synchronize(device)
        began = time.perf_counter()
        run()
        synchronize(device)
        durations.append(time.perf_counter() - began)
    return statistics.median(durations)


def peak_flops(device: torch.device, *, tf32: bool) -> float | None:
    """The device's dense peak for the arithmetic in use, when known."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, peaks in PEAK_FLOPS.items():
        if key in name:
            return peaks["tf32" if tf32 else "fp32"]
    return None


@dataclass(frozen=True)
class Workload:
    """What every variant runs on.

    Attributes:
        batch_size: Images per iteration.
        images: A kind of :data:`repro.bench.images.IMAGES`.
        weights: A trained model's weights (:func:`repro.bench.variants.checkpoint_weights`);
            ``None``: a fresh model.
    """

    batch_size: int
    images: str = "noise"
    weights: Mapping[str, torch.Tensor] | None = None


def prepare(
    experiment: Experiment, variant: Variant, *, device: torch.device, workload: Workload
) -> tuple[MRCNF, torch.Tensor]:
    """Switch the numerics of ``variant`` on, and build its model and images on ``device``."""
    configure_numerics(tf32=variant.tf32, autotune=variant.autotune, compiled=variant.compiled)
    model = bench_model(experiment, variant, weights=workload.weights).to(device)
    shape = image_shape(experiment.data)
    return model, bench_images(workload.images, workload.batch_size, shape).to(device)


def training_iteration(
    model: MRCNF,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    experiment: Experiment,
    *,
    iteration: int = 0,
) -> StepOutcome:
    """One iteration of training, exactly as ``repro train`` runs it (the same step function)."""
    model.train()
    return optimization_step(model, optimizer, x, experiment=experiment, iteration=iteration)


def time_training(
    model: MRCNF, x: torch.Tensor, experiment: Experiment, *, iterations: int
) -> dict[str, float]:
    """Seconds per training iteration after one warm-up iteration, with its parts.

    Returns:
        Seconds per iteration, milliseconds per function evaluation (forward and backward), NFE,
        and the achieved FLOP/s of the velocity networks in the forward pass (f and its
        vector-Jacobian product, counted as 3 evaluations of f).
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=experiment.optimizer.lr)
    flops = velocity_flops(model, *x.shape[-2:])
    micro_batch = len(x) / experiment.training.accumulation_steps
    forward_s = backward_s = forward_flops = 0.0
    nfe_forward = nfe_backward = 0
    for step in range(iterations + 1):
        outcome = training_iteration(model, optimizer, x, experiment, iteration=step)
        if step == 0:
            continue
        forward_s += outcome.forward_seconds
        backward_s += outcome.backward_seconds
        counts = outcome.forward_evaluations
        forward_flops += 3 * micro_batch * sum(n * f for n, f in zip(counts, flops, strict=True))
        nfe_forward += outcome.nfe_forward
        nfe_backward += outcome.nfe_backward
    return {
        "seconds_per_iteration": (forward_s + backward_s) / iterations,
        "ms_per_evaluation_forward": 1e3 * forward_s / max(nfe_forward, 1),
        # Direct backpropagation evaluates nothing anew: its cost is per forward evaluation.
        "ms_per_evaluation_backward": 1e3 * backward_s / max(nfe_backward or nfe_forward, 1),
        "nfe_forward": nfe_forward / iterations,
        "nfe_backward": nfe_backward / iterations,
        "forward_tflops": forward_flops / forward_s / 1e12,
    }


def time_inference(model: MRCNF, x: torch.Tensor, *, seed: int = 0) -> dict[str, float]:
    """Bits per dimension of ``x`` (fixed probes), and images/s of evaluation and of sampling."""
    device = x.device
    model.eval()

    def evaluate() -> torch.Tensor:
        with torch.no_grad():
            probes = torch.Generator(device=device).manual_seed(seed)
            return model.density(x, generator=probes).bits_per_dim().mean()

    def sample() -> None:
        generate_images(
            model,
            seeds=range(len(x)),
            height=x.shape[-2],
            width=x.shape[-1],
            temperature=1.0,
            batch_size=len(x),
            device=device,
        )

    bits_per_dim = float(evaluate())
    eval_s, sample_s = (_timed(run, device) for run in (evaluate, sample))
    return {
        "bits_per_dim": bits_per_dim,
        "eval_images_per_second": len(x) / eval_s,
        "sample_images_per_second": len(x) / sample_s,
    }


def bench_variant(
    experiment: Experiment,
    variant: Variant,
    *,
    device: torch.device,
    workload: Workload,
    iterations: int,
    inference: bool = True,
) -> dict[str, Any]:
    """Time training (and, with ``inference``, evaluation and sampling) of one variant.

    Evaluation and sampling start again from the initial weights, so every variant's bits per
    dimension describe the same model. A variant that runs out of device memory is reported as
    ``{"error": "out of memory"}`` instead of ending the comparison.
    """
    model, x = prepare(experiment, variant, device=device, workload=workload)
    initial = {key: value.clone() for key, value in model.state_dict().items()}
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    try:
        row: dict[str, Any] = time_training(model, x, experiment, iterations=iterations)
        if inference:
            model.load_state_dict(initial)
            row |= time_inference(model, x)
    except torch.cuda.OutOfMemoryError:
        return {"error": "out of memory"}
    peak = peak_flops(device, tf32=variant.tf32)
    row["peak_memory_mb"] = _peak_memory_mb(device)
    row["share_of_peak"] = None if peak is None else row["forward_tflops"] * 1e12 / peak
    return row


def kernel_profile(experiment: Experiment, *, device: torch.device, workload: Workload) -> dict:
    """Where the default path's training iteration spends its time, from one profiled iteration.

    Returns:
        Seconds of an unprofiled iteration and operators per iteration; on CUDA also the kernels
        launched per iteration, the share of the unprofiled iteration's wall time that the device
        spends in kernels (low: launch- or host-bound) and the five costliest kernels.
    """
    variant = default_variant(experiment)
    model, x = prepare(experiment, variant, device=device, workload=workload)
    optimizer = torch.optim.Adam(model.parameters(), lr=experiment.optimizer.lr)
    training_iteration(model, optimizer, x, experiment)  # warm-up
    seconds = training_iteration(model, optimizer, x, experiment).seconds
    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as profiler:
        training_iteration(model, optimizer, x, experiment)
    events = profiler.events()
    result: dict[str, Any] = {
        "seconds_per_iteration": seconds,
        "operators_per_iteration": sum(e.device_type == DeviceType.CPU for e in events),
    }
    busy: dict[str, list[float]] = {}
    for event in events:
        if event.device_type == DeviceType.CUDA:
            busy.setdefault(event.name, []).append(event.time_range.elapsed_us() / 1e6)
    if busy:
        result["kernels_per_iteration"] = sum(map(len, busy.values()))
        result["device_busy_share"] = sum(map(sum, busy.values())) / seconds
        costliest = sorted(busy.items(), key=lambda item: -sum(item[1]))[:5]
        result["top_kernels"] = [
            {"name": name[:80], "seconds": sum(times), "launches": len(times)}
            for name, times in costliest
        ]
    return result
