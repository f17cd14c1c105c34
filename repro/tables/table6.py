"""Table 6: parameter counts of nine MRCNF configurations, exact counts beside printed ones."""

from __future__ import annotations

from repro.tables.compare import METRICS, finish_table, make_cell
from repro.tables.inputs import TableInputs
from repro.tables.model import Column, Row, Table

_MISROUNDED_NOTE = (
    "Two printed values sit 0.01M below the exact counts: 1 res × 14 bl = 1,107,876 (printed "
    "1.10) and 2 res × 8 bl = 1,335,744 (printed 1.33). No single per-block count fits all nine "
    "printed values, so the paper truncated or mis-rounded those two (docs/method.md §1); they are "
    "shown as 'differs', not hidden."
)


def build_table6(inputs: TableInputs) -> Table:
    """Table 6 from the profile's parameter counts: one row per configuration the paper prints.

    Table 6 lists configurations, not experiments, so ``inputs.experiments`` is not read.

    Raises:
        ResultsError: The parameter counts are malformed or belong elsewhere.
    """
    table6 = inputs.published.table6
    counts = inputs.layout.param_counts
    rows = [
        Row(
            labels=(str(row.resolutions), str(row.channels), str(row.blocks)),
            cells=(
                make_cell(
                    inputs,
                    metric="params",
                    published=row.params,
                    producer=counts.name,
                    measurement=inputs.results.param_count(
                        resolutions=row.resolutions, blocks=row.blocks, width=row.channels
                    ),
                ),
            ),
        )
        for row in table6.rows
    ]
    return finish_table(
        inputs,
        table_id="6",
        title=table6.title,
        key_headers=("res", "ch", "bl"),
        columns=(Column("params", METRICS["params"].header),),
        rows=rows,
        footnotes=[note for note in (table6.note, _MISROUNDED_NOTE) if note],
    )
