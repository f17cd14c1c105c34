"""Histograms of one model's scores: its test images against each out-of-distribution set, by
bpd (top row) and by S = bpd − L(x) (bottom row)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display is needed or wanted
import numpy as np
from matplotlib import pyplot as plt
from matplotlib.axes import Axes

from repro.files import atomic_destination
from repro.ood.scores import IN_DISTRIBUTION, ScoredImages
from repro.results import OodResult

_BINS = 40


def plot_ood_histograms(
    scored: Mapping[str, ScoredImages], result: OodResult, *, out: Path
) -> Path:
    """Draw, per out-of-distribution set, the histograms of the in- and out-of-distribution
    images' bpd and S on shared bins, and write the PNG ``out`` atomically.

    Args:
        scored: Every set's per-image scores, the in-distribution images under
            ``"in_distribution"``.
        result: The result they gave (the sets, their auROCs, the experiment and profile).
        out: The figure's destination (checked writable by the caller before computing).

    Returns:
        ``out``.

    Raises:
        WriteError: The figure cannot be written (any previous file is unchanged).
    """
    inside = scored[IN_DISTRIBUTION]
    columns = len(result.sets)
    figure, axes = plt.subplots(2, columns, figsize=(4.2 * columns, 6.4), dpi=110, squeeze=False)
    try:
        for column, entry in enumerate(result.sets):
            outside = scored[entry.name]
            panels = (
                ("bpd", entry.auroc_bpd, inside.bpd, outside.bpd),
                ("S = bpd − L(x)", entry.auroc_S, inside.s_score, outside.s_score),
            )
            for row, (score, auroc, ins, outs) in enumerate(panels):
                axis = axes[row][column]
                _histograms(axis, ins, outs, labels=(result.dataset, entry.name))
                axis.set_title(f"{entry.name}: auROC {auroc:.3f}", fontsize=9)
                axis.set_xlabel(f"{score} (bits/dim)", fontsize=8)
        figure.suptitle(f"{result.experiment} ({result.profile}): in- vs out-of-distribution")
        figure.tight_layout()
        with atomic_destination(out) as temporary:
            # The temporary name ends in .tmp, so the format cannot come from it.
            figure.savefig(temporary, format="png")
    finally:
        plt.close(figure)
    return out


def _histograms(
    axis: Axes, inside: np.ndarray, outside: np.ndarray, *, labels: tuple[str, str]
) -> None:
    """Both sets' densities on one set of bins; a NaN score (a failed solve) is left out of the
    picture, the result and the scores file keep it."""
    inside, outside = (values[np.isfinite(values)] for values in (inside, outside))
    bins = np.histogram_bin_edges(np.concatenate([inside, outside]), _BINS)
    for values, label in zip((inside, outside), labels, strict=True):
        axis.hist(values, bins, density=True, alpha=0.55, label=label)
    axis.legend(fontsize=7)
