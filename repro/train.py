"""The training loop (METHOD §4), readable top to bottom.

Every source of randomness of iteration i (data order, flips, dequantisation noise, Hutchinson
probes) is seeded from (seed, i), so a run killed at any point and resumed from its last checkpoint
continues exactly as an uninterrupted run would.
"""

from __future__ import annotations

import functools
import math
import random
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from torch.nn.parallel import DistributedDataParallel

from mrcnf import MRCNF, Density, dequantize
from repro.checkpoint import (
    check_compatible,
    checkpoint_path,
    load_checkpoint,
    model_config,
    save_checkpoint,
)
from repro.config import Experiment, LossConfig, TrainingConfig
from repro.datasets import load_experiment_data, random_horizontal_flip
from repro.distributed import SINGLE_PROCESS, World
from repro.files import write_json
from repro.metrics_log import MetricsLog
from repro.progress import TrainingProgress
from repro.runtime import generator, provenance

# Independent random streams of one iteration.
ORDER_STREAM, FLIP_STREAM, NOISE_STREAM, PROBE_STREAM = range(4)
# Per-iteration losses logged (averaged over processes).
LOGGED = ("loss", "bpd", "kinetic_energy", "jacobian_frobenius")


class TrainingDivergedError(RuntimeError):
    """Too many consecutive steps had huge gradients; the last checkpoint is kept."""


@dataclass
class TrainState:
    """Counters that, with the model and optimiser, determine the rest of a run."""

    iteration: int = 0
    epoch: int = 0
    position: int = 0
    consecutive_skips: int = 0
    train_seconds: float = 0.0
    best_bpd: float = math.inf


def learning_rate(iteration: int, *, base: float, warmup: int) -> float:
    """Linear warm-up over ``warmup`` iterations, then constant."""
    return base * min(1.0, (iteration + 1) / max(warmup, 1))


def loss_terms(density: Density, weights: LossConfig) -> torch.Tensor:
    """Batch means of (loss, bpd, kinetic energy, Jacobian-Frobenius), in the order of LOGGED."""
    bpd = density.bits_per_dim().mean()
    kinetic = density.kinetic_energy.mean()
    jacobian = density.jacobian_frobenius.mean()
    loss = bpd + weights.kinetic_energy * kinetic + weights.jacobian_frobenius * jacobian
    return torch.stack([loss, bpd, kinetic, jacobian])


