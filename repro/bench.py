"""Speed and memory of the training, evaluation and sampling paths, variant against variant.

Every variant runs in one process on the same random images of the experiment's shape and the same
initial weights, and is reported as a ratio to the authors' formulation (adjoint backpropagation,
eager, float32), so a speed-up is measured rather than asserted; its bits per dimension on the same
inputs and Hutchinson probes show that it computes the same log-likelihood.
"""

from __future__ import annotations

import dataclasses
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

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
        autograd_vjp: Take Hutchinson's vector-Jacobian product from ``torch.autograd.grad``
            (FFJORD's and the authors' formulation) instead of the network's explicit backward
            pass (:meth:`mrcnf.velocity.VelocityField.forward_with_vjp`).
        compiled: Compile every velocity network (its velocity, and its velocity with the
            explicit vector-Jacobian product) with ``torch.compile``, for training, evaluation
            and sampling. Needs the explicit product: training differentiates autograd's product
            again, a double backward that compiled graphs do not support.
        tf32: Allow TF32 matrix arithmetic (CUDA only).
        autotune: Let cuDNN pick the fastest convolution algorithm for each shape by timing.
    """

    adjoint: bool
    autograd_vjp: bool
    compiled: bool = False
    tf32: bool = False
    autotune: bool = True

    def __post_init__(self) -> None:
        if self.compiled and self.autograd_vjp:
            raise ValueError("a compiled variant needs the explicit vector-Jacobian product")


REFERENCE = "authors"
VARIANTS: dict[str, Variant] = {
    REFERENCE: Variant(adjoint=True, autograd_vjp=True, autotune=False),
    "authors+autotune": Variant(adjoint=True, autograd_vjp=True),
    "direct": Variant(adjoint=False, autograd_vjp=True),
    "direct+vjp": Variant(adjoint=False, autograd_vjp=False),
    "direct+vjp+tf32": Variant(adjoint=False, autograd_vjp=False, tf32=True),
    "direct+vjp+compile": Variant(adjoint=False, autograd_vjp=False, compiled=True),
}

# Dense peak arithmetic (FLOP/s) by device name, float32 and TF32, from the vendors' data sheets.
PEAK_FLOPS: dict[str, dict[str, float]] = {
    "H200": {"fp32": 67e12, "tf32": 495e12},
    "H100": {"fp32": 67e12, "tf32": 495e12},
    "A100": {"fp32": 19.5e12, "tf32": 156e12},
    "V100": {"fp32": 15.7e12, "tf32": 15.7e12},
    "2080 Ti": {"fp32": 13.4e12, "tf32": 13.4e12},
}


def default_variant(experiment: Experiment) -> Variant:
    """What ``repro train`` runs for the experiment when no option says otherwise."""
    return Variant(adjoint=experiment.solver.train.adjoint, autograd_vjp=False)


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


def bench_model(experiment: Experiment, variant: Variant, *, seed: int = 0) -> MRCNF:
    """The experiment's model, run as ``variant``, with every layer at PyTorch's initialisation.

    Training zeroes the last layer of every velocity network, which makes a fresh model's
    divergence exactly zero; here it keeps PyTorch's default initialisation, so the dynamics are
    not trivial and comparing the variants' log-likelihoods means something.
    """
    config = model_config(experiment, channels=image_shape(experiment)[0])
    train_solver = dataclasses.replace(config.train_solver, adjoint=variant.adjoint)
    config = dataclasses.replace(config, train_solver=train_solver)
    if variant.autograd_vjp and config.divergence == "hutchinson":
        config = dataclasses.replace(config, divergence="hutchinson_autograd")
    torch.manual_seed(seed)
    model = MRCNF(config)
    for block in _blocks(model):
        block.field.layers[-1].conv.reset_parameters()
    return model


def bench_images(experiment: Experiment, *, batch_size: int, seed: int = 0) -> torch.Tensor:
    """Dequantised uniform random images of the experiment's shape (on the CPU)."""
    generator = torch.Generator().manual_seed(seed)
    pixels = torch.randint(0, 256, (batch_size, *image_shape(experiment)), generator=generator)
    return dequantize(pixels.to(torch.uint8))


def _blocks(model: MRCNF) -> list[BlockDynamics]:
    return [block for flow in model.flows for block in flow.blocks]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


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
        _sync(device)
        began = time.perf_counter()
        run()
        _sync(device)
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


def _training_step(
    model: MRCNF, optimizer: torch.optim.Optimizer, x: torch.Tensor, experiment: Experiment
) -> tuple[float, float, list[int]]:
    """One training iteration: seconds of its forward and backward passes, forward NFE per block."""
    device = x.device
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
    return middle - began, time.perf_counter() - middle, counts


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
    forward_s = backward_s = forward_flops = 0.0
    nfe_forward = nfe_backward = 0
    for step in range(iterations + 1):
        forward, backward, counts = _training_step(model, optimizer, x, experiment)
        if step == 0:
            continue
        forward_s += forward
        backward_s += backward
        forward_flops += 3 * len(x) * sum(n * f for n, f in zip(counts, flops, strict=True))
        nfe_forward += sum(counts)
        nfe_backward += model.function_evaluations - sum(counts)
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
    batch_size: int,
    iterations: int,
    inference: bool = True,
) -> dict[str, Any]:
    """Time training (and, with ``inference``, evaluation and sampling) of one variant.

    Evaluation and sampling start again from the initial weights, so every variant's bits per
    dimension describe the same model. A variant that runs out of device memory is reported as
    ``{"error": "out of memory"}`` instead of ending the comparison.
    """
    configure_numerics(tf32=variant.tf32, autotune=variant.autotune)
    model = bench_model(experiment, variant).to(device)
    initial = {key: value.clone() for key, value in model.state_dict().items()}
    if variant.compiled:
        for block in _blocks(model):
            block.field.compile()
            block.field.forward_with_vjp = torch.compile(block.field.forward_with_vjp)
    x = bench_images(experiment, batch_size=batch_size).to(device)
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


