"""The ``repro`` command line: one command per action, each a thin call into its module."""

from __future__ import annotations

import sys
from typing import Any

import click

from repro.cli.bench import bench_command
from repro.cli.calibration import calibration, shuffled_bpd, shuffled_bpd_plot
from repro.cli.common import console
from repro.cli.fid import fid_images
from repro.cli.ood import ood
from repro.cli.report import (
    assets,
    compare,
    list_experiments,
    parameter_counts,
    plot,
    resolve,
    table,
)
from repro.cli.run import bpd, fid, sample, train


class _OneLineErrors(click.Group):
    """A bad option or argument is one line and exit status 1, as every anticipated failure is
    (click's own form is a usage block and status 2)."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except click.ClickException as error:
            where = f" (see '{error.ctx.command_path} --help')" if error.ctx else ""
            console.print(
                f"[red]error:[/red] {error.format_message()}{where}",
                highlight=False,
                soft_wrap=True,
            )
            sys.exit(1)
        except click.Abort:
            console.print("[red]aborted[/red]")
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


@click.group(
    cls=_OneLineErrors,
    context_settings={"help_option_names": ["-h", "--help"], "show_default": True},
)
def main() -> None:
    """Reproduce and evaluate Multi-Resolution Continuous Normalizing Flows (MRCNF)."""


@click.group(name="eval")
def evaluate() -> None:
    """Evaluate trained experiments."""


for command in (
    train,
    evaluate,
    sample,
    resolve,
    parameter_counts,
    list_experiments,
    table,
    compare,
    plot,
    shuffled_bpd_plot,
    fid_images,
    assets,
    bench_command,
):
    main.add_command(command)

for command in (bpd, fid, calibration, shuffled_bpd, ood):
    evaluate.add_command(command)

__all__ = ["main"]
