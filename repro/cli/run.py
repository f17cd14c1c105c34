"""Commands that run models: training, sampling and evaluation."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from repro.cli.common import (
    DEVICE,
    PARAMS,
    PROFILE,
    TEMPERATURE,
    TF32,
    console,
    device_and_world,
    device_for,
    experiment_for,
    user_errors,
)


@click.group(name="eval")
def evaluate() -> None:
    """Evaluate trained experiments."""


@click.command()
@click.argument("experiment_id", metavar="EXPERIMENT")
@PARAMS
@PROFILE
@DEVICE
@TF32
@user_errors
def train(
    experiment_id: str, params_path: Path, profile: str | None, device: str, tf32: bool
) -> None:
    """Train EXPERIMENT, resuming from its last checkpoint if there is one.

    \b
    Examples:
      repro train cifar10-2res-small --profile smoke
      repro train cifar10-2res-small --profile paper --device cuda
    """
    from repro.stages import run_dir, time_budget_hours
    from repro.train import train as run_training

    experiment = experiment_for(params_path, experiment_id, profile)
    folder = run_dir(experiment)
    torch_device, world = device_and_world(device, tf32)
    summary = run_training(
        experiment,
        run_dir=folder,
        device=torch_device,
        time_budget_hours=time_budget_hours(experiment),
        console=console,
        world=world,
    )
    if world.is_main:
        console.print(
            f"[green]trained[/green] {experiment.id} ({experiment.profile}): "
            f"{summary['iterations']} iterations, final bpd {summary['final_bpd']:.4f}, "
            f"{summary['train_hours'] * 3600:.1f} s, stopped by {summary['stopped_by']} -> {folder}"
        )


@evaluate.command()
@click.argument("experiment_id", metavar="EXPERIMENT")
@PARAMS
@PROFILE
@DEVICE
@TF32
@click.option("--checkpoint", type=click.Choice(["last", "best"]), default="last")
@user_errors
def bpd(
    experiment_id: str,
    params_path: Path,
    profile: str | None,
    device: str,
    tf32: bool,
    checkpoint: str,
) -> None:
    """Bits per dimension of EXPERIMENT's trained model on the whole test split.

    \b
    Example:
      repro eval bpd cifar10-2res-small --profile smoke
    """
    from repro.evaluate import evaluate_run
    from repro.stages import run_dir

    experiment = experiment_for(params_path, experiment_id, profile)
    torch_device, world = device_and_world(device, tf32)
    result = evaluate_run(
        experiment,
        run_dir=run_dir(experiment),
        device=torch_device,
        checkpoint=checkpoint,
        console=console,
        world=world,
    )
    if not world.is_main:
        return
    table = Table(title=f"{experiment.id} ({experiment.profile}), {result['num_images']} images")
    for column in ("bpd", "bpd (bin centres)", "per resolution, finest first", "NFE", "img/s"):
        table.add_column(column)
    table.add_row(
        f"{result['bpd']:.4f}",
        f"{result['bpd_bin_centre']:.4f}",
        " + ".join(f"{v:.3f}" for v in result["bpd_per_resolution"]) + " + 8",
        f"{result['nfe_mean']:.0f}",
        f"{result['images_per_second']:.1f}",
    )
    Console().print(table)


@click.command()
@click.argument("experiment_id", metavar="EXPERIMENT")
@click.option("--temperature", type=TEMPERATURE, default=1.0, help="Sampling temperature T.")
@click.option(
    "--num", "-n", "num_samples", type=click.IntRange(1), default=64, help="Images to draw."
)
@click.option("--seed", type=int, default=0, help="Image i uses seed + i.")
@click.option("--batch-size", type=click.IntRange(1), default=64, help="Does not change images.")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Output stem.")
@PARAMS
@PROFILE
@DEVICE
@TF32
@user_errors
def sample(
    experiment_id: str,
    temperature: float,
    num_samples: int,
    seed: int,
    batch_size: int,
    out: Path | None,
    params_path: Path,
    profile: str | None,
    device: str,
    tf32: bool,
) -> None:
    """Draw 8-bit images from EXPERIMENT's trained model (an .npz and a PNG grid).

    \b
    Example:
      repro sample cifar10-3res-small --temperature 0.7 --num 64
    """
    from repro.checkpoint import load_model
    from repro.sampling import generate_images, save_samples
    from repro.stages import run_dir

    experiment = experiment_for(params_path, experiment_id, profile)
    folder = run_dir(experiment)
    torch_device, world = device_and_world(device, tf32)
    model, (_, height, width) = load_model(folder, experiment, device=torch_device)
    seeds = list(range(seed, seed + num_samples))
    images = generate_images(
        model,
        seeds=seeds,
        height=height,
        width=width,
        temperature=temperature,
        batch_size=batch_size,
        device=torch_device,
        console=console,
        world=world,
    )
    if world.is_main:
        stem = out or folder / "samples" / f"T{temperature}"
        save_samples(images, seeds=seeds, stem=stem)
        console.print(f"[green]wrote[/green] {stem}.npz and {stem}.png ({len(images)} images)")


@evaluate.command()
@click.argument("experiment_id", metavar="EXPERIMENT")
@click.option(
    "--temperature",
    "temperatures",
    type=TEMPERATURE,
    multiple=True,
    help="Temperature T (repeatable; default: every temperature of params.yaml's fid section).",
)
@click.option("--num", "num_samples", type=click.IntRange(2), default=None, help="Samples.")
@PARAMS
@PROFILE
@DEVICE
@TF32
@user_errors
def fid(
    experiment_id: str,
    temperatures: tuple[float, ...],
    num_samples: int | None,
    params_path: Path,
    profile: str | None,
    device: str,
    tf32: bool,
) -> None:
    """FID and KID of EXPERIMENT's samples against its training split, per temperature.

    \b
    Examples:
      repro eval fid cifar10-3res-small --temperature 0.7
      repro eval fid cifar10-3res-small --profile paper      # all six temperatures, 50k samples
    """
    from repro.fid_eval import evaluate_fid
    from repro.stages import run_dir

    experiment = experiment_for(params_path, experiment_id, profile)
    torch_device, world = device_and_world(device, tf32)
    table = Table(title=f"{experiment.id} ({experiment.profile})")
    for column in ("T", "FID", "KID", "samples"):
        table.add_column(column, justify="right")
    for temperature in temperatures or experiment.fid.temperatures:
        result = evaluate_fid(
            experiment,
            run_dir=run_dir(experiment),
            temperature=temperature,
            device=torch_device,
            num_samples=num_samples,
            console=console,
            world=world,
        )
        if result is None:
            continue
        table.add_row(
            f"{temperature:.2f}",
            f"{result['fid']:.2f}",
            f"{result['kid_mean']:.4f} ± {result['kid_std']:.4f}",
            str(result["num_samples"]),
        )
    if world.is_main:
        Console().print(table)


@click.command(name="bench")
@click.argument("experiment_id", metavar="EXPERIMENT", default="cifar10-2res-small")
@click.option(
    "--variant",
    "variants",
    multiple=True,
    help="A variant of repro.bench.VARIANTS to compare with the authors' formulation "
    "(repeatable; default: every variant the device runs).",
)
@click.option("--batch-size", type=click.IntRange(1), default=None, help="Default: pinned.")
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
    iterations: int,
    project: bool,
    out: Path | None,
    params_path: Path,
    profile: str | None,
    device: str,
) -> None:
    """Time training, evaluation and sampling of EXPERIMENT, variant against variant.

    Ratios are to the authors' formulation (adjoint, eager, float32) on the same inputs.

    \b
    Examples:
      repro bench cifar10-2res-small --profile paper --device cuda
      repro bench imagenet64-2res-small --profile paper --device cuda --project
      repro bench --profile smoke --device cpu --variant direct
    """
    from repro.bench import VARIANTS, bench, projected_hours
    from repro.config import load_params
    from repro.files import write_json
    from repro.paths import runs_root
    from repro.runtime import hardware
    from repro.stages import time_budget_hours

    params = load_params(params_path)
    experiment = params.experiment(experiment_id, profile=profile)
    torch_device = device_for(device, False)
    chosen = list(variants) or [
        name for name, v in VARIANTS.items() if torch_device.type == "cuda" or not v.tf32
    ]
    result = bench(
        experiment,
        device=torch_device,
        variants=chosen,
        batch_size=batch_size,
        iterations=iterations,
    )
    result["hardware"] = hardware(torch_device)
    table = Table(
        title=f"{experiment.id}, batch {result['batch_size']}, {result['hardware']['device']}"
    )
    columns = {
        "speedup_vs_authors": ("× authors", "{:.2f}"),
        "seconds_per_iteration": ("s/iter", "{:.3f}"),
        "ms_per_evaluation_forward": ("ms/eval fwd", "{:.2f}"),
        "ms_per_evaluation_backward": ("ms/eval bwd", "{:.2f}"),
        "nfe_forward": ("NFE fwd", "{:.0f}"),
        "nfe_backward": ("NFE bwd", "{:.0f}"),
        "eval_images_per_second": ("eval img/s", "{:.1f}"),
        "sample_images_per_second": ("sample img/s", "{:.1f}"),
        "peak_memory_mb": ("peak MiB", "{:.0f}"),
        "forward_tflops": ("fwd TFLOP/s", "{:.3f}"),
        "share_of_peak": ("of peak", "{:.1%}"),
    }
    # Metrics as rows, variants as columns: narrow enough for any terminal.
    table.add_column("metric")
    for name in result["variants"]:
        table.add_column(name, justify="right")
    for key, (header, fmt) in columns.items():
        values = [row[key] for row in result["variants"].values()]
        table.add_row(header, *(fmt.format(v) if v is not None else "n/a" for v in values))
    Console().print(table)

    if project:
        projection = Table(title="Projected GPU hours of the pinned schedules (default path)")
        for column in ("experiment", "s/iter", "projected h", "published h"):
            projection.add_column(column, justify="right")
        result["projection"] = {}
        for other_id in params.raw["experiments"]:
            other = params.experiment(other_id, profile=profile)
            if "table5" not in other.paper:
                continue
            timing = bench(other, device=torch_device, variants=["direct"], iterations=1)
            seconds = timing["variants"]["direct"]["seconds_per_iteration"]
            hours = projected_hours(other, seconds_per_iteration=seconds)
            published = time_budget_hours(params.experiment(other_id, profile="paper"))
            result["projection"][other_id] = {
                "seconds_per_iteration": seconds,
                "hours": hours,
                "published_hours": published,
            }
            projection.add_row(
                other_id, f"{seconds:.3f}", f"{hours:.1f}", f"{published}" if published else "-"
            )
        Console().print(projection)
    path = out or runs_root() / "bench" / f"{experiment.id}.json"
    write_json(path, result)
    console.print(f"[green]wrote[/green] {path}")
