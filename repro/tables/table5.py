"""Table 5: bits per dimension, parameters and training hours per dataset, in the paper's layout."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from functools import partial
from typing import Any, NamedTuple

from repro.datasets.registry import DATASETS
from repro.published import CELL_METRICS, IMAGENET128, PublishedCell, Table5Row
from repro.tables.compare import METRICS, assign_cells, finish_table, make_cell
from repro.tables.inputs import TableInputs
from repro.tables.model import Cell, Column, Row, Table
from repro.tables.results import Measurement
from repro.tables.runs import RUN_METRICS, run_note, train_hours

_IMAGENET128_GROUP = "ImageNet 128×128 (printed as a separate table beside Table 1)"
_BLANK = PublishedCell()


class Section(NamedTuple):
    """A group of rows laid out as Table 5's and the datasets experiments may fill in it."""

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
    "hours": train_hours,
}

_HOURS_NOTE = (
    "Published hours are GPU hours on one GPU as printed (the paper names an NVIDIA V100 16GB "
    "and an RTX 2080 Ti 11GB); reproduced hours are measured training time"
)
_FASTER_GPU_NOTE = (
    "The same hours buy more iterations on a faster GPU than the paper's: each run's marked "
    "footnote gives its iterations, epochs, GPU and what stopped it."
)
_BPD_NOTE = (
    "bpd: our uniform-dequantisation bpd (the usual convention) is compared with the paper's; "
    "the bin-centre bpd beside it is the one the authors' code logged and chose checkpoints by. "
    "Which of the two the paper prints is not stated."
)
PARAMS_NOTE = (
    "Reproduced params: the exact count of the constructed model, rounded to millions at the "
    "printed precision before comparing."
)


def _spent_budget(cell: Cell) -> bool:
    """Whether the cell's run, and a progressive run's parent, were stopped by time budgets."""
    stops = [v for k, v in cell.extras.items() if k in ("stopped_by", "parent_stopped_by")]
    return bool(stops) and all(stop == "time_budget" for stop in stops)


def run_footnotes(sections: list[Section], rows: list[Row]) -> list[str]:
    """Footnotes drawn from the data: row notes, where hours were measured, time-budget stops,
    and what the bin-centre bpd beside ours is (where it is shown)."""
    notes = [f"{r.model}: {r.note}." for section in sections for r in section.rows if r.note]
    hours = [c for row in rows for c in row.cells if c.metric == "hours" and c.provenance]
    devices = ", ".join(sorted({cell.provenance.hardware.device for cell in hours}))
    notes.append(f"{_HOURS_NOTE}{f' on {devices}' if devices else ''}. {_FASTER_GPU_NOTE}")
    budget_cut = sorted({str(c.producer) for c in hours if _spent_budget(c)})
    if budget_cut:
        notes.append(
            "Stopped by the time budget, set to the published hours (docs/method.md §4; for a "
            "progressive run, those less its parent's, whose measured hours are added to its "
            f"own), so their hours agree by construction: {', '.join(budget_cut)}."
        )
    if any("bpd_bin_centre" in c.extras for row in rows for c in row.cells if c.metric == "bpd"):
        notes.append(_BPD_NOTE)
    return notes


def _progressive(inputs: TableInputs, producer: str | None) -> bool:
    return producer is not None and inputs.experiments[producer].training.init_from is not None


def _with_run_notes(inputs: TableInputs, rows: list[Row]) -> tuple[list[Row], dict[str, str]]:
    """Mark each experiment's bpd and hours cells with the footnote on what they rest on.

    Returns:
        The rows with :attr:`Cell.note` set, and mark -> footnote in order of first appearance.
    """
    producers = dict.fromkeys(c.producer for row in rows for c in row.cells if c.producer)
    found = {e: note for e in producers if (note := run_note(inputs, str(e)))}
    marks = {experiment: f"[{number}]" for number, experiment in enumerate(found, start=1)}

    def marked(cell: Cell) -> Cell:
        # A cell not run is marked only where the note says why: a progressive run's hours that
        # wait for its parent's.
        explained = cell.metric == "hours" and _progressive(inputs, cell.producer)
        if cell.metric not in RUN_METRICS or (cell.reproduced is None and not explained):
            return cell
        return replace(cell, note=marks.get(str(cell.producer)))

    marked_rows = [replace(row, cells=tuple(map(marked, row.cells))) for row in rows]
    return marked_rows, {marks[experiment]: note for experiment, note in found.items()}


