"""The training loop, readable top to bottom: batch, optimisation step, log, validation,
checkpoint.

Every source of randomness of iteration i (data order, flips, dequantisation noise, Hutchinson
probes) is seeded from (seed, i), so a run killed at any point and resumed from its last checkpoint
continues exactly as an uninterrupted run would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from torch.nn.parallel import DistributedDataParallel

from mrcnf import MRCNF, dequantize
from repro.config import Experiment, TrainingConfig
from repro.datasets import load_experiment_data, random_horizontal_flip
from repro.distributed import SINGLE_PROCESS, World
from repro.errors import ReproError
from repro.eval_bpd import measure_bits_per_dim
from repro.files import write_json
from repro.layout import RunLayout
from repro.levels import trained_levels
from repro.locks import exclusive
from repro.metrics_log import MetricsLog
from repro.optimization import LOGGED, StepOutcome, optimization_step
from repro.progress import TrainingProgress
from repro.results import StoppedBy, TrainSummary, write_result
from repro.run_state import Checkpointer, Run, TrainState, start_run
from repro.runtime import generator, provenance

# Independent random streams of one iteration (the probes' is repro.optimization.PROBE_STREAM).
ORDER_STREAM, FLIP_STREAM, NOISE_STREAM = range(3)


class TrainingDivergedError(ReproError):
    """Too many consecutive steps had huge gradients; the last checkpoint is kept."""


class TrainingSettingError(ReproError):
    """Training settings that cannot work with the data or the processes at hand."""


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


class TrainingBatches:
    """The global batch of any iteration: the epoch's fixed order, flips, dequantisation noise."""

    def __init__(self, images: torch.Tensor, *, experiment: Experiment) -> None:
        self.images = images
        self.settings = experiment.training
        self.horizontal_flip = experiment.data.horizontal_flip
        self.resolutions = experiment.model.resolutions
        self._order: tuple[int, torch.Tensor] | None = None

    def order(self, epoch: int) -> torch.Tensor:
        # Drawn once per epoch, not per iteration (a permutation of 1.28M indices is slow).
        if self._order is None or self._order[0] != epoch:
            self._order = (
                epoch,
                epoch_order(len(self.images), seed=self.settings.seed, epoch=epoch),
            )
        return self._order[1]

    def batch(self, state: TrainState) -> torch.Tensor:
        """Dequantised images in [0, 1] of iteration ``state.iteration``, on the CPU.

        Returns:
            B×C×H×W images (``coarse_noise: shared``: the coarse levels are computed from them),
            or B×S×C×H×W (``per_level``: level s dequantised with its own noise, from the stream
            (seed, :data:`NOISE_STREAM`, iteration, s)).
        """
        seed, size, iteration = self.settings.seed, self.settings.batch_size, state.iteration
        pixels = self.images[self.order(state.epoch)[state.position : state.position + size]]
        if self.horizontal_flip:
            flips = generator("cpu", seed, FLIP_STREAM, iteration)
            pixels = random_horizontal_flip(pixels, generator=flips)
        if self.settings.coarse_noise == "shared":
            return dequantize(pixels, generator=generator("cpu", seed, NOISE_STREAM, iteration))
        levels = [
            dequantize(pixels, generator=generator("cpu", seed, NOISE_STREAM, iteration, level))
            for level in range(self.resolutions)
        ]
        return torch.stack(levels, dim=1)


class Validation:
    """What judges the ``best`` checkpoint: the model's bpd on the validation images under the
    evaluation solver, every ``training.validation.every_epochs`` epochs and at the end of a run.

    Under torchrun the processes share the images (:func:`measure_bits_per_dim`). Its time is not
    training time: the time budget counts optimisation steps only.

    Args:
        images: uint8 validation images: the test split, or the held-out training images.
        experiment: The validation, evaluation (batch size, seed) and training settings.
        iterations_per_epoch: Iterations of one pass over the training images.
        device: Where to evaluate.
        world: The processes sharing the work.
    """

    def __init__(
        self,
        images: torch.Tensor,
        *,
        experiment: Experiment,
        iterations_per_epoch: int,
        device: torch.device,
        world: World,
    ) -> None:
        self.images, self.experiment, self.device, self.world = images, experiment, device, world
        self.settings = experiment.training.validation
        self.every = max(1, round(self.settings.every_epochs * iterations_per_epoch))

    def due(self, state: TrainState, *, end_of_run: bool = False) -> bool:
        """Whether the current iteration is to be validated (once only)."""
        if state.validated_iteration == state.iteration:
            return False
        return end_of_run or state.iteration % self.every == 0

    def bits_per_dim(self, model: MRCNF) -> float:
        """The model's mean bpd on the validation images, in evaluation mode (then back)."""
        evaluation = self.experiment.evaluation
        measured = measure_bits_per_dim(
            model, self.images, dequantization=self.settings.dequantization,
            batch_size=evaluation.batch_size, seed=evaluation.seed, device=self.device,
            world=self.world,
        )  # fmt: skip
        return measured.bpd

    def judge(self, run: Run, checkpoints: Checkpointer, *, console: Console) -> None:
        """Validate the current iteration's model; save it as ``best`` when its bpd is the lowest
        so far."""
        state, bpd = run.state, self.bits_per_dim(run.model)
        best = checkpoints.record_validation(run, bpd)
        verdict = (
            "the best so far" if best else f"best {state.best_bpd:.4f} at {state.best_iteration}"
        )
        console.log(
            f"{self.experiment.id}: iteration {state.iteration}, validation bpd {bpd:.4f} on "
            f"{self.settings.images} images ({verdict})"
        )


