"""The FID-against-temperature figure: published curves beside reproduced ones (Table 7)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display is needed or wanted
from matplotlib import pyplot as plt

from repro.published import Published
from repro.tables import Results


def plot_fid_vs_temperature(
    *,
    published: Published,
    results_dir: Path,
    table7: Mapping[str, str],
    profile: str,
    comparable: bool,
    out: Path,
) -> Path:
    """Draw FID against sampling temperature for every Table 7 model and write a PNG.

    Args:
        published: The published numbers.
        results_dir: ``runs/<profile>``.
        table7: Experiment id -> the Table 7 model it reproduces.
        profile: The results' profile.
        comparable: Whether its numbers are comparable with the paper's (labelled if not).
        out: The PNG to write.

    Returns:
        ``out``.
    """
    results = Results(results_dir, profile=profile)
    temperatures = published.table7.temperatures
    published_rows = {row.model: row for row in published.table7.rows}
    figure, axes = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for index, (experiment, model) in enumerate(table7.items()):
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
    caption = "" if comparable else f" — {profile} profile, not comparable"
    axes.set_title(f"FID vs temperature, CIFAR10 models{caption}")
    axes.invert_xaxis()
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out)
    plt.close(figure)
    return out
