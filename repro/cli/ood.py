"""``repro eval ood``: out-of-distribution detection by a trained experiment (a command of the
``eval`` group)."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from repro.cli.common import (
    COMPILE,
    OVERWRITE,
    console,
    device_and_world,
    model_options,
    run_layout,
    user_errors,
)


@click.command(name="ood")
@click.argument("experiment_id", metavar="EXPERIMENT")
@OVERWRITE
@model_options
@COMPILE
@user_errors
def ood(
    experiment_id: str,
    overwrite: bool,
    params_path: Path,
    profile: str | None,
    device: str,
    tf32: bool,
    compiled: bool,
) -> None:
    """Out-of-distribution detection by EXPERIMENT: its test images against params.yaml's
    ood.datasets, by bpd and by S = bpd - L(x) (L: a lossless code length per dimension).

    Writes the run's ood.json and ood_scores.npz (every image's scores) and
    tables/<profile>/ood_<EXPERIMENT>.png (their histograms).

    \b
    Examples:
      repro eval ood cifar10-2res-small --profile smoke
      repro eval ood cifar10-3res-small --profile paper --device cuda
    """
    from repro.config import load_params
    from repro.layout import ProfileLayout
    from repro.ood.evaluate import evaluate_ood

    params = load_params(params_path)
    experiment = params.experiment(experiment_id, profile=profile)
    settings = params.ood(experiment.profile)
    torch_device, world = device_and_world(device, tf32, compiled=compiled)
    result = evaluate_ood(
        experiment,
        settings,
        run_dir=run_layout(experiment).root,
        histogram=ProfileLayout(experiment.profile).ood_histogram(experiment.id),
        device=torch_device,
        console=console,
        world=world,
        overwrite=overwrite,
    )
    if result is None:
        return
    table = Table(
        title=f"{experiment.id} ({experiment.profile}): {result.num_images} {result.dataset} test "
        f"images (bpd {result.bpd:.3f}, L {result.code_length:.3f}), {result.checkpoint} checkpoint"
    )
    columns = (
        "set",
        "images",
        "bpd",
        "L",
        "auROC bpd",
        "auROC S",
        "auROC per level (finest first)",
    )
    for column in columns:
        table.add_column(column)
    for entry in result.sets:
        table.add_row(
            f"{entry.name} (for {entry.column})",
            str(entry.num_images),
            f"{entry.bpd:.3f}",
            f"{entry.code_length:.3f}",
            f"{entry.auroc_bpd:.3f}",
            f"{entry.auroc_S:.3f}",
            ", ".join(f"{value:.3f}" for value in entry.auroc_per_resolution),
        )
    Console().print(table)
