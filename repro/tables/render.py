"""Render a :class:`Table` as rich, Markdown, LaTeX, CSV or JSON.

The people-facing formats (rich, Markdown, LaTeX) show each paper row on a "paper" line and,
where we reproduce any of its cells, an "ours" line under it with our value, the difference and
the status, and a mark where a footnote says what our value rests on. The machine formats (CSV,
JSON) hold one record per cell with every number and that footnote's text.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from rich.table import Table as RichTable
from rich.text import Text
from tabulate import LATEX_ESCAPE_RULES, tabulate

from repro.provenance import Provenance
from repro.published import PrintedNumber
from repro.tables.compare import METRICS, UNRESOLVED_MARK
from repro.tables.model import Cell, Status, Table

STATUS_STYLES = {
    Status.REFERENCE: "",
    Status.REPRODUCED: "green",
    Status.DIFFERS: "bold red",
    Status.NOT_RUN: "dim",
    Status.PUBLISHED_FAILING: "yellow",
    Status.NOT_COMPARABLE: "magenta",
    Status.UNPUBLISHED: "cyan",
    Status.INVALID: "bold white on red",
    Status.UNVERIFIED: "bold yellow",
}
# A cell's provenance, flattened into columns of the machine formats.
_PROVENANCE_FIELDS = ("profile", "git_commit", "params_hash", "device", "torch", "date")
_CSV_FIELDS = (
    "table",
    "group",
    "row",
    "column",
    "metric",
    "published",
    "published_text",
    "mark",
    "reproduced",
    "compared",
    "difference",
    "relative_difference",
    "standard_error",
    "status",
    "unresolved",
    "note",
    "problems",
    "unverified",
    "producer",
    "source",
    *_PROVENANCE_FIELDS,
)


def published_text(cell: Cell) -> str:
    """Return the published value as printed, with its mark (empty for a blank)."""
    return "" if cell.published is None else f"{cell.published}{cell.mark or ''}"


def value_text(cell: Cell) -> str:
    """Return our value, ``± standard error`` where it has one (for a parameter count: the exact
    count and the compared millions)."""
    if cell.reproduced is None:
        return ""
    value_format = METRICS[cell.metric].value_format
    text = value_format.format(cell.reproduced)
    if cell.standard_error is not None:
        error = value_format.format(cell.standard_error)
        # An error below the value's last digit still shows its size rather than "± 0.000".
        if cell.standard_error > 0 and float(error.replace(",", "")) == 0:
            error = f"{cell.standard_error:.1g}"
        text += f" ± {error}"
    if cell.compared is not None and cell.compared != cell.reproduced:
        text += f" ({_at_printed_precision(cell, cell.compared)}M)"
    return text


def status_text(cell: Cell) -> str:
    """Return the status, marked where the verdict is unresolved (``differs†``)."""
    return cell.status.value + (UNRESOLVED_MARK if cell.unresolved else "")


def difference_text(cell: Cell) -> str:
    """Return the signed difference (and, for relative tolerances, the percentage)."""
    if cell.difference is None:
        return ""
    metric = METRICS[cell.metric]
    if metric.difference_format is None:
        text = _at_printed_precision(cell, cell.difference, sign="+")
    else:
        text = metric.difference_format.format(cell.difference)
    if metric.relative and cell.relative_difference is not None:
        text += f", {cell.relative_difference:+.1%}"
    return text


def _at_printed_precision(cell: Cell, value: float, *, sign: str = "") -> str:
    decimals = cell.published.decimals if isinstance(cell.published, PrintedNumber) else 2
    return f"{value:{sign}.{decimals}f}"


def companion_text(cell: Cell) -> str:
    """Return the number shown beside our value but not compared (KID beside FID, the bin-centre
    bpd beside the uniform one), or an empty string where the cell has none."""
    detail = METRICS[cell.metric].detail
    return (detail(cell.extras) if detail else None) or ""


def ours_text(cell: Cell) -> str:
    """Return the "ours" line's text: value, difference, status, any companion number and the
    mark of the footnote on what the value rests on (empty for a reference)."""
    if cell.status is Status.REFERENCE:
        return ""
    difference = difference_text(cell)
    parts = (value_text(cell), f"({difference})" if difference else "", status_text(cell))
    text = " ".join(part for part in parts if part)
    companion = companion_text(cell)
    if companion:
        text += f"; {companion}"
    return f"{text} {cell.note}" if cell.note else text


@dataclass(frozen=True)
class _Line:
    kind: str  # "group", "paper" or "ours"
    texts: list[str]
    cells: tuple[Cell, ...] = ()


def _lines(table: Table) -> Iterator[_Line]:
    blank_keys = [""] * len(table.key_headers)
    group = None
    for row in table.rows:
        if row.group and row.group != group:
            group = row.group
            yield _Line("group", [group] + [""] * (len(table.key_headers) + len(table.columns)))
        yield _Line("paper", [*row.labels, "paper", *map(published_text, row.cells)], row.cells)
        if row.attempted:
            yield _Line("ours", [*blank_keys, "ours", *map(ours_text, row.cells)], row.cells)


def _headers(table: Table) -> list[str]:
    return [*table.key_headers, "", *(column.header for column in table.columns)]


def _title(table: Table) -> str:
    return f"Table {table.id}: {table.title}" if table.id.isdigit() else table.title


_MARKDOWN_SPECIALS = str.maketrans({char: f"\\{char}" for char in "\\*_|"})


def _markdown_escape(text: str) -> str:
    # The paper's mark "*" and names like param_counts.json would otherwise turn into emphasis.
    return text.translate(_MARKDOWN_SPECIALS)


def to_markdown(table: Table) -> str:
    """Return the table as GitHub Markdown with a heading and footnotes."""
    rows = []
    for line in _lines(table):
        texts = [_markdown_escape(text) for text in line.texts]
        rows.append([f"**{texts[0]}**", *texts[1:]] if line.kind == "group" else texts)
    headers = [_markdown_escape(header) for header in _headers(table)]
    body = tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)
    notes = "\n".join(f"- {_markdown_escape(note)}" for note in table.footnote_lines)
    return f"### {_markdown_escape(_title(table))}\n\n{body}\n\n{notes}\n"


def _latex_escape(text: str) -> str:
    return "".join(LATEX_ESCAPE_RULES.get(char, char) for char in text)


def to_latex(table: Table) -> str:
    """Return the table as a LaTeX ``table`` float holding a ``tabular`` and its footnotes."""
    rows = [line.texts for line in _lines(table)]
    body = tabulate(rows, headers=_headers(table), tablefmt="latex", disable_numparse=True)
    notes = "\\\\\n".join(_latex_escape(note) for note in table.footnote_lines)
    return (
        "% Holds Unicode (×, Δ, ‡, ±, †): compile with XeLaTeX or LuaLaTeX.\n"
        "\\begin{table}[ht]\n\\centering\n\\scriptsize\n"
        f"\\caption{{{_latex_escape(_title(table))}}}\n{body}\n"
        f"\\par\\smallskip\\raggedright\n{notes}\n\\end{{table}}\n"
    )


def to_rich(table: Table) -> RichTable:
    """Return the table as a rich Table, our cells coloured by status."""
    caption = "\n".join(table.footnote_lines)
    rich = RichTable(title=_title(table), caption=caption, caption_justify="left")
    for header in _headers(table):
        rich.add_column(header, overflow="fold")
    for line in _lines(table):
        if line.kind == "group":
            if rich.row_count:
                rich.add_section()
            rich.add_row(*(Text(text, style="bold") for text in line.texts))
            continue
        # Only our values are coloured; the paper's line stays plain.
        statuses = [cell.status if line.kind == "ours" else Status.REFERENCE for cell in line.cells]
        styles = [""] * (len(line.texts) - len(line.cells)) + [STATUS_STYLES[s] for s in statuses]
        rich.add_row(*(Text(t, style=s) for t, s in zip(line.texts, styles, strict=True)))
    return rich


def _provenance_record(provenance: Provenance | None) -> dict[str, str | None]:
    if provenance is None:
        return dict.fromkeys(_PROVENANCE_FIELDS)
    flat = {**asdict(provenance), **asdict(provenance.hardware)}
    return {key: flat[key] for key in _PROVENANCE_FIELDS}


def cell_record(table: Table, row_index: int, column_index: int) -> dict[str, Any]:
    """Return one cell as a flat record of plain values (numbers stay numbers)."""
    row = table.rows[row_index]
    cell = row.cells[column_index]
    published = cell.published
    return {
        "table": table.id,
        "group": row.group,
        "row": table.row_name(row),
        "column": table.columns[column_index].header,
        "metric": cell.metric,
        "published": published.value if isinstance(published, PrintedNumber) else published,
        "published_text": published_text(cell),
        "mark": cell.mark,
        "reproduced": cell.reproduced,
        "compared": cell.compared,
        "difference": cell.difference,
        "relative_difference": cell.relative_difference,
        "standard_error": cell.standard_error,
        "status": cell.status.value,
        "unresolved": cell.unresolved,
        # The footnote's text, not its mark: a CSV line has no footnotes to look a mark up in.
        "note": table.cell_notes.get(cell.note) if cell.note else None,
        "problems": "; ".join(map(str, cell.problems)) or None,
        "unverified": cell.unverified,
        "producer": cell.producer,
        "source": None if cell.source is None else str(cell.source),
        **_provenance_record(cell.provenance),
        "extras": dict(cell.extras),
    }


def _records(table: Table) -> Iterator[dict[str, Any]]:
    for row_index, row in enumerate(table.rows):
        for column_index, cell in enumerate(row.cells):
            # Blank reference cells carry nothing; listing them would only pad the file.
            if cell.published is not None or cell.status is not Status.REFERENCE:
                yield cell_record(table, row_index, column_index)


def to_csv(table: Table) -> str:
    """Return one CSV line per non-blank cell, with published and reproduced numbers, then one
    column per extra number the table's cells carry (e.g. ``kid_mean`` and ``kid_std`` beside
    FID; empty where a cell lacks it)."""
    records = list(_records(table))
    extras = dict.fromkeys(key for r in records for key in r["extras"] if key not in _CSV_FIELDS)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[*_CSV_FIELDS, *extras], extrasaction="ignore")
    writer.writeheader()
    writer.writerows({**record["extras"], **record} for record in records)
    return out.getvalue()


def to_json(table: Table) -> str:
    """Return the table as JSON: its header fields and one record per non-blank cell."""
    document = {
        "table": table.id,
        "title": table.title,
        "profile": table.profile,
        "columns": [asdict(column) for column in table.columns],
        "footnotes": list(table.footnote_lines),
        "cells": list(_records(table)),
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


FORMATS: dict[str, Callable[[Table], str | RichTable]] = {
    "rich": to_rich,
    "markdown": to_markdown,
    "latex": to_latex,
    "csv": to_csv,
    "json": to_json,
}
# The formats written to files, by file suffix.
FILE_FORMATS = {"md": "markdown", "tex": "latex", "csv": "csv"}


def render(table: Table, fmt: str) -> str | RichTable:
    """Render ``table`` in one of :data:`FORMATS`: ``rich`` gives a :class:`rich.table.Table`,
    the others (``markdown``, ``latex``, ``csv``, ``json``) text.

    Raises:
        ValueError: ``fmt`` is not a known format (a caller's bug: the CLI offers only those).
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown table format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return FORMATS[fmt](table)