def kernel_profile(experiment: Experiment, *, device: torch.device, batch_size: int) -> dict:
    """Where the default path's training iteration spends its time, from one profiled iteration.

    Returns:
        Seconds of an unprofiled iteration and operators per iteration; on CUDA also the kernels
        launched per iteration, the share of the unprofiled iteration's wall time that the device
        spends in kernels (low: launch- or host-bound) and the five costliest kernels.
    """
    variant = default_variant(experiment)
    configure_numerics(tf32=variant.tf32, autotune=variant.autotune)
    model = bench_model(experiment, variant).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=experiment.optimizer.lr)
    x = bench_images(experiment, batch_size=batch_size).to(device)
    _training_step(model, optimizer, x, experiment)  # warm-up
    forward, backward, _ = _training_step(model, optimizer, x, experiment)
    seconds = forward + backward
    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as profiler:
        _training_step(model, optimizer, x, experiment)
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


def bench(
    experiment: Experiment,
    *,
    device: torch.device,
    variants: list[str],
    batch_size: int | None = None,
    iterations: int = 3,
    on_row: Callable[[str, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run every named variant and express each as a ratio to the authors' formulation.

    ``on_row(name, row)`` is called as each variant finishes (progress for long runs).

    Returns:
        Per variant its timings, with ``speedup_vs_authors`` and ``bits_per_dim_difference`` (to
        the authors' formulation on the same inputs); and the default path's kernel profile.

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
    rows = {}
    for name in names:
        rows[name] = bench_variant(
            experiment, VARIANTS[name], device=device, batch_size=batch, iterations=iterations
        )
        if on_row is not None:
            on_row(name, rows[name])
    reference = rows[REFERENCE]
    for row in rows.values():
        if "error" in row or "error" in reference:
            continue
        seconds = row["seconds_per_iteration"]
        row["speedup_vs_authors"] = reference["seconds_per_iteration"] / seconds
        row["bits_per_dim_difference"] = row["bits_per_dim"] - reference["bits_per_dim"]
    return {
        "experiment": experiment.id,
        "batch_size": batch,
        "iterations": iterations,
        "variants": rows,
        "kernel_profile": kernel_profile(experiment, device=device, batch_size=batch),
    }


def project(
    experiments: list[Experiment],
    *,
    published_hours: dict[str, float | None],
    device: torch.device,
    on_row: Callable[[str, dict[str, Any]], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Projected hours of each experiment's pinned schedule on its default path, at its batch.

    An experiment whose direct backpropagation does not fit in device memory is timed with the
    adjoint method, as its training would have to run.

    Returns:
        Per experiment: the path timed, seconds per iteration (or an ``error``), forward NFE,
        projected and published hours, the schedule's iterations and how many of them fit in
        the published hours.
    """
    rows: dict[str, dict[str, Any]] = {}
    for experiment in experiments:
        variant = default_variant(experiment)
        paths = [variant, dataclasses.replace(variant, adjoint=True)]
        for path in paths:
            row = bench_variant(
                experiment,
                path,
                device=device,
                batch_size=experiment.training.batch_size,
                iterations=1,
                inference=False,
            )
            if "error" not in row:
                break
        result: dict[str, Any] = {
            "path": "adjoint" if path.adjoint else "direct",
            "published_hours": published_hours.get(experiment.id),
        }
        if "error" in row:
            result["error"] = row["error"]
        else:
            seconds = row["seconds_per_iteration"]
            published = result["published_hours"]
            result |= {
                "seconds_per_iteration": seconds,
                "nfe_forward": row["nfe_forward"],
                "hours": projected_hours(experiment, seconds_per_iteration=seconds),
                "schedule_iterations": schedule_iterations(experiment),
                # How far a run stopped at the published compute gets (the ImageNet budgets).
                "iterations_in_published_hours": (
                    None if published is None else int(published * 3600 / seconds)
                ),
            }
        rows[experiment.id] = result
        if on_row is not None:
            on_row(experiment.id, result)
    return rows


def schedule_iterations(experiment: Experiment) -> int:
    """Iterations of the pinned schedule: epochs of the training split, capped by max_iterations."""
    iterations = experiment.training.epochs * (
        TRAIN_IMAGES[experiment.data.dataset] // experiment.training.batch_size
    )
    if experiment.training.max_iterations is not None:
        iterations = min(iterations, experiment.training.max_iterations)
    return iterations


def projected_hours(experiment: Experiment, *, seconds_per_iteration: float) -> float:
    """Hours the pinned schedule takes at the measured speed (early NFE; it grows in training)."""
    return schedule_iterations(experiment) * seconds_per_iteration / 3600