def train(
    experiment: Experiment,
    *,
    run_dir: Path,
    device: torch.device,
    console: Console | None = None,
    world: World = SINGLE_PROCESS,
    allow_numerics_change: bool = False,
) -> TrainSummary:
    """Train an experiment, resuming from ``run_dir``'s last checkpoint when there is one.

    Under ``torchrun`` the processes share each global batch (DDP averages the gradients) and
    each validation; rank 0 alone logs and writes, and holds the run folder's lock for the whole
    run. It stops at the iteration, epoch or time limit.

    Raises:
        LockedError: Another process is training the same run.
        CheckpointError: The last checkpoint is corrupt, or of other settings or numerics.
        TrainingDivergedError: Too many consecutive oversized gradients.
        TrainingSettingError: The batch cannot be formed from the data, processes, micro-batches.
    """
    with exclusive(run_dir, folder=True, enabled=world.is_main):
        return _train(
            experiment, RunLayout(run_dir), device=device, console=console, world=world,
            allow_numerics_change=allow_numerics_change,
        )  # fmt: skip


def _train(
    experiment: Experiment,
    layout: RunLayout,
    *,
    device: torch.device,
    console: Console | None,
    world: World,
    allow_numerics_change: bool,
) -> TrainSummary:
    """The training loop of :func:`train`, once the run is locked."""
    settings = experiment.training
    console = console if console and world.is_main else Console(quiet=True)
    images, validation = _images_and_validation(experiment, device=device, world=world)
    batches = TrainingBatches(images, experiment=experiment)
    run = start_run(experiment, layout, images.shape[1:], device, allow_numerics_change)
    model, optimizer, state = run.model, run.optimizer, run.state
    network = DistributedDataParallel(model) if world.distributed else model
    metrics = _open_run(experiment, layout, state, console=console, world=world)
    checkpoints = Checkpointer(layout, experiment, run, world=world)
    limit = scheduled_iterations(settings, num_images=len(images))

    with TrainingProgress(console, total=limit, start=state.iteration) as progress:
        while (stopped_by := _stop_reason(state, settings, limit=limit)) is None:
            # This process's share of the iteration's global batch.
            x = batches.batch(state)[world.rank :: world.size].to(device)
            # Loss and backward over micro-batches, clipping, the skip rule, the update.
            outcome = optimization_step(
                model, optimizer, x, experiment=experiment, iteration=state.iteration,
                network=network, world=world,
            )  # fmt: skip
            # Counters advance; one row of metrics, averaged over processes.
            row = _advance(state, outcome, world=world, num_images=len(images), settings=settings)
            if world.is_main:
                metrics.append(row)
                progress.update(row)
            _check_divergence(state, experiment, layout)
            if validation.due(state):
                validation.judge(run, checkpoints, console=console)
            if checkpoints.due(state):
                checkpoints.save(run)

    if validation.due(state, end_of_run=True):
        validation.judge(run, checkpoints, console=console)
    checkpoints.save_unsaved(run)
    summary = _summary(
        experiment, run, stopped_by, images=len(images), metrics=metrics, world=world,
        device=device,
    )  # fmt: skip
    if world.is_main:
        write_result(layout.train_summary, summary)
    return summary


def _open_run(
    experiment: Experiment, layout: RunLayout, state: TrainState, *, console: Console, world: World
) -> MetricsLog:
    """Write the resolved configuration; drop metrics rows logged after the resumed checkpoint."""
    metrics = MetricsLog(layout.train_metrics)
    if world.is_main:
        write_json(layout.config, experiment.to_dict())
        metrics.truncate(state.iteration)
    if state.iteration:
        console.log(f"resumed {experiment.id} from {layout.checkpoint()} at {state.iteration}")
    return metrics


