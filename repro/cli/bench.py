"""``repro bench``: variant against variant on one experiment, and projected GPU hours."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from repro.cli.common import BATCH_SIZE, DEVICE, PARAMS, PROFILE, console, device_for, user_errors

# Metrics as rows, variants as columns: narrow enough for any terminal.
COLUMNS = {
    "speedup_vs_authors": ("× authors", "{:.2f}"),
    "seconds_per_iteration": ("s/iter", "{:.3f}"),
    "ms_per_evaluation_forward": ("ms/eval fwd", "{:.2f}"),
    "ms_per_evaluation_backward": ("ms/eval bwd", "{:.2f}"),
    "nfe_forward": ("NFE fwd", "{:.0f}"),
    "nfe_backward": ("NFE bwd", "{:.0f}"),
    "bits_per_dim": ("bits/dim", "{:.5f}"),
    "bits_per_dim_difference": ("Δ bits/dim", "{:+.1e}"),
    "eval_images_per_second": ("eval img/s", "{:.1f}"),
    "sample_images_per_second": ("sample img/s", "{:.1f}"),
    "peak_memory_mb": ("peak MiB", "{:.0f}"),
    "forward_tflops": ("fwd TFLOP/s", "{:.3f}"),
    "share_of_peak": ("of peak", "{:.1%}"),
}


def wide_console() -> Console:
    """Standard output; logs and CI are no terminals, so give the tables room to be read there."""
    console = Console()
    return console if console.is_terminal else Console(width=132)


def report_row(name: str, row: dict[str, Any]) -> None:
    """One line as each variant or experiment finishes, so a long run shows its progress."""
    summary = row.get("error") or f"{row['seconds_per_iteration']:.3f} s/iter"
    console.log(f"{name}: {summary}")


def variants_table(result: dict[str, Any]) -> Table:
    """The comparison as a rich table, one column per variant."""
    table = Table(
        title=f"{result['experiment']}, batch {result['batch_size']}, "
        f"{result['hardware']['device']}"
    )
    table.add_column("metric")
    for name in result["variants"]:
        table.add_column(name, justify="right")
    rows = result["variants"].values()
    for key, (header, fmt) in COLUMNS.items():
        cells = [
            row.get("error", "n/a") if row.get(key) is None else fmt.format(row[key])
            for row in rows
        ]
        table.add_row(header, *cells)
    return table


def profile_table(profile: dict[str, Any]) -> Table:
    """The default path's kernel profile."""
    table = Table(title="Default path, one training iteration")
    table.add_column("")
    table.add_column("value", justify="right")
    table.add_row("s/iter (unprofiled)", f"{profile['seconds_per_iteration']:.3f}")
    table.add_row("operators", str(profile["operators_per_iteration"]))
    if "kernels_per_iteration" in profile:
        table.add_row("kernels", str(profile["kernels_per_iteration"]))
        table.add_row("device busy", f"{profile['device_busy_share']:.1%}")
        for kernel in profile["top_kernels"]:
            table.add_row(kernel["name"][:60], f"{kernel['seconds']:.3f} s in {kernel['launches']}")
    return table


def projection_table(projection: dict[str, dict[str, Any]]) -> Table:
    """Projected against published GPU hours."""
    table = Table(title="Projected GPU hours of the pinned schedules (fresh models' NFE)")
    table.add_column("experiment", no_wrap=True)
    headers = (
        "path",
        "s/iter",
        "NFE fwd",
        "iterations",
        "projected h",
        "published h",
        "iterations in published h",
    )
    for column in headers:
        table.add_column(column, justify="right")
    for experiment_id, row in projection.items():
        published = row["published_hours"]
        published_text = f"{published}" if published is not None else "-"
        if "error" in row:
            table.add_row(experiment_id, row["path"], row["error"], "", "", "", published_text, "")
            continue
        within = row["iterations_in_published_hours"]
        table.add_row(
            experiment_id,
            row["path"],
            f"{row['seconds_per_iteration']:.3f}",
            f"{row['nfe_forward']:.0f}",
            f"{row['schedule_iterations']:,}",
            f"{row['hours']:.1f}",
            published_text,
            "-" if within is None else f"{within:,}",
        )
    return table


