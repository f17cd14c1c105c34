"""Tables 5-7 of the paper, rebuilt from run results beside the published numbers.

Reads only the metrics JSON under ``runs/<profile>/`` and ``tables/published/`` (never torch or
the training code), so the tables can be rebuilt anywhere. Builders are registered in
:data:`TABLES`; each returns a plain :class:`Table` that :func:`render` turns into any format.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

from repro.tables.compare import METRICS, TableConfigError
from repro.tables.model import Cell, Column, Row, Status, Table
from repro.tables.published_types import Published
from repro.tables.render import FORMATS, render, write_tables
from repro.tables.results import Measurement, Provenance, Results, ResultsError
from repro.tables.summary import CellRef, Summary, render_summary, summarize
from repro.tables.table5 import build_table5
from repro.tables.table6 import build_table6
from repro.tables.table7 import build_table7


class TableBuilder(Protocol):
    """The signature every entry of :data:`TABLES` shares."""

    def __call__(
        self,
        *,
        published: Published,
        results_dir: Path,
        experiments: Mapping[str, Mapping[str, Any]],
        tolerances: Mapping[str, float],
        profile: str,
        comparable: bool,
    ) -> Table: ...


TABLES: dict[int, TableBuilder] = {5: build_table5, 6: build_table6, 7: build_table7}


def build_tables(
    *,
    published: Published,
    results_dir: Path,
    experiments: Mapping[str, Mapping[str, Any]],
    tolerances: Mapping[str, float],
    profile: str,
    comparable: bool,
    numbers: Iterable[int] = tuple(TABLES),
) -> list[Table]:
    """Build several tables from one profile's results.

    Args:
        published: from :func:`repro.published.load_published`.
        results_dir: ``runs/<profile>/``.
        experiments: params.yaml's experiments (id -> entry with ``table5``/``table7`` keys).
        tolerances: params.yaml's tolerances.
        profile: the results' profile.
        comparable: whether its numbers are compared with the paper's (params.yaml).
        numbers: which tables, by number (default: all of :data:`TABLES`).

    Returns:
        The tables, in the order asked.

    Raises:
        ValueError: a number is not in :data:`TABLES`.
        TableConfigError: the experiments or tolerances do not fit the published tables.
        ResultsError: a results file is malformed.
    """
    numbers = list(numbers)
    unknown = [number for number in numbers if number not in TABLES]
    if unknown:
        raise ValueError(f"no table {unknown[0]}; tables: {', '.join(map(str, TABLES))}")
    options = {
        "published": published,
        "results_dir": results_dir,
        "experiments": experiments,
        "tolerances": tolerances,
        "profile": profile,
        "comparable": comparable,
    }
    return [TABLES[number](**options) for number in numbers]


def compare_all(
    *,
    published: Published,
    results_dir: Path,
    experiments: Mapping[str, Mapping[str, Any]],
    tolerances: Mapping[str, float],
    profile: str,
    comparable: bool,
) -> Summary:
    """Build every table and summarise how the reproduction compares (for ``repro compare``).

    Args:
        published: from :func:`repro.published.load_published`.
        results_dir: ``runs/<profile>/``.
        experiments: params.yaml's experiments.
        tolerances: params.yaml's tolerances.
        profile: the results' profile.
        comparable: whether its numbers are compared with the paper's (params.yaml).

    Returns:
        Counts per status, differing cells worst first, cells not run.

    Raises:
        TableConfigError: the experiments or tolerances do not fit the published tables.
        ResultsError: a results file is malformed.
    """
    tables = build_tables(
        published=published,
        results_dir=results_dir,
        experiments=experiments,
        tolerances=tolerances,
        profile=profile,
        comparable=comparable,
    )
    return summarize(tables, profile=profile, comparable=comparable)


__all__ = [
    "FORMATS",
    "METRICS",
    "TABLES",
    "Cell",
    "CellRef",
    "Column",
    "Measurement",
    "Provenance",
    "Results",
    "ResultsError",
    "Row",
    "Status",
    "Summary",
    "Table",
    "TableBuilder",
    "TableConfigError",
    "build_table5",
    "build_table6",
    "build_table7",
    "build_tables",
    "compare_all",
    "render",
    "render_summary",
    "summarize",
    "write_tables",
]
