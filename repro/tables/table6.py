"""Table 6: parameter counts of nine MRCNF configurations, exact counts beside printed ones."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from repro.tables.compare import METRICS, check_tolerances, finish_table, make_cell
from repro.tables.model import Column, Row, Table
from repro.tables.published_types import Published
from repro.tables.results import PARAM_COUNTS, Results

_MISROUNDED_NOTE = (
    "Two printed values sit 0.01M below the exact counts: 1 res × 14 bl = 1,107,876 (printed "
    "1.10) and 2 res × 8 bl = 1,335,744 (printed 1.33). No single per-block count fits all nine "
    "printed values, so the paper truncated or mis-rounded those two (METHOD.md §1); they are "
    "shown as 'differs', not hidden."
)


def build_table6(
    *,
    published: Published,
    results_dir: Path,
    experiments: Mapping[str, Mapping[str, Any]],
    tolerances: Mapping[str, float],
    profile: str,
    comparable: bool,
) -> Table:
    """Build Table 6 from ``param_counts.json``: every configuration the paper prints.

    Args:
        published: the published numbers.
        results_dir: ``runs/<profile>/``.
        experiments: unused (Table 6 lists configurations, not experiments); accepted so that
            every builder of :data:`repro.tables.TABLES` is called alike.
        tolerances: params.yaml's tolerances (checked; counts compare at the printed precision).
        profile: the results' profile.
        comparable: whether its numbers are compared with the paper's (params.yaml).

    Returns:
        The table: one row per configuration.

    Raises:
        TableConfigError: the tolerances are malformed.
        ResultsError: ``param_counts.json`` is malformed.
    """
    check_tolerances(tolerances)
    table6 = published.table6
    results = Results(results_dir, profile=profile)
    rows = [
        Row(
            labels=(str(row.resolutions), str(row.channels), str(row.blocks)),
            cells=(
                make_cell(
                    metric="params",
                    published=row.params,
                    producer=PARAM_COUNTS,
                    measurement=results.param_count(
                        resolutions=row.resolutions, blocks=row.blocks, width=row.channels
                    ),
                    tolerances=tolerances,
                    comparable=comparable,
                ),
            ),
        )
        for row in table6.rows
    ]
    return finish_table(
        number=6,
        title=table6.title,
        profile=profile,
        comparable=comparable,
        tolerances=tolerances,
        key_headers=("res", "ch", "bl"),
        columns=(Column("params", METRICS["params"].header),),
        rows=rows,
        footnotes=[note for note in (table6.note, _MISROUNDED_NOTE) if note],
    )
