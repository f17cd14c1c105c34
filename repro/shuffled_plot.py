"""The Table 7 models' bpd of test images shuffled in k×k patches, against k (the paper's plot
beside its FID calibration, docs/method.md §8)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display is needed or wanted
from matplotlib import pyplot as plt

from repro.files import atomic_destination
from repro.outputs import check_writable
from repro.plots import figure_format
from repro.tables import TableInputs
from repro.tables.table7 import table7_experiments


def plot_shuffled_bpd(inputs: TableInputs, *, patches: Sequence[int], out: Path) -> Path:
    """Draw each Table 7 model's bpd of shuffled test images against the patch size k and write
    the figure ``out``.

    The destination is checked before any result is read, and replaced atomically. The figure is
    labelled when the profile's numbers are not comparable with the paper's. Values whose files
    hold impossible numbers are left out (the legend counts them); a model without results is
    named "not run" in the legend.

    Args:
        inputs: What the tables are built from.
        patches: The patch sizes to show (``calibration.patches``).
        out: The figure to write; its suffix picks the format (PNG without one).

    Returns:
        ``out``.

    Raises:
        OutputError: ``out`` cannot be written (checked first) or its format is unknown.
        TableConfigError: params.yaml's ``table7`` names a model the paper does not print.
        ResultsError: A result file is unreadable, malformed or belongs elsewhere.
    """
    fmt = figure_format(out)
    check_writable(out)
    figure, axes = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    try:
        for index, (model, experiment) in enumerate(table7_experiments(inputs).items()):
            measured = [(k, inputs.results.shuffled_bpd(experiment, k)) for k in patches]
            found = [(k, m) for k, m in measured if m is not None]
            shown = [(k, m.value) for k, m in found if not m.problems]
            left_out = len(found) - len(shown)
            notes = [f"{left_out} invalid, not shown"] if left_out else []
            notes += [] if found else ["not run"]
            label = f"{model} ({experiment}{''.join(f'; {n}' for n in notes)})"
            points = list(zip(*shown, strict=True)) or [[], []]
            axes.plot(*points, "-o", color=f"C{index}", label=label)
        axes.set_xscale("log", base=2)
        axes.set_xticks(list(patches), [f"{k}×{k}" for k in patches])
        axes.set_xlabel("shuffled patches k×k (the image side: unshuffled)")
        axes.set_ylabel("bpd of the shuffled test images")
        caption = "" if inputs.comparable else f" — {inputs.profile} profile, not comparable"
        axes.set_title(f"bpd of shuffled test images{caption}")
        axes.grid(alpha=0.3)
        axes.legend(fontsize=7)
        figure.tight_layout()
        with atomic_destination(out) as temporary:
            # The temporary name ends in .tmp, so the format cannot come from it.
            figure.savefig(temporary, format=fmt)
    finally:
        plt.close(figure)
    return out
