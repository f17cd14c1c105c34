"""The FID-against-temperature figure: published curves beside reproduced ones (Table 7)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display is needed or wanted
from matplotlib import pyplot as plt
from matplotlib.axes import Axes
from matplotlib.backend_bases import FigureCanvasBase

from repro.files import atomic_destination
from repro.outputs import OutputError, check_writable
from repro.tables import TableInputs
from repro.tables.results import Measurement
from repro.tables.table7 import table7_experiments


def figure_format(out: Path) -> str:
    """The image format matplotlib writes ``out`` in, from its suffix (PNG without one).

    Args:
        out: The figure's destination.

    Returns:
        A format name matplotlib knows, e.g. ``"png"``.

    Raises:
        OutputError: matplotlib cannot write files with ``out``'s suffix.
    """
    suffix = out.suffix.lower().removeprefix(".") or "png"
    supported = FigureCanvasBase.get_supported_filetypes()
    if suffix not in supported:
        raise OutputError(
            f"{out}: matplotlib cannot write .{suffix} files; name a file ending in "
            f"{', '.join(f'.{name}' for name in sorted(supported))}"
        )
    return suffix


def plot_fid_vs_temperature(inputs: TableInputs, *, out: Path) -> Path:
    """Draw FID against sampling temperature for every Table 7 model and write the figure ``out``.

    The destination is checked before any result is read, and replaced atomically. The figure is
    labelled when the profile's numbers are not comparable with the paper's. FIDs whose files
    hold impossible values are left out (the legend counts them); FIDs computed with unverified
    weights are drawn hollow and labelled so.

    Args:
        inputs: What the tables are built from.
        out: The figure to write; its suffix picks the format (PNG without one).

    Returns:
        ``out``.

    Raises:
        OutputError: ``out`` cannot be written (checked first) or its format is unknown.
        TableConfigError: params.yaml's ``table7`` names a model the paper does not print.
        ResultsError: An FID file is unreadable, malformed or belongs elsewhere.
    """
    fmt = figure_format(out)
    check_writable(out)
    published, results, profile = inputs.published, inputs.results, inputs.profile
    temperatures = published.table7.temperatures
    published_rows = {row.model: row for row in published.table7.rows}
    figure, axes = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    try:
        for index, (model, experiment) in enumerate(table7_experiments(inputs).items()):
            colour = f"C{index}"
            printed = published_rows[model].fid
            axes.plot(
                temperatures,
                [v.value for v in printed],
                "--o",
                color=colour,
                alpha=0.6,
                label=f"{model} (published)",
            )
            ours = [(t, results.fid(experiment, t)) for t in temperatures]
            _plot_ours(axes, model, colour, [(t, m) for t, m in ours if m is not None])
        axes.set_xlabel("sampling temperature T")
        axes.set_ylabel("FID (lower is better)")
        caption = "" if inputs.comparable else f" — {profile} profile, not comparable"
        axes.set_title(f"FID vs temperature, CIFAR10 models{caption}")
        axes.invert_xaxis()
        axes.grid(alpha=0.3)
        axes.legend(fontsize=7)
        figure.tight_layout()
        with atomic_destination(out) as temporary:
            # The temporary name ends in .tmp, so the format cannot come from it.
            figure.savefig(temporary, format=fmt)
    finally:
        plt.close(figure)
    return out


def _plot_ours(
    axes: Axes, model: str, colour: str, measured: Sequence[tuple[float, Measurement]]
) -> None:
    """Draw one model's reproduced FIDs: a line through the plausible ones, the unverified
    hollow; those with impossible values are only counted in the legend."""
    shown = [(t, m) for t, m in measured if not m.problems]
    left_out = len(measured) - len(shown)
    label = f"{model} (ours{f'; {left_out} invalid, not shown' if left_out else ''})"
    if shown:
        axes.plot(*zip(*((t, m.value) for t, m in shown), strict=True), "-", color=colour)
    verified = [(t, m.value) for t, m in shown if m.unverified is None]
    unverified = [(t, m.value) for t, m in shown if m.unverified is not None]
    if verified or left_out:
        points = list(zip(*verified, strict=True)) or [[], []]
        axes.plot(*points, "s", color=colour, label=label)
    if unverified:
        axes.plot(
            *zip(*unverified, strict=True),
            "s",
            color=colour,
            markerfacecolor="none",
            label=f"{model} (ours, unverified Inception weights)",
        )
