"""Table 7: FID against sampling temperature for three CIFAR10 models."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

from repro.tables.compare import (
    check_tolerances,
    experiment_size,
    experiments_for,
    finish_table,
    make_cell,
)
from repro.tables.model import Column, Row, Table
from repro.tables.published_types import Published
from repro.tables.results import Results

_PROTOCOL_NOTE = (
    "FID protocol (not stated in the paper; our decision, METHOD.md §6): 50,000 samples per "
    "temperature against the CIFAR10 training set, torch-fidelity with the TF-Inception feature "
    "extractor, KID computed alongside (in the JSON and CSV outputs)."
)


def _sizes_note(experiments: Mapping[str, Mapping[str, Any]], assigned: Mapping[Any, str]) -> str:
    """Name the model size behind each row: the paper does not state them, so they are ours."""
    sizes = []
    for model, experiment in assigned.items():
        size = experiment_size(experiments, experiment)
        sizes.append(
            f"{model} = {experiment} ({size['resolutions']} res × {size['blocks']} blocks, "
            f"width {size['width']})"
        )
    return "Model sizes are our decision (METHOD.md §6): " + "; ".join(sizes) + "."


def _samples_note(rows: list[Row]) -> str | None:
    counts = sorted(
        {cell.extras["num_samples"] for row in rows for cell in row.cells if cell.extras}
    )
    if not counts:
        return None
    return "Reproduced FIDs used " + " / ".join(f"{n:,}" for n in counts) + " samples."


def build_table7(
    *,
    published: Published,
    results_dir: Path,
    experiments: Mapping[str, Mapping[str, Any]],
    tolerances: Mapping[str, float],
    profile: str,
    comparable: bool,
) -> Table:
    """Build Table 7: the three models' FID at each temperature, ours beside the paper's.

    Experiments feed it through their ``table7: {model}`` entry, which names a published row.

    Args:
        published: the published numbers.
        results_dir: ``runs/<profile>/``.
        experiments: experiment id -> its params.yaml entry.
        tolerances: params.yaml's tolerances (``fid_relative`` applies here).
        profile: the results' profile.
        comparable: whether its numbers are compared with the paper's (params.yaml).

    Returns:
        The table: one row per model, one column per temperature.

    Raises:
        TableConfigError: the experiments or tolerances do not fit the published table.
        ResultsError: a results file is malformed.
    """
    check_tolerances(tolerances)
    table7 = published.table7
    models = {row.model for row in table7.rows}
    assigned = experiments_for(
        experiments, "table7", cell_key=lambda entry: entry["model"], valid=models.__contains__
    )
    results = Results(results_dir, profile=profile)
    make = partial(make_cell, tolerances=tolerances, comparable=comparable)
    rows = []
    for row in table7.rows:
        experiment = assigned.get(row.model)
        cells = tuple(
            make(
                metric="fid",
                published=fid,
                producer=experiment,
                measurement=None if experiment is None else results.fid(experiment, temperature),
            )
            for temperature, fid in zip(table7.temperatures, row.fid, strict=True)
        )
        rows.append(Row(labels=(row.model,), cells=cells))
    notes = [table7.note, _PROTOCOL_NOTE, _samples_note(rows)]
    if assigned:
        notes.insert(1, _sizes_note(experiments, assigned))
    return finish_table(
        number=7,
        title=table7.title,
        profile=profile,
        comparable=comparable,
        tolerances=tolerances,
        key_headers=("Model",),
        columns=tuple(Column(f"T{t:.2f}", f"FID T={t:g}") for t in table7.temperatures),
        rows=rows,
        footnotes=[note for note in notes if note],
    )
