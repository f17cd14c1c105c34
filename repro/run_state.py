"""A training run's state: what a checkpoint holds, and starting or resuming a run from it.

Every counter, the model, the optimiser, the global random states and the numerics used so far
are saved, so a run killed at any point resumes exactly where it was.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mrcnf import MRCNF
from repro.checkpoint import (
    CheckpointError,
    check_resumable,
    entries,
    load_checkpoint,
    load_weights,
    numerics_history,
    save_checkpoint,
)
from repro.config import Experiment
from repro.distributed import World
from repro.layout import RunLayout
from repro.models import build_model
from repro.progressive import freeze_untrained_levels, initialise_from_parent
from repro.provenance import NumericsSpan
from repro.runtime import current_numerics
from repro.schema import to_plain


@dataclass
class TrainState:
    """Counters that, with the model and optimiser, determine the rest of a run."""

    iteration: int = 0
    epoch: int = 0
    position: int = 0
    consecutive_skips: int = 0
    train_seconds: float = 0.0
    best_bpd: float = math.inf
    """The lowest validation bpd so far: that of ``best.pt``."""
    best_iteration: int | None = None
    """The iteration of ``best.pt`` (None before a first validation)."""
    validated_iteration: int = 0
    """The latest iteration validated (0, the untrained model: none)."""

    def __post_init__(self) -> None:
        # Checkpoints saved before validation chose ``best`` hold the lowest mean training-batch
        # bpd here, which no validation bpd may be compared with.
        if self.best_iteration is None:
            self.best_bpd = math.inf


@dataclass
class Run:
    """What a run carries from iteration to iteration; a checkpoint holds all of it."""

    model: MRCNF
    optimizer: torch.optim.Optimizer
    state: TrainState
    numerics: list[NumericsSpan]
    image_shape: tuple[int, int, int]


class Checkpointer:
    """Saves ``last`` every N iterations or minutes (and at the end), and ``best`` with it whenever
    a validation bpd is the lowest so far, so that a resumed run never starts before its best."""

    def __init__(
        self, layout: RunLayout, experiment: Experiment, run: Run, *, world: World
    ) -> None:
        self.layout, self.settings, self.world = layout, experiment.training, world
        self.stored = {
            "experiment": experiment.id,
            "config": experiment.to_dict(),
            "image_shape": list(run.image_shape),
        }
        # A resumed run's last checkpoint holds its current iteration.
        self.saved_iteration = run.state.iteration or None
        self.last_save = time.monotonic()

    def due(self, state: TrainState) -> bool:
        """Whether ``last`` is to be saved: every N iterations or minutes, unless it holds the
        current iteration already."""
        since = self.world.maximum(time.monotonic() - self.last_save)
        if self.saved_iteration == state.iteration:
            return False
        return state.iteration % self.settings.checkpoint_every_iterations == 0 or (
            since >= self.settings.checkpoint_every_minutes * 60
        )

    def save(self, run: Run, *, best: bool = False) -> None:
        """Save ``last``, and the same payload as ``best`` when asked."""
        self.last_save = time.monotonic()
        self.saved_iteration = run.state.iteration
        self.world.barrier()
        if self.world.is_main:
            payload = {
                **self.stored,
                "model": run.model.state_dict(),
                "optimizer": run.optimizer.state_dict(),
                "state": asdict(run.state),
                "rng": _rng_states(),
                "numerics_history": [to_plain(span) for span in run.numerics],
            }
            save_checkpoint(self.layout.checkpoint("last"), payload)
            if best:
                save_checkpoint(self.layout.checkpoint("best"), payload)

    def record_validation(self, run: Run, bpd: float) -> bool:
        """Record the validation bpd of the current iteration; save ``best`` (and ``last``) when
        it is the lowest so far.

        Returns:
            Whether it is the lowest so far.
        """
        state = run.state
        state.validated_iteration = state.iteration
        # A NaN bpd is never the best.
        if not bpd < state.best_bpd:
            return False
        state.best_bpd, state.best_iteration = bpd, state.iteration
        self.save(run, best=True)
        return True

    def save_unsaved(self, run: Run) -> None:
        """Save, unless the current iteration is saved already (the end of a run)."""
        if self.saved_iteration != run.state.iteration:
            self.save(run)


def start_run(
    experiment: Experiment,
    layout: RunLayout,
    image_shape: torch.Size,
    device: torch.device,
    allow_numerics_change: bool,
) -> Run:
    """A fresh run, or the run of the last checkpoint, continued under the current numerics.

    A fresh progressive run starts its levels from ``training.init_from``'s checkpoint; the levels
    not in ``training.train_levels`` are frozen, and the optimiser holds only the trained ones.
    """
    torch.manual_seed(experiment.training.seed)
    model = build_model(experiment, channels=image_shape[0]).to(device).train()
    last = layout.checkpoint("last")
    fresh = not last.exists()
    if fresh and experiment.training.init_from is not None:
        initialise_from_parent(model, experiment, device=device)
    freeze_untrained_levels(model, experiment)
    trained = [parameter for parameter in model.parameters() if parameter.requires_grad]
    optimizer = torch.optim.Adam(trained, lr=experiment.optimizer.lr)
    if fresh:
        numerics = numerics_history(None, current_numerics(), last, iteration=0, allow_change=False)
        return Run(model, optimizer, TrainState(), numerics, tuple(image_shape))
    payload = load_checkpoint(last, map_location=device)
    check_resumable(payload, experiment, last)
    weights, optimizer_state, counters, rng = entries(
        payload, last, "model", "optimizer", "state", "rng"
    )
    state = _train_state(counters, last)
    numerics = numerics_history(
        payload, current_numerics(), last, iteration=state.iteration,
        allow_change=allow_numerics_change,
    )  # fmt: skip
    load_weights(model, weights, last)
    load_weights(optimizer, optimizer_state, last)
    _set_rng_states(rng)
    return Run(model, optimizer, state, numerics, tuple(image_shape))


def _train_state(counters: Any, path: Path) -> TrainState:
    """The counters a checkpoint stores, an unknown or missing counter being one line."""
    try:
        return TrainState(**counters)
    except TypeError as error:
        raise CheckpointError(
            f"{path} holds counters of another version ({error}): move it away to start afresh"
        ) from None


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
