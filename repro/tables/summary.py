"""Summarise built tables for ``repro compare``: counts per status, the worst differences first."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from rich.console import Group
from rich.table import Table as RichTable
from rich.text import Text

from repro.tables.compare import UNRESOLVED_MARK, UNRESOLVED_STANDARD_ERRORS
from repro.tables.model import Cell, Status, Table
from repro.tables.render import (
    STATUS_STYLES,
    companion_text,
    difference_text,
    published_text,
    status_text,
    value_text,
)


@dataclass(frozen=True)
class CellRef:
    """A cell and where it sits: table id, row name and column header; ``note`` is the text
    of the footnote its mark refers to (what the value rests on), if any."""

    table: str
    row: str
    column: str
    cell: Cell
    note: str | None = None

    @property
    def severity(self) -> float:
        """Size of the relative difference (infinite where the published value is zero)."""
        relative = self.cell.relative_difference
        return math.inf if relative is None else abs(relative)


@dataclass(frozen=True)
class Summary:
    """What ``repro compare`` reports.

    ``counts`` covers every status but :attr:`Status.REFERENCE` (cells nothing reproduces), zero
    counts included; ``differing`` is sorted worst first by relative difference. ``unresolved``
    holds the reproduced and differing cells whose verdict the uncertainty of our value cannot
    decide (:attr:`Cell.unresolved`); they are counted under their status too. ``invalid`` and
    ``unverified`` hold the cells that get no verdict because of their value itself.
    """

    profile: str
    comparable: bool
    counts: Mapping[Status, int]
    differing: tuple[CellRef, ...]
    not_run: tuple[CellRef, ...]
    unresolved: tuple[CellRef, ...] = ()
    invalid: tuple[CellRef, ...] = ()
    unverified: tuple[CellRef, ...] = ()


def summarize(tables: Iterable[Table], *, profile: str, comparable: bool) -> Summary:
    """Summarise tables built from one profile's results: counts per status, the differing
    cells (worst first), the unresolved verdicts, the invalid and unverified values and the
    cells not run yet."""
    refs = [
        CellRef(
            table.id,
            table.row_name(row),
            column.header,
            cell,
            table.cell_notes.get(cell.note) if cell.note else None,
        )
        for table in tables
        for row in table.rows
        for column, cell in zip(table.columns, row.cells, strict=True)
        if cell.status is not Status.REFERENCE
    ]
    found = Counter(ref.cell.status for ref in refs)
    counts = {status: found[status] for status in Status if status is not Status.REFERENCE}
    differing = [ref for ref in refs if ref.cell.status is Status.DIFFERS]
    return Summary(
        profile=profile,
        comparable=comparable,
        counts=counts,
        differing=tuple(sorted(differing, key=lambda ref: ref.severity, reverse=True)),
        not_run=tuple(ref for ref in refs if ref.cell.status is Status.NOT_RUN),
        unresolved=tuple(ref for ref in refs if ref.cell.unresolved),
        invalid=tuple(ref for ref in refs if ref.cell.status is Status.INVALID),
        unverified=tuple(ref for ref in refs if ref.cell.status is Status.UNVERIFIED),
    )


def render_summary(summary: Summary) -> Group:
    """The summary as rich renderables to print: status counts, differences, what is not run."""
    title = f"Comparison with the paper, profile '{summary.profile}'"
    if not summary.comparable:
        title += " (numbers not comparable with the paper: shrunk settings)"
    counts = RichTable("Status", "Cells")
    for status, count in summary.counts.items():
        counts.add_row(Text(status.value, style=STATUS_STYLES[status]), str(count))
    # Counted under their status above as well: this row only says how many are uncertain.
    counts.add_row(f"(of these, unresolved {UNRESOLVED_MARK})", str(len(summary.unresolved)))
    parts: list[RichTable | Text] = [Text(title, style="bold"), counts]
    if summary.differing:
        parts.append(_cells_table(summary.differing, title="Differing cells, worst first"))
    if summary.unresolved:
        title = (
            f"Unresolved verdicts ({UNRESOLVED_MARK}): |difference| within "
            f"{UNRESOLVED_STANDARD_ERRORS} standard errors of the tolerance"
        )
        parts.append(_cells_table(summary.unresolved, title=title))
    if summary.invalid:
        title = "Invalid values: impossible numbers in their files, not shown, never compared"
        parts.append(_why_table(summary.invalid, title=title))
    if summary.unverified:
        title = "Unverified values: shown, never compared"
        parts.append(_why_table(summary.unverified, title=title))
    if summary.not_run:
        # One line per experiment: each leaves several cells of a row empty.
        by_producer: dict[str, Counter[str]] = defaultdict(Counter)
        for ref in summary.not_run:
            by_producer[ref.cell.producer or ""][f"Table {ref.table}, {ref.row}"] += 1
        not_run = RichTable("Not run", "Rows it fills (empty cells)", title="Not run yet")
        for producer, rows in by_producer.items():
            not_run.add_row(producer, "; ".join(f"{row} ({n})" for row, n in rows.items()))
        parts.append(not_run)
    # The runs' compute and checkpoints, once each: a verdict is read with them.
    listed = [*summary.differing, *summary.unresolved, *summary.not_run]
    notes = dict.fromkeys(ref.note for ref in listed if ref.note)
    if notes:
        parts += [Text("What the cells above rest on", style="bold"), Text("\n".join(notes))]
    return Group(*parts)


def _why_table(refs: Iterable[CellRef], *, title: str) -> RichTable:
    """One line per cell given no verdict: where it is, both values and why there is none."""
    table = RichTable(*("Table", "Row", "Column", "Paper", "Ours", "Status", "Why"), title=title)
    for ref in refs:
        cell = ref.cell
        table.add_row(
            str(ref.table),
            ref.row,
            ref.column,
            published_text(cell),
            value_text(cell),
            Text(status_text(cell), style=STATUS_STYLES[cell.status]),
            "; ".join(map(str, cell.problems)) or cell.unverified or "",
        )
    return table


def _cells_table(refs: Iterable[CellRef], *, title: str) -> RichTable:
    """One line per cell: where it is, both values, the difference and the verdict."""
    table = RichTable(
        *("Table", "Row", "Column", "Paper", "Ours", "Difference", "Status", "From"), title=title
    )
    for ref in refs:
        style = STATUS_STYLES[ref.cell.status]
        table.add_row(
            str(ref.table),
            ref.row,
            ref.column,
            published_text(ref.cell),
            "; ".join(text for text in (value_text(ref.cell), companion_text(ref.cell)) if text),
            Text(difference_text(ref.cell), style=style),
            Text(status_text(ref.cell), style=style),
            ref.cell.producer or "",
        )
    return table
