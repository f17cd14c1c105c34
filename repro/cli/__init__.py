"""The ``repro`` command line: one command per action, each a thin call into its module."""

from __future__ import annotations

import click

from repro.cli.bench import bench_command
from repro.cli.report import assets, compare, list_experiments, parameter_counts, plot, table
from repro.cli.run import evaluate, sample, train


@click.group(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
def main() -> None:
    """Reproduce and evaluate Multi-Resolution Continuous Normalizing Flows (MRCNF)."""


for command in (
    train,
    evaluate,
    sample,
    parameter_counts,
    list_experiments,
    table,
    compare,
    plot,
    assets,
    bench_command,
):
    main.add_command(command)

__all__ = ["main"]