def scheduled_iterations(training: TrainingConfig, *, num_images: int) -> int:
    """Iterations of the schedule: ``epochs`` passes over ``num_images``, capped by max_iterations.

    The time budget may stop a run earlier.
    """
    iterations = training.epochs * (num_images // training.batch_size)
    if training.max_iterations is None:
        return iterations
    return min(iterations, training.max_iterations)


def epoch_order(num_images: int, *, seed: int, epoch: int) -> torch.Tensor:
    """The deterministic order in which an epoch visits the training images."""
    return torch.randperm(num_images, generator=generator("cpu", seed, ORDER_STREAM, epoch))


def train(
    experiment: Experiment,
    *,
    run_dir: Path,
    device: torch.device,
    time_budget_hours: float | None,
    console: Console | None = None,
    world: World = SINGLE_PROCESS,
) -> dict[str, Any]:
    """Train an experiment, resuming from ``run_dir``'s last checkpoint when there is one.

    Under ``torchrun`` every process takes its share of each global batch (DistributedDataParallel
    averages the gradients), so the updates are those of one process with the same batch; rank 0
    alone logs and writes files.

    Args:
        experiment: The resolved configuration.
        run_dir: Folder for checkpoints, metrics and the resolved configuration.
        device: Where to train.
        time_budget_hours: Stop once this much training time is spent (None: no budget).
        console: Where to show progress (None: quiet).
        world: This process's place among the processes of the run.

    Returns:
        The training summary, also written to ``run_dir/train_summary.json``.

    Raises:
        CheckpointError: The last checkpoint is corrupt or of another configuration.
        TrainingDivergedError: Too many consecutive oversized gradients.
    """
    cfg, opt = experiment.training, experiment.optimizer
    console = console if console and world.is_main else Console(quiet=True)
    shares = world.size * cfg.accumulation_steps
    if cfg.batch_size % shares:
        raise ValueError(
            f"batch size {cfg.batch_size} does not split into {world.size} processes × "
            f"{cfg.accumulation_steps} accumulation steps: change training.batch_size or "
            "training.accumulation_steps"
        )
    if world.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(run_dir / "config.json", experiment.to_dict())

    data = load_experiment_data(experiment.data).train
    if len(data) < cfg.batch_size:
        raise ValueError(f"{len(data)} training images cannot fill a batch of {cfg.batch_size}")
    batches_per_epoch = len(data) // cfg.batch_size

    torch.manual_seed(cfg.seed)
    model = MRCNF(model_config(experiment, channels=data.shape[1])).to(device).train()
    network = DistributedDataParallel(model) if world.distributed else model
    optimizer = torch.optim.Adam(model.parameters(), lr=opt.lr)
    state = TrainState()
    metrics = MetricsLog(run_dir / "train_metrics.tsv")

    last = checkpoint_path(run_dir, "last")
    if last.exists():
        payload = load_checkpoint(last, map_location=device)
        check_compatible(payload, experiment, last)
        model.load_state_dict(payload["model"])
        optimizer.load_state_dict(payload["optimizer"])
        state = TrainState(**payload["state"])
        _set_rng_states(payload["rng"])
        console.log(f"resumed {experiment.id} from {last} at iteration {state.iteration}")
    if world.is_main:
        metrics.truncate(state.iteration)

    max_iterations = scheduled_iterations(cfg, num_images=len(data))
    # Drawn once per epoch, not per iteration (a permutation of 1.28M ImageNet indices is slow).
    order_of = functools.lru_cache(maxsize=1)(
        lambda epoch: epoch_order(len(data), seed=cfg.seed, epoch=epoch)
    )
    budget_seconds = math.inf if time_budget_hours is None else time_budget_hours * 3600
    window_bpd: list[float] = []
    last_save = time.monotonic()
    saved_iteration = state.iteration if last.exists() else -1

    def save(*, best: bool) -> None:
        nonlocal saved_iteration
        saved_iteration = state.iteration
        world.barrier()
        if not world.is_main:
            return
        payload = {
            "experiment": experiment.id,
            "config": experiment.to_dict(),
            "image_shape": list(data.shape[1:]),
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "state": asdict(state),
            "rng": _rng_states(),
        }
        save_checkpoint(last, payload)
        if best:
            save_checkpoint(checkpoint_path(run_dir, "best"), payload)

    with TrainingProgress(console, total=max_iterations, start=state.iteration) as progress:
        while True:
            if state.iteration >= max_iterations:
                stopped_by = "max_iterations" if state.epoch < cfg.epochs else "max_epochs"
                break
            if state.train_seconds >= budget_seconds:
                stopped_by = "time_budget"
                break

            # The batch of this iteration, from this epoch's fixed order.
            indices = order_of(state.epoch)[state.position : state.position + cfg.batch_size]
            pixels = data[indices]
            seed, step = cfg.seed, state.iteration
            if experiment.data.horizontal_flip:
                flips = generator("cpu", seed, FLIP_STREAM, step)
                pixels = random_horizontal_flip(pixels, generator=flips)
            x = dequantize(pixels, generator=generator("cpu", seed, NOISE_STREAM, step))
            x = x[world.rank :: world.size].to(device)  # this process's share of the batch
            lr = learning_rate(state.iteration, base=opt.lr, warmup=opt.warmup_iterations)
            for group in optimizer.param_groups:
                group["lr"] = lr

            # One step, accumulated over micro-batches: loss = mean bpd + λ_KE·KE + λ_JF·JF.
            _synchronize(device)
            started = time.perf_counter()
            model.reset_function_evaluations()
            optimizer.zero_grad(set_to_none=True)
            micro_batches = x.chunk(cfg.accumulation_steps)
            terms = torch.zeros(len(LOGGED), device=device)
            nfe_forward = 0
            for micro, part in enumerate(micro_batches):
                # DDP averages gradients over processes once, after the last micro-batch.
                last_micro = micro == len(micro_batches) - 1
                sync = network.no_sync() if world.distributed and not last_micro else nullcontext()
                with sync:
                    before = model.function_evaluations
                    probes = generator(device, seed, PROBE_STREAM, step, world.rank, micro)
                    part_terms = loss_terms(network(part, generator=probes), experiment.loss)
                    nfe_forward += model.function_evaluations - before
                    (part_terms[0] / len(micro_batches)).backward()
                terms += part_terms.detach() / len(micro_batches)
            nfe_backward = model.function_evaluations - nfe_forward
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), opt.grad_clip).item()
            skipped = not math.isfinite(grad_norm) or grad_norm >= opt.skip_grad_norm
            if skipped:
                state.consecutive_skips += 1
            else:
                optimizer.step()
                state.consecutive_skips = 0
            _synchronize(device)
            seconds = world.maximum(time.perf_counter() - started)
            logged = world.sum(terms) / world.size

            state.train_seconds += seconds
            state.iteration += 1
            state.position += cfg.batch_size
            if state.position + cfg.batch_size > len(data):
                state.epoch, state.position = state.epoch + 1, 0
            row = {
                "iteration": state.iteration,
                "epoch": state.epoch,
                **dict(zip(LOGGED, logged.tolist(), strict=True)),
                "nfe_forward": nfe_forward,
                "nfe_backward": nfe_backward,
                "grad_norm": grad_norm,
                "lr": lr,
                "skipped": int(skipped),
                "seconds": seconds,
                "images_per_second": cfg.batch_size / seconds,
            }
            if world.is_main:
                metrics.append(row)
                progress.update(row)
            window_bpd.append(row["bpd"])
            if state.consecutive_skips > opt.max_consecutive_skips:
                raise TrainingDivergedError(
                    f"{experiment.id}: {state.consecutive_skips} consecutive steps with gradient "
                    f"norm ≥ {opt.skip_grad_norm}; the last checkpoint {last} is kept"
                )

            since_save = world.maximum(time.monotonic() - last_save)
            due = state.iteration % cfg.checkpoint_every_iterations == 0 or (
                since_save >= cfg.checkpoint_every_minutes * 60
            )
            if due:
                mean_bpd = float(np.mean(window_bpd))
                is_best = mean_bpd < state.best_bpd
                state.best_bpd = min(state.best_bpd, mean_bpd)
                save(best=is_best)
                window_bpd, last_save = [], time.monotonic()
                console.log(f"{experiment.id}: iteration {state.iteration}, bpd {mean_bpd:.4f}")

    if saved_iteration != state.iteration:
        mean_bpd = float(np.mean(window_bpd)) if window_bpd else math.inf
        is_best = mean_bpd < state.best_bpd
        state.best_bpd = min(state.best_bpd, mean_bpd)
        save(best=is_best)

    summary = {
        "experiment": experiment.id,
        "profile": experiment.profile,
        "iterations": state.iteration,
        "epochs": state.iteration / batches_per_epoch,
        "train_hours": state.train_seconds / 3600,
        "seconds_per_iteration": state.train_seconds / max(state.iteration, 1),
        "stopped_by": stopped_by,
        "time_budget_hours": time_budget_hours,
        "final_bpd": metrics.last_value("bpd") if world.is_main else None,
        "processes": world.size,
        "provenance": provenance(
            profile=experiment.profile, params_hash=experiment.params_hash(), device=device
        ),
    }
    if world.is_main:
        write_json(run_dir / "train_summary.json", summary)
    return summary


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rng_states() -> dict[str, Any]:
    mt_name, keys, position, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "numpy": [mt_name, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached],
        "python": random.getstate(),
    }


def _set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    mt_name, keys, position, has_gauss, cached = states["numpy"]
    np.random.set_state((mt_name, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
