"""Table 5: bits per dimension, parameters and training hours per dataset, in the paper's layout."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, NamedTuple

from repro.datasets.registry import DATASETS
from repro.published import CELL_METRICS, IMAGENET128, PublishedCell, Table5Row
from repro.tables.compare import METRICS, assign_cells, finish_table, make_cell
from repro.tables.inputs import TableInputs
from repro.tables.model import Cell, Column, Row, Table
from repro.tables.results import Measurement

_IMAGENET128_GROUP = "ImageNet 128×128 (printed as a separate table beside Table 1)"
_BLANK = PublishedCell()


class _Section(NamedTuple):
    """A group of rows and the datasets experiments may fill in it."""

    name: str
    rows: tuple[Table5Row, ...]
    datasets: tuple[str, ...]


def _param_count(inputs: TableInputs, experiment: str) -> Measurement | None:
    model = inputs.experiments[experiment].model
    return inputs.results.param_count(
        resolutions=model.resolutions, blocks=model.blocks, width=model.width
    )


# Which results file yields each metric of an experiment's cell.
_MEASURES: dict[str, Callable[[TableInputs, str], Measurement | None]] = {
    "bpd": lambda inputs, experiment: inputs.results.bpd(experiment),
    "params": _param_count,
    "hours": lambda inputs, experiment: inputs.results.train_hours(experiment),
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
    devices = ", ".join(sorted({cell.provenance.hardware.device for cell in hours}))
    notes.append(f"{_HOURS_NOTE}{f' on {devices}' if devices else ''}.")
    budget_cut = sorted({c.producer for c in hours if c.extras.get("stopped_by") == "time_budget"})
    if budget_cut:
        notes.append(
            "Stopped by the time budget, which equals the published hours (docs/method.md §4), so "
            f"their hours agree by construction: {', '.join(budget_cut)}."
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


def _assigned(inputs: TableInputs, sections: list[_Section]) -> dict[Any, str]:
    """(model, dataset) -> the experiment whose ``paper.table5`` names that published cell."""
    published = {(r.model, d) for s in sections for r in s.rows for d in s.datasets}
    claims = [
        (f"experiments.{experiment}.paper.table5", experiment, (cell.model, cell.dataset))
        for experiment, spec in inputs.experiments.items()
        if (cell := spec.paper.table5) is not None
    ]
    return assign_cells(claims, table="Table 5", published=published)


def build_table5(inputs: TableInputs) -> Table:
    """Table 5: every published row, with our rows' numbers beside the printed ones.

    ImageNet128 cells come from the separate small table the paper prints beside Table 1.

    Raises:
        TableConfigError: An experiment names no published cell, or two name the same one.
        ResultsError: A results file is malformed or belongs elsewhere.
    """
    table5 = inputs.published.table5
    datasets = (*table5.datasets, IMAGENET128)
    sections = [_Section(group.name, group.rows, table5.datasets) for group in table5.groups]
    sections.append(_Section(_IMAGENET128_GROUP, table5.imagenet128, (IMAGENET128,)))
    assigned = _assigned(inputs, sections)

    def measure(metric: str, experiment: str) -> Measurement | None:
        return _MEASURES[metric](inputs, experiment)

    make = partial(make_cell, inputs)
    cells_of = partial(_row_cells, datasets=datasets, assigned=assigned, measure=measure, make=make)
    rows = [
        Row(labels=(row.model,), cells=cells_of(row, section), group=section.name)
        for section in sections
        for row in section.rows
    ]
    marks = [f"{mark} {meaning}." for mark, meaning in table5.marks.items()]
    return finish_table(
        inputs,
        number=5,
        title=table5.title,
        key_headers=("Model",),
        columns=tuple(
            Column(f"{d}.{m}", f"{DATASETS[d].display_name} {METRICS[m].header}")
            for d in datasets
            for m in CELL_METRICS
        ),
        rows=rows,
        footnotes=[*marks, *_notes(sections, rows), _PARAMS_NOTE],
    )
