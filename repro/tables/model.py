"""Plain data for a comparison table: statuses, cells, rows and the table itself.

Builders produce these; renderers and the summary only read them, so every output format shows
the same cells with the same statuses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from repro.provenance import Provenance
from repro.published import PrintedNumber
from repro.tables.plausibility import Problem


class Status(Enum):
    """How a cell's reproduced value relates to the published one."""

    REFERENCE = "reference"
    """A published number we do not try to reproduce (baselines, blanks)."""
    REPRODUCED = "reproduced"
    """Within tolerance of the published number (see :attr:`Cell.unresolved`)."""
    DIFFERS = "differs"
    """Outside tolerance (see :attr:`Cell.unresolved`)."""
    NOT_RUN = "not run"
    """We mean to reproduce it, but its results file does not exist yet."""
    PUBLISHED_FAILING = "published failing"
    """The paper printed "x" (fails to train); our number is shown, with nothing to compare."""
    NOT_COMPARABLE = "not comparable"
    """Produced by a profile marked `comparable: false` (shrunk settings, e.g. smoke)."""
    UNPUBLISHED = "no published number"
    """We have a number, but the paper printed none (blank or text such as ">=5days")."""
    INVALID = "invalid"
    """Its results file holds a value that cannot be right (see :attr:`Cell.problems`): the
    value is not shown and never compared."""
    UNVERIFIED = "unverified"
    """Computed from something the suite could not verify (see :attr:`Cell.unverified`): the
    value is shown, never compared."""


@dataclass(frozen=True)
class Column:
    """A value column: a stable ``key`` for machine formats and a ``header`` for people."""

    key: str
    header: str


@dataclass(frozen=True)
class Cell:
    """One published value, our value beside it, and how they compare.

    ``compared`` is our value as it is compared with the printed one (for parameter counts: the
    exact count in millions, rounded to the printed precision); ``difference`` is
    ``compared - published`` (signed, in the published unit) and ``relative_difference`` that
    divided by the published value. ``producer`` names the experiment (or results file) that
    yields the value; it is ``None`` only for reference cells. ``standard_error`` is that of our
    value where it has one (bpd: of the mean over the test images; FID: its standard deviation
    over seed sets). ``unresolved`` marks a reproduced or differing verdict that this
    uncertainty cannot decide: ``| |difference| - tolerance | <= 2 · standard_error``.
    ``note`` is the mark of the table's footnote (:attr:`Table.cell_notes`) that says what our
    value rests on, e.g. the run's compute and the checkpoint scored. ``problems`` names the
    impossible values (and their files) that make a cell invalid; ``unverified`` says why an
    unverified cell's value is not compared.
    """

    metric: str
    status: Status
    published: PrintedNumber | str | None = None
    mark: str | None = None
    reproduced: float | None = None
    compared: float | None = None
    difference: float | None = None
    relative_difference: float | None = None
    producer: str | None = None
    source: Path | None = None
    provenance: Provenance | None = None
    extras: Mapping[str, float | int | str] = field(default_factory=dict)
    standard_error: float | None = None
    unresolved: bool = False
    note: str | None = None
    problems: tuple[Problem, ...] = ()
    unverified: str | None = None


@dataclass(frozen=True)
class Row:
    """A table row: its labels (one per key header), one cell per column, and its group."""

    labels: tuple[str, ...]
    cells: tuple[Cell, ...]
    group: str = ""

    @property
    def attempted(self) -> bool:
        """Whether any cell of the row is one we reproduce (so the row gets an "ours" line)."""
        return any(cell.status is not Status.REFERENCE for cell in self.cells)


@dataclass(frozen=True)
class Table:
    """A built table, ready to render.

    ``footnotes`` qualify the whole table; ``cell_notes`` maps a mark to the footnote about the
    cells whose :attr:`Cell.note` is that mark (one per experiment whose run they come from).
    """

    id: str
    """A key of :data:`repro.layout.TABLE_IDS`: the paper's number, or a name."""
    title: str
    profile: str
    key_headers: tuple[str, ...]
    columns: tuple[Column, ...]
    rows: tuple[Row, ...]
    footnotes: tuple[str, ...]
    cell_notes: Mapping[str, str] = field(default_factory=dict)

    @property
    def footnote_lines(self) -> tuple[str, ...]:
        """Every footnote as printed under the table: the table's, then each marked one."""
        return (*self.footnotes, *(f"{mark} {note}" for mark, note in self.cell_notes.items()))

    def row_name(self, row: Row) -> str:
        """Name ``row`` in one string (``"res=1, ch=64, bl=14"`` where there are several keys)."""
        if len(self.key_headers) == 1:
            return row.labels[0]
        return ", ".join(f"{h}={v}" for h, v in zip(self.key_headers, row.labels, strict=True))
