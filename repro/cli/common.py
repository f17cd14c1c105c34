"""What every command shares: typed options, device set-up and one-line user errors."""

from __future__ import annotations

import dataclasses
import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from mrcnf.bounds import Interval
from repro.experiment import BATCH_SIZES, FID_SAMPLES, SEEDS, TEMPERATURES

console = Console(stderr=True)


class FiniteFloatRange(click.FloatRange):
    """A float option in an :class:`~mrcnf.bounds.Interval`, the one params.yaml declares.

    click's own ``FloatRange`` lets ``nan`` through (every comparison with NaN is false) and an
    unbounded side lets ``inf`` through; both are refused here, as click refuses any bad value.
    """

    name = "float range"

    def __init__(self, interval: Interval) -> None:
        super().__init__(
            interval.low, interval.high, min_open=interval.low_open, max_open=interval.high_open
        )
        self.interval = interval

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not self.interval.contains(number):
            self.fail(f"{number} is not a finite number {self.interval.describe()}.", param, ctx)
        return number


def int_range(interval: Interval) -> click.IntRange:
    """click's integer option type for the integers of ``interval``."""
    return click.IntRange(
        interval.low, interval.high, min_open=interval.low_open, max_open=interval.high_open
    )


TEMPERATURE = FiniteFloatRange(TEMPERATURES)
BATCH_SIZE = int_range(BATCH_SIZES)
SEED = int_range(SEEDS)
FID_SAMPLE_COUNT = int_range(FID_SAMPLES)
# repro sample holds its images in memory as FID does; one image is a valid request.
SAMPLE_COUNT = int_range(dataclasses.replace(FID_SAMPLES, low=1))


OUT_OF_MEMORY = (
    "out of GPU memory: in params.yaml set solver.train.adjoint: true (constant memory, slower) "
    "or raise training.accumulation_steps; for eval and sampling lower the batch size "
    "(checkpoints and results already written are kept)"
)


def user_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Print an anticipated failure as one red line and exit with status 1; bugs keep tracebacks."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except Exception as error:
            message = _user_message(error)
            if message is None:
                raise
            console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
            sys.exit(1)

    return wrapper


def _user_message(error: Exception) -> str | None:
    """The one line to show for an anticipated failure; ``None`` for a bug (keep its traceback)."""
    import torch

    from mrcnf import MRCNFSettingError
    from repro.errors import ReproError

    if isinstance(error, torch.cuda.OutOfMemoryError):
        return OUT_OF_MEMORY
    if isinstance(error, ReproError | MRCNFSettingError):
        return str(error)
    if isinstance(error, OSError) and error.filename is not None:
        return f"{error.filename}: {error.strerror or error}"
    return None


PARAMS = click.option(
    "--params",
    "params_path",
    type=click.Path(path_type=Path),
    default="params.yaml",
    show_default=True,
    help="The pinned experiments.",
)
PROFILE = click.option(
    "--profile", default=None, help="Profile of params.yaml (default: its 'profile' key)."
)
DEVICE = click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default="auto",
    show_default=True,
    help="Where to run.",
)
OVERWRITE = click.option(
    "--overwrite",
    is_flag=True,
    help="Replace an existing result even if it was computed from more (samples, images) or "
    "from another checkpoint.",
)
COMPILE = click.option(
    "--compile/--no-compile",
    "compiled",
    default=False,
    show_default=True,
    help="Compile the velocity networks with torch.compile (fewer kernels on a GPU; the first "
    "evaluations compile; results equal eager's to float rounding, and are recorded as compiled).",
)
TF32 = click.option(
    "--tf32/--no-tf32",
    default=False,
    show_default=True,
    help="TF32 matrix arithmetic on CUDA (faster, not bit-reproducible).",
)


def model_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--params``, ``--profile``, ``--device`` and ``--tf32``: the options of every command that
    runs a model, in this order in its help."""
    for option in (TF32, DEVICE, PROFILE, PARAMS):
        command = option(command)
    return command


def experiment_for(params_path: Path, experiment_id: str, profile: str | None) -> Any:
    """Resolve an experiment of params.yaml (imported lazily: ``repro --help`` stays fast)."""
    from repro.config import load_params

    return load_params(params_path).experiment(experiment_id, profile=profile)


def run_layout(experiment: Any) -> Any:
    """The run folder of an experiment under its profile."""
    from repro.layout import ProfileLayout

    return ProfileLayout(experiment.profile).run(experiment.id)


def device_for(name: str, tf32: bool, *, autotune: bool = True, compiled: bool = False) -> Any:
    """The torch device to run on (this rank's GPU under torchrun), with TF32 as asked.

    ``autotune=False`` for commands that sample: they run cuDNN untuned (see
    :func:`repro.runtime.untuned_convolutions`), which their results' provenance then records.
    """
    from repro.distributed import local_device
    from repro.runtime import configure_numerics, resolve_device

    configure_numerics(tf32=tf32, autotune=autotune, compiled=compiled)
    return local_device(resolve_device(name))


def device_and_world(
    name: str, tf32: bool, *, autotune: bool = True, compiled: bool = False
) -> tuple[Any, Any]:
    """The device, and this process's place among the processes torchrun started (if any)."""
    from repro.distributed import init_world

    device = device_for(name, tf32, autotune=autotune, compiled=compiled)
    world = init_world(device)
    click.get_current_context().call_on_close(world.close)
    return device, world