def _row_cells(
    row: Table5Row,
    section: Section,
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


def _assigned(
    inputs: TableInputs, sections: list[Section], *, paper_cell: str, table: str
) -> dict[Any, str]:
    """(model, dataset) -> the experiment whose ``paper.<paper_cell>`` names that published cell."""
    published = {(r.model, d) for s in sections for r in s.rows for d in s.datasets}
    claims = [
        (f"experiments.{experiment}.paper.{paper_cell}", experiment, (cell.model, cell.dataset))
        for experiment, spec in inputs.experiments.items()
        if (cell := getattr(spec.paper, paper_cell)) is not None
    ]
    return assign_cells(claims, table=table, published=published)


def cell_rows(
    inputs: TableInputs,
    sections: list[Section],
    *,
    datasets: tuple[str, ...],
    paper_cell: str,
    table: str,
) -> tuple[list[Row], dict[str, str]]:
    """Rows of bpd, params and hours cells per dataset, ours beside the printed ones, each
    experiment's cells marked with the footnote on what they rest on.

    Args:
        inputs: What the table is built from.
        sections: The published rows, grouped.
        datasets: The datasets whose cells each row has, in order.
        paper_cell: The field of an experiment's ``paper`` settings naming its cell
            (``table5``, ``ablation``).
        table: The table's name, for messages.

    Returns:
        The rows, and mark -> footnote.

    Raises:
        TableConfigError: An experiment names no published cell, or two name the same one.
        ResultsError: A results file is malformed or belongs elsewhere.
    """
    assigned = _assigned(inputs, sections, paper_cell=paper_cell, table=table)

    def measure(metric: str, experiment: str) -> Measurement | None:
        return _MEASURES[metric](inputs, experiment)

    make = partial(make_cell, inputs)
    cells_of = partial(_row_cells, datasets=datasets, assigned=assigned, measure=measure, make=make)
    rows = [
        Row(labels=(row.model,), cells=cells_of(row, section), group=section.name)
        for section in sections
        for row in section.rows
    ]
    return _with_run_notes(inputs, rows)


def cell_columns(datasets: tuple[str, ...]) -> tuple[Column, ...]:
    """bpd, params and hours columns of each dataset."""
    return tuple(
        Column(f"{d}.{m}", f"{DATASETS[d].display_name} {METRICS[m].header}")
        for d in datasets
        for m in CELL_METRICS
    )


def build_table5(inputs: TableInputs) -> Table:
    """Table 5: every published row, with our rows' numbers beside the printed ones.

    ImageNet128 cells come from the separate small table the paper prints beside Table 1.

    Raises:
        TableConfigError: An experiment names no published cell, or two name the same one.
        ResultsError: A results file is malformed or belongs elsewhere.
    """
    table5 = inputs.published.table5
    datasets = (*table5.datasets, IMAGENET128)
    sections = [Section(group.name, group.rows, table5.datasets) for group in table5.groups]
    sections.append(Section(_IMAGENET128_GROUP, table5.imagenet128, (IMAGENET128,)))
    rows, cell_notes = cell_rows(
        inputs, sections, datasets=datasets, paper_cell="table5", table="Table 5"
    )
    marks = [f"{mark} {meaning}." for mark, meaning in table5.marks.items()]
    return finish_table(
        inputs,
        table_id="5",
        title=table5.title,
        key_headers=("Model",),
        columns=cell_columns(datasets),
        rows=rows,
        footnotes=[*marks, *run_footnotes(sections, rows), PARAMS_NOTE],
        cell_notes=cell_notes,
    )
