"""Commands that run models: training, sampling and evaluation."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from repro.cli.common import (
    BATCH_SIZE,
    COMPILE,
    FID_SAMPLE_COUNT,
    OVERWRITE,
    SAMPLE_COUNT,
    SEED,
    TEMPERATURE,
    console,
    device_and_world,
    experiment_for,
    model_options,
    run_layout,
    user_errors,
)


@click.command()
@click.argument("experiment_id", metavar="EXPERIMENT")
@model_options
@COMPILE
@click.option(
    "--allow-numerics-change",
    is_flag=True,
    help="Resume a run trained under other numerics (e.g. without --tf32); the change is "
    "recorded in the checkpoint and the training summary.",
)
@user_errors
def train(
    experiment_id: str,
    params_path: Path,
    profile: str | None,
    device: str,
    tf32: bool,
    allow_numerics_change: bool,
    compiled: bool,
) -> None:
    """Train EXPERIMENT, resuming from its last checkpoint if there is one.

    \b
    Examples:
      repro train cifar10-2res-small --profile smoke
      repro train cifar10-2res-small --profile paper --device cuda
    """
    from repro.train import train as run_training

    experiment = experiment_for(params_path, experiment_id, profile)
    folder = run_layout(experiment).root
    torch_device, world = device_and_world(device, tf32, compiled=compiled)
    summary = run_training(
        experiment,
        run_dir=folder,
        device=torch_device,
        console=console,
        world=world,
        allow_numerics_change=allow_numerics_change,
    )
    if world.is_main:
        console.print(
            f"[green]trained[/green] {experiment.id} ({experiment.profile}): "
            f"{summary.iterations} iterations, final bpd {summary.final_bpd:.4f}, "
            f"{summary.train_hours * 3600:.1f} s, stopped by {summary.stopped_by} -> {folder}"
        )


@click.command()
@click.argument("experiment_id", metavar="EXPERIMENT")
@OVERWRITE
@model_options
@COMPILE
@user_errors
def bpd(
    experiment_id: str,
    overwrite: bool,
    params_path: Path,
    profile: str | None,
    device: str,
    tf32: bool,
    compiled: bool,
) -> None:
    """Bits per dimension of EXPERIMENT's trained model on the whole test split.

    The checkpoint is params.yaml's evaluation.checkpoint (best: chosen by validation).

    \b
    Example:
      repro eval bpd cifar10-2res-small --profile smoke
    """
    from repro.eval_bpd import evaluate_run

    experiment = experiment_for(params_path, experiment_id, profile)
    torch_device, world = device_and_world(device, tf32, compiled=compiled)
    result = evaluate_run(
        experiment,
        run_dir=run_layout(experiment).root,
        device=torch_device,
        console=console,
        world=world,
        overwrite=overwrite,
    )
    if not world.is_main:
        return
    ending = "exact" if result.exact_end else "interpolated"
    table = Table(
        title=f"{experiment.id} ({experiment.profile}), {result.num_images} images, "
        f"{result.checkpoint} checkpoint (iteration {result.checkpoint_iteration}), "
        f"bpd with the solver's {ending} end at t = 1"
    )
    # The per-resolution terms exclude the 8 bits of the 256 dequantisation bins.
    columns = (
        "bpd",
        "bpd (bin centres)",
        "interpolated end",
        "exact end",
        "per resolution, finest first (+ 8)",
        "NFE",
        "img/s",
    )
    for column in columns:
        table.add_column(column)
    table.add_row(
        _with_error(result.bpd, result.bpd_standard_error, "{:.4f}"),
        _with_error(result.bpd_bin_centre, result.bpd_bin_centre_standard_error, "{:.4f}"),
        _optional(result.bpd_interpolated_end),
        _optional(result.bpd_exact_end),
        ", ".join(f"{v:.3f}" for v in result.bpd_per_resolution),
        f"{result.nfe_mean:.0f}",
        f"{result.images_per_second:.1f}",
    )
    Console().print(table)


@click.command()
@click.argument("experiment_id", metavar="EXPERIMENT")
@click.option("--temperature", type=TEMPERATURE, default=1.0, help="Sampling temperature T.")
@click.option("--num", "-n", "num_samples", type=SAMPLE_COUNT, default=64, help="Images to draw.")
@click.option("--seed", type=SEED, default=0, help="Image i uses seed + i.")
@click.option("--batch-size", type=BATCH_SIZE, default=64, help="Does not change images.")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Output stem.")
@OVERWRITE
@model_options
@COMPILE
@user_errors
def sample(
    experiment_id: str,
    temperature: float,
    num_samples: int,
    seed: int,
    batch_size: int,
    out: Path | None,
    overwrite: bool,
    params_path: Path,
    profile: str | None,
    device: str,
    tf32: bool,
    compiled: bool,
) -> None:
    """Draw 8-bit images from EXPERIMENT's trained model (an .npz and a PNG grid).

    The checkpoint is params.yaml's evaluation.checkpoint (best: chosen by validation).

    \b
    Example:
      repro sample cifar10-3res-small --temperature 0.7 --num 64
    """
    from repro.outputs import check_writable, claimed
    from repro.sampling import sample_run, samples_held, save_samples

    experiment = experiment_for(params_path, experiment_id, profile)
    layout = run_layout(experiment)
    torch_device, world = device_and_world(device, tf32, autotune=False, compiled=compiled)
    seeds = list(range(seed, seed + num_samples))
    stem = out or layout.samples(temperature)
    main, requested = world.is_main, {"num_samples": num_samples}
    with claimed(
        Path(f"{stem}.npz"), held=samples_held, new=requested, overwrite=overwrite, enabled=main
    ):
        if main:
            check_writable(Path(f"{stem}.png"))
        images, iteration = sample_run(
            layout, experiment, seeds=seeds, temperature=temperature, batch_size=batch_size,
            device=torch_device, console=console, world=world,
        )  # fmt: skip
        if main:
            save_samples(images, seeds=seeds, stem=stem)
    if main:
        checkpoint = f"{experiment.evaluation.checkpoint} checkpoint, iteration {iteration}"
        console.print(
            f"[green]wrote[/green] {stem}.npz and {stem}.png ({len(images)} images, {checkpoint})"
        )


@click.command()
@click.argument("experiment_id", metavar="EXPERIMENT")
@click.option(
    "--temperature",
    "temperatures",
    type=TEMPERATURE,
    multiple=True,
    help="Temperature T (repeatable; default: every temperature of params.yaml's fid section).",
)
@click.option(
    "--num",
    "num_samples",
    type=FID_SAMPLE_COUNT,
    default=None,
    help="Samples per seed set (default: params.yaml's fid.num_samples); another count than "
    "the pinned one is written to its own file, fid/T<T>_n<num>.json.",
)
@OVERWRITE
@model_options
@COMPILE
@user_errors
def fid(
    experiment_id: str,
    temperatures: tuple[float, ...],
    num_samples: int | None,
    overwrite: bool,
    params_path: Path,
    profile: str | None,
    device: str,
    tf32: bool,
    compiled: bool,
) -> None:
    """FID and KID of EXPERIMENT's samples against its training split, per temperature.

    The checkpoint is params.yaml's evaluation.checkpoint (best: chosen by validation).

    \b
    Examples:
      repro eval fid cifar10-3res-small --temperature 0.7
      repro eval fid cifar10-3res-small --profile paper      # all six temperatures, 50k samples
    """
    from repro.eval_fid import evaluate_fid

    experiment = experiment_for(params_path, experiment_id, profile)
    torch_device, world = device_and_world(device, tf32, autotune=False, compiled=compiled)
    table = Table(title=f"{experiment.id} ({experiment.profile})")
    for column in ("T", "FID", "KID", "samples", "checkpoint"):
        table.add_column(column, justify="right")
    for temperature in temperatures or experiment.fid.temperatures:
        result = evaluate_fid(
            experiment,
            run_dir=run_layout(experiment).root,
            temperature=temperature,
            device=torch_device,
            num_samples=num_samples,
            console=console,
            world=world,
            overwrite=overwrite,
        )
        if result is None:
            continue
        table.add_row(
            f"{temperature:.2f}",
            _with_error(result.fid, result.fid_spread, "{:.2f}"),
            f"{result.kid_mean:.4f} ± {result.kid_std:.4f}",
            str(result.num_samples),
            f"{result.checkpoint} (iteration {result.checkpoint_iteration})",
        )
    if world.is_main:
        Console().print(table)


def _with_error(value: float, error: float | None, number: str) -> str:
    """A value, with ``± error`` where it has one (bpd: standard error; FID: seed-set spread)."""
    text = number.format(value)
    return text if error is None else f"{text} ± {number.format(error)}"


def _optional(bpd: float | None) -> str:
    """A bpd, or a dash where there is none (a fixed-grid solver has no interpolated end)."""
    return "–" if bpd is None else f"{bpd:.4f}"