def _images_and_validation(
    experiment: Experiment, *, device: torch.device, world: World
) -> tuple[torch.Tensor, Validation]:
    """The training images, after checking that batches can be formed from them, and the
    validation of the other images (``training.validation.images``: the test split, or the last
    ``data.held_out_images`` of the training split, which training never sees)."""
    settings, data = experiment.training, experiment.data
    shares = world.size * settings.accumulation_steps
    if settings.batch_size % shares:
        raise TrainingSettingError(
            f"batch size {settings.batch_size} does not split into {world.size} processes × "
            f"{settings.accumulation_steps} accumulation steps: change training.batch_size or "
            "training.accumulation_steps"
        )
    splits = load_experiment_data(data)
    kept = max(len(splits.train) - data.held_out_images, 0)
    images, held_out = splits.train[:kept], splits.train[kept:]
    if len(images) < settings.batch_size:
        raise TrainingSettingError(
            f"{len(images)} training images ({len(held_out)} held out) cannot fill a batch of "
            f"{settings.batch_size}: lower training.batch_size or data.held_out_images, or raise "
            "data.limit_train"
        )
    validation = Validation(
        held_out if settings.validation.images == "held_out" else splits.test,
        experiment=experiment,
        iterations_per_epoch=len(images) // settings.batch_size,
        device=device,
        world=world,
    )
    return images, validation


def _stop_reason(state: TrainState, settings: TrainingConfig, *, limit: int) -> StoppedBy | None:
    if state.iteration >= limit:
        return "max_iterations" if state.epoch < settings.epochs else "max_epochs"
    budget = settings.time_budget_hours
    if budget is not None and state.train_seconds >= budget * 3600:
        return "time_budget"
    return None


def _advance(
    state: TrainState,
    outcome: StepOutcome,
    *,
    world: World,
    num_images: int,
    settings: TrainingConfig,
) -> dict[str, Any]:
    """Count the step in ``state`` and return its metrics row (losses averaged over processes)."""
    seconds = world.maximum(outcome.seconds)
    losses = (world.sum(outcome.terms) / world.size).tolist()
    state.consecutive_skips = state.consecutive_skips + 1 if outcome.skipped else 0
    state.train_seconds += seconds
    state.iteration += 1
    state.position += settings.batch_size
    if state.position + settings.batch_size > num_images:
        state.epoch, state.position = state.epoch + 1, 0
    return {
        "iteration": state.iteration,
        "epoch": state.epoch,
        **dict(zip(LOGGED, losses, strict=True)),
        "nfe_forward": outcome.nfe_forward,
        "nfe_backward": outcome.nfe_backward,
        "grad_norm": outcome.grad_norm,
        "lr": outcome.lr,
        "skipped": int(outcome.skipped),
        "seconds": seconds,
        "images_per_second": settings.batch_size / seconds,
    }


def _check_divergence(state: TrainState, experiment: Experiment, layout: RunLayout) -> None:
    rules = experiment.optimizer
    if state.consecutive_skips > rules.max_consecutive_skips:
        raise TrainingDivergedError(
            f"{experiment.id}: {state.consecutive_skips} consecutive steps with gradient "
            f"norm ≥ {rules.skip_grad_norm}; the last checkpoint {layout.checkpoint()} is kept"
        )


def _summary(
    experiment: Experiment,
    run: Run,
    stopped_by: StoppedBy,
    *,
    images: int,
    metrics: MetricsLog,
    world: World,
    device: torch.device,
) -> TrainSummary:
    state, hashed = run.state, experiment.params_hash()
    return TrainSummary(
        experiment=experiment.id,
        profile=experiment.profile,
        iterations=state.iteration,
        epochs=state.iteration / (images // experiment.training.batch_size),
        train_hours=state.train_seconds / 3600,
        seconds_per_iteration=state.train_seconds / max(state.iteration, 1),
        stopped_by=stopped_by,
        time_budget_hours=experiment.training.time_budget_hours,
        final_bpd=metrics.last_value("bpd") if world.is_main else None,
        processes=world.size,
        provenance=provenance(profile=experiment.profile, params_hash=hashed, device=device),
        numerics_history=run.numerics,
        best_iteration=state.best_iteration,
        best_validation_bpd=state.best_bpd if state.best_iteration is not None else None,
        init_from=experiment.training.init_from,
        trained_levels=list(trained_levels(experiment)),
    )
