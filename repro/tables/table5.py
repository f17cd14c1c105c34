"""Table 5: bits per dimension, parameters and training hours per dataset, in the paper's layout."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

from repro.tables.compare import (
    METRICS,
    check_tolerances,
    experiment_size,
    experiments_for,
    finish_table,
    make_cell,
)
from repro.tables.model import Cell, Column, Row, Table
from repro.tables.published_types import (
    CELL_METRICS,
    IMAGENET128,
    Published,
    PublishedCell,
    Table5Row,
)
from repro.tables.results import Measurement, Results

DATASET_NAMES = {
    "cifar10": "CIFAR10",
    "imagenet32": "ImageNet32",
    "imagenet64": "ImageNet64",
    IMAGENET128: "ImageNet128",
}
_IMAGENET128_GROUP = "ImageNet 128×128 (printed as a separate table beside Table 1)"
_BLANK = PublishedCell()


class _Section(NamedTuple):
    """A group of rows and the datasets experiments may fill in it."""

    name: str
    rows: tuple[Table5Row, ...]
    datasets: tuple[str, ...]


# Which results file yields each metric of an experiment's cell.
_MEASURES: dict[str, Callable[[Results, Mapping[str, Any], str], Measurement | None]] = {
    "bpd": lambda results, experiments, experiment: results.bpd(experiment),
    "params": lambda results, experiments, experiment: results.param_count(
        **experiment_size(experiments, experiment)
    ),
    "hours": lambda results, experiments, experiment: results.train_hours(experiment),
}

_HOURS_NOTE = (
    "Published hours are GPU hours on one GPU as printed (the paper names an NVIDIA V100 16GB "
    "and an RTX 2080 Ti 11GB); reproduced hours are measured training time"
)
_PARAMS_NOTE = (
    "Reproduced params: the exact count of the constructed model, rounded to millions at the "
    "printed precision before comparing."
)


def _notes(sections: list[_Section], rows: list[Row]) -> list[str]:
    """Footnotes drawn from the data: row notes, where hours were measured, time-budget stops."""
    notes = [f"{r.model}: {r.note}." for section in sections for r in section.rows if r.note]
    hours = [c for row in rows for c in row.cells if c.metric == "hours" and c.provenance]
    devices = ", ".join(sorted({cell.provenance.device for cell in hours}))
    notes.append(f"{_HOURS_NOTE}{f' on {devices}' if devices else ''}.")
    budget_cut = sorted({c.producer for c in hours if c.extras.get("stopped_by") == "time_budget"})
    if budget_cut:
        notes.append(
            "Stopped by the time budget, which equals the published hours (METHOD §4), so their "
            f"hours agree by construction: {', '.join(budget_cut)}."
        )
    return notes


def _row_cells(
    row: Table5Row,
    section: _Section,
    *,
    datasets: tuple[str, ...],
    assigned: Mapping[Any, str],
    measure: Callable[[str, str], Measurement | None],
    make: Callable[..., Cell],
) -> tuple[Cell, ...]:
    cells = []
    for dataset in datasets:
        printed = row.cells.get(dataset, _BLANK)
        # Model names repeat across sections (SPN is in both), so the section decides.
        experiment = assigned.get((row.model, dataset)) if dataset in section.datasets else None
        for metric in CELL_METRICS:
            cells.append(
                make(
                    metric=metric,
                    published=printed.get(metric),
                    # The paper prints a cell's mark once, beside its first number.
                    mark=printed.mark if metric == CELL_METRICS[0] else None,
                    producer=experiment,
                    measurement=None if experiment is None else measure(metric, experiment),
                )
            )
    return tuple(cells)


def build_table5(
    *,
    published: Published,
    results_dir: Path,
    experiments: Mapping[str, Mapping[str, Any]],
    tolerances: Mapping[str, float],
    profile: str,
    comparable: bool,
) -> Table:
    """Build Table 5: every published row, with our rows' numbers beside the printed ones.

    Experiments feed it through their ``table5: {model, dataset}`` entry; ImageNet128 cells come
    from the separate small table the paper prints beside Table 1.

    Args:
        published: the published numbers.
        results_dir: ``runs/<profile>/``.
        experiments: experiment id -> its params.yaml entry.
        tolerances: params.yaml's tolerances (``bpd``, ``fid_relative``, ``hours_relative``).
        profile: the results' profile.
        comparable: whether its numbers are compared with the paper's (params.yaml).

    Returns:
        The table, its rows in the paper's groups.

    Raises:
        TableConfigError: the experiments or tolerances do not fit the published table.
        ResultsError: a results file is malformed.
    """
    check_tolerances(tolerances)
    table5 = published.table5
    datasets = (*table5.datasets, IMAGENET128)
    sections = [_Section(group.name, group.rows, table5.datasets) for group in table5.groups]
    sections.append(_Section(_IMAGENET128_GROUP, table5.imagenet128, (IMAGENET128,)))
    cells = {(r.model, d) for section in sections for r in section.rows for d in section.datasets}
    assigned = experiments_for(
        experiments,
        "table5",
        cell_key=lambda entry: (entry["model"], entry["dataset"]),
        valid=cells.__contains__,
    )
    results = Results(results_dir, profile=profile)

    def measure(metric: str, experiment: str) -> Measurement | None:
        return _MEASURES[metric](results, experiments, experiment)

    make = partial(make_cell, tolerances=tolerances, comparable=comparable)
    cells_of = partial(_row_cells, datasets=datasets, assigned=assigned, measure=measure, make=make)
    rows = [
        Row(labels=(row.model,), cells=cells_of(row, section), group=section.name)
        for section in sections
        for row in section.rows
    ]
    marks = [f"{mark} {meaning}." for mark, meaning in table5.marks.items()]
    return finish_table(
        number=5,
        title=table5.title,
        profile=profile,
        comparable=comparable,
        tolerances=tolerances,
        key_headers=("Model",),
        columns=tuple(
            Column(f"{d}.{m}", f"{DATASET_NAMES.get(d, d)} {METRICS[m].header}")
            for d in datasets
            for m in CELL_METRICS
        ),
        rows=rows,
        footnotes=[*marks, *_notes(sections, rows), _PARAMS_NOTE],
    )