# The keys of repro.bench.images.IMAGES (importing it would load torch for `repro --help`; a test
# keeps the two equal).
IMAGE_KINDS = ("noise", "structured")


@click.command(name="bench")
@click.argument("experiment_id", metavar="EXPERIMENT", default="cifar10-2res-small")
@click.option(
    "--variant",
    "variants",
    multiple=True,
    help="A variant of repro.bench.VARIANTS to compare with the authors' formulation "
    "(repeatable; default: every variant the device runs).",
)
@click.option("--batch-size", type=BATCH_SIZE, default=None, help="Default: pinned.")
@click.option(
    "--checkpoint",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Time this trained model (a checkpoint of EXPERIMENT's architecture, trained on any "
    "data) instead of a fresh one: trained models take several times the evaluations.",
)
@click.option(
    "--images",
    type=click.Choice(IMAGE_KINDS),
    default="noise",
    help="What the models run on: uniform noise, or structured synthetic images (what a "
    "model trained on them, as scripts/gpu_check.sh does, expects).",
)
@click.option("--iterations", type=click.IntRange(1), default=3, help="Timed iterations.")
@click.option(
    "--project/--no-project",
    default=False,
    help="Also time every Table 5 experiment's default path and project its GPU hours.",
)
@click.option("--out", type=click.Path(path_type=Path), default=None, help="JSON to write.")
@PARAMS
@PROFILE
@DEVICE
@user_errors
def bench_command(
    experiment_id: str,
    variants: tuple[str, ...],
    batch_size: int | None,
    checkpoint: Path | None,
    images: str,
    iterations: int,
    project: bool,
    out: Path | None,
    params_path: Path,
    profile: str | None,
    device: str,
) -> None:
    """Time training, evaluation and sampling of EXPERIMENT, variant against variant.

    Ratios are to the authors' formulation (adjoint, eager, float32) on the same inputs and
    weights; "Δ bits/dim" is each variant's log-likelihood difference to it.

    \b
    Examples:
      repro bench cifar10-2res-small --profile paper --device cuda
      repro bench imagenet64-2res-small --profile paper --device cuda --project
      repro bench --profile smoke --device cpu --variant direct
      repro bench cifar10-2res-small --profile paper --device cuda \\
        --checkpoint runs/paper/cifar10-2res-small/checkpoints/best.pt
    """
    from repro.bench import VARIANTS, bench, checkpoint_weights
    from repro.config import load_params
    from repro.files import write_json
    from repro.layout import bench_result
    from repro.locks import exclusive
    from repro.outputs import check_writable
    from repro.runtime import hardware
    from repro.schema import to_plain

    params = load_params(params_path)
    experiment = params.experiment(experiment_id, profile=profile)
    path = out or bench_result(experiment.id)
    check_writable(path)  # before minutes of timing
    weights = None if checkpoint is None else checkpoint_weights(checkpoint, experiment)
    torch_device = device_for(device, False)
    chosen = list(variants) or [
        name for name, v in VARIANTS.items() if torch_device.type == "cuda" or not v.tf32
    ]
    # One timing at a time on a machine: two would slow each other.
    with exclusive(path):
        result = bench(
            experiment, device=torch_device, variants=chosen, batch_size=batch_size,
            images=images, weights=weights, iterations=iterations, on_row=report_row,
        )  # fmt: skip
        result["hardware"] = to_plain(hardware(torch_device))
        result["checkpoint"] = None if checkpoint is None else str(checkpoint)
        output = wide_console()
        output.print(variants_table(result))
        output.print(profile_table(result["kernel_profile"]))
        if project:
            result["projection"] = _projection(params, profile=profile, device=torch_device)
            output.print(projection_table(result["projection"]))
        write_json(path, result)
    console.print(f"[green]wrote[/green] {path}")


def _projection(params: Any, *, profile: str | None, device: Any) -> dict[str, Any]:
    """Every Table 5 experiment's default path timed, and its GPU hours projected."""
    from repro.bench import project as project_hours

    resolved = (params.experiment(other, profile=profile) for other in params.experiment_ids)
    timed = [other for other in resolved if other.paper.table5 is not None]
    pinned = params.paper_experiments()
    published = {other.id: pinned[other.id].training.time_budget_hours for other in timed}
    return project_hours(timed, published_hours=published, device=device)
