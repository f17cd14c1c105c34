"""Commands of the FID calibration: the shuffled test split's FID (``repro eval calibration``),
the Table 7 models' bpd of the same images (``repro eval shuffled-bpd``) and its figure
(``repro plot-shuffled-bpd``)."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from repro.cli.common import (
    COMPILE,
    OVERWRITE,
    PARAMS,
    PROFILE,
    console,
    device_and_world,
    device_for,
    model_options,
    run_layout,
    user_errors,
)


@click.command(name="calibration")
@OVERWRITE
@model_options
@user_errors
def calibration(
    overwrite: bool, params_path: Path, profile: str | None, device: str, tf32: bool
) -> None:
    """FID and KID of the test split shuffled in k×k patches against the training split.

    No model is involved: on CIFAR10 (the paper profile) the paper measured 340.42, 299.99,
    235.22, 101.36, 33.06 for k = 1 … 16 and 3.15 unshuffled. Run it first on a new machine:
    numbers within tolerance (repro table --id calibration) mean its FID pipeline and data
    compute Table 7's FIDs as the paper's did. Settings: params.yaml's calibration section.

    \b
    Examples:
      repro eval calibration                   # smoke: MNIST at 16×16, offline, seconds
      repro eval calibration --profile paper   # CIFAR10, all 10,000 test images
    """
    from repro.calibration import evaluate_calibration
    from repro.config import load_params
    from repro.published import load_published
    from repro.tables.calibration import patch_of

    params = load_params(params_path)
    name = params.checked_profile(profile)
    settings = params.calibration(name)
    result = evaluate_calibration(
        settings,
        profile=name,
        device=device_for(device, tf32),
        console=console,
        overwrite=overwrite,
    )
    published = {
        patch_of(key): fid for key, fid in load_published().extras.fid_shuffled_test.items()
    }
    table = Table(
        title=f"{result.dataset} test split at {result.image_size}×{result.image_size} "
        f"({result.test_images:,} images) shuffled in k×k patches, against "
        f"{result.reference.count:,} training images ({name} profile)"
    )
    for column in ("k", "FID", "KID", "paper (CIFAR10 32×32)"):
        table.add_column(column, justify="right")
    for entry in result.patches:
        paper = published.get(entry.patch)
        table.add_row(
            f"{entry.patch}×{entry.patch}"
            + (" (unshuffled)" if entry.patch == result.image_size else ""),
            f"{entry.fid:.2f}",
            f"{entry.kid_mean:.4f} (sd {entry.kid_std:.4f})",
            "" if paper is None else str(paper),
        )
    Console().print(table)


@click.command(name="shuffled-bpd")
@click.argument("experiment_id", metavar="EXPERIMENT")
@OVERWRITE
@model_options
@COMPILE
@user_errors
def shuffled_bpd(
    experiment_id: str,
    overwrite: bool,
    params_path: Path,
    profile: str | None,
    device: str,
    tf32: bool,
    compiled: bool,
) -> None:
    """Bits per dimension of EXPERIMENT's test images shuffled in k×k patches.

    The images are shuffled as repro eval calibration shuffles them (calibration.seed), for
    every k of calibration.patches that divides their side; the bpd is repro eval bpd's (uniform
    dequantisation, the evaluation seed and checkpoint), so the unshuffled k gives its bpd.

    \b
    Example:
      repro eval shuffled-bpd cifar10-2res-small --profile paper
    """
    from repro.config import load_params
    from repro.shuffled_bpd import evaluate_shuffled_bpd

    params = load_params(params_path)
    experiment = params.experiment(experiment_id, profile=profile)
    settings = params.calibration(experiment.profile)
    torch_device, world = device_and_world(device, tf32, compiled=compiled)
    result = evaluate_shuffled_bpd(
        experiment,
        settings,
        run_dir=run_layout(experiment).root,
        device=torch_device,
        console=console,
        world=world,
        overwrite=overwrite,
    )
    if not world.is_main:
        return
    table = Table(
        title=f"{experiment.id} ({experiment.profile}), {result.num_images} shuffled test images, "
        f"{result.checkpoint} checkpoint (iteration {result.checkpoint_iteration})"
    )
    for column in ("k", "bpd", "per resolution, finest first (+ 8)"):
        table.add_column(column, justify="right")
    for entry in result.patches:
        error = "" if entry.bpd_standard_error is None else f" ± {entry.bpd_standard_error:.4f}"
        table.add_row(
            f"{entry.patch}×{entry.patch}",
            f"{entry.bpd:.4f}{error}",
            ", ".join(f"{v:.3f}" for v in entry.bpd_per_resolution),
        )
    Console().print(table)


@click.command(name="plot-shuffled-bpd")
@PARAMS
@PROFILE
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Figure to write, its format from the suffix "
    "(default: tables/<profile>/shuffled_bpd.png).",
)
@user_errors
def shuffled_bpd_plot(params_path: Path, profile: str | None, out: Path | None) -> None:
    """Plot the Table 7 models' bpd of shuffled test images against the patch size k.

    Reads the results of repro eval shuffled-bpd; the destination is checked writable before any
    is read and replaced atomically. Values with impossible numbers are left out.

    \b
    Example:
      repro plot-shuffled-bpd --profile paper
    """
    from repro.config import load_params
    from repro.shuffled_plot import plot_shuffled_bpd
    from repro.tables import TableInputs

    params = load_params(params_path)
    # Refuses an unknown profile before its folder is checked or made.
    inputs = TableInputs.from_params(params, profile=profile or params.profile)
    patches = params.calibration(inputs.profile).patches
    written = plot_shuffled_bpd(inputs, patches=patches, out=out or inputs.layout.shuffled_bpd_plot)
    console.print(f"[green]wrote[/green] {written}")
