"""Tables 5-7 of the paper and its further analyses, rebuilt from run results beside the
published numbers.

Reads only the result JSON under ``runs/<profile>/`` and ``tables/published/`` (never torch or
the training code), so the tables can be rebuilt anywhere. Every builder of :data:`TABLES` takes
one :class:`TableInputs` and returns a plain :class:`Table` that :func:`render` turns into any
format.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from repro.results import ResultsError
from repro.tables.ablation import build_ablation
from repro.tables.calibration import build_calibration
from repro.tables.compare import METRICS, TableConfigError
from repro.tables.inputs import TableInputs
from repro.tables.model import Cell, Column, Row, Status, Table
from repro.tables.ood import build_ood
from repro.tables.output import table_paths, write_tables
from repro.tables.plausibility import Problem, result_problems, unverified_weights
from repro.tables.render import FORMATS, render
from repro.tables.results import Measurement, ResultFileError, Results
from repro.tables.summary import CellRef, Summary, render_summary, summarize
from repro.tables.table5 import build_table5
from repro.tables.table6 import build_table6
from repro.tables.table7 import build_table7

TableBuilder = Callable[[TableInputs], Table]
# One builder per id of repro.layout.TABLE_IDS (a test keeps the two equal).
TABLES: dict[str, TableBuilder] = {
    "5": build_table5,
    "6": build_table6,
    "7": build_table7,
    "ablation": build_ablation,
    "calibration": build_calibration,
    "ood": build_ood,
}


def build_tables(inputs: TableInputs, *, ids: Iterable[str] = tuple(TABLES)) -> list[Table]:
    """Build the tables ``ids`` (default: all of :data:`TABLES`), in that order.

    Raises:
        ValueError: An id is not in :data:`TABLES` (a caller's bug: the CLI offers only those).
        TableConfigError: params.yaml's experiments do not fit the published tables.
        ResultsError: A results file is malformed or belongs elsewhere.
    """
    ids = list(ids)
    unknown = [table_id for table_id in ids if table_id not in TABLES]
    if unknown:
        raise ValueError(f"no table {unknown[0]!r}; tables: {', '.join(TABLES)}")
    return [TABLES[table_id](inputs) for table_id in ids]


def compare_all(inputs: TableInputs) -> Summary:
    """Build every table and summarise how the reproduction compares (for ``repro compare``).

    Raises:
        TableConfigError: params.yaml's experiments do not fit the published tables.
        ResultsError: A results file is malformed or belongs elsewhere.
    """
    return summarize(build_tables(inputs), profile=inputs.profile, comparable=inputs.comparable)


__all__ = [
    "FORMATS",
    "METRICS",
    "TABLES",
    "Cell",
    "CellRef",
    "Column",
    "Measurement",
    "Problem",
    "ResultFileError",
    "Results",
    "ResultsError",
    "Row",
    "Status",
    "Summary",
    "Table",
    "TableBuilder",
    "TableConfigError",
    "TableInputs",
    "build_ablation",
    "build_calibration",
    "build_ood",
    "build_table5",
    "build_table6",
    "build_table7",
    "build_tables",
    "compare_all",
    "render",
    "render_summary",
    "result_problems",
    "summarize",
    "table_paths",
    "unverified_weights",
    "write_tables",
]
