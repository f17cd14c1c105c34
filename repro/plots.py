"""The FID-against-temperature figure: published curves beside reproduced ones (Table 7)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display is needed or wanted
from matplotlib import pyplot as plt

from repro.tables import TableInputs
from repro.tables.table7 import table7_experiments


def plot_fid_vs_temperature(inputs: TableInputs, *, out: Path) -> Path:
    """Draw FID against sampling temperature for every Table 7 model and write the PNG ``out``.

    The figure is labelled when the profile's numbers are not comparable with the paper's.

    Raises:
        TableConfigError: params.yaml's ``table7`` names a model the paper does not print.
        ResultsError: An FID file is malformed or belongs elsewhere.
    """
    published, results, profile = inputs.published, inputs.results, inputs.profile
    temperatures = published.table7.temperatures
    published_rows = {row.model: row for row in published.table7.rows}
    figure, axes = plt.subplots(figsize=(6.4, 4.2), dpi=120)
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
        points = [(t, m.value) for t, m in ours if m is not None]
        if points:
            axes.plot(*zip(*points, strict=True), "-s", color=colour, label=f"{model} (ours)")
    axes.set_xlabel("sampling temperature T")
    axes.set_ylabel("FID (lower is better)")
    caption = "" if inputs.comparable else f" — {profile} profile, not comparable"
    axes.set_title(f"FID vs temperature, CIFAR10 models{caption}")
    axes.invert_xaxis()
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out)
    plt.close(figure)
    return out
