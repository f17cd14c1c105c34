"""A per-iteration metrics table (TSV, which DVC plots read) that survives interrupted runs."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from repro.files import atomic_destination


class MetricsLog:
    """Rows of metrics appended one iteration at a time.

    Args:
        path: The TSV file; its first row names the columns.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def rows(self) -> list[dict[str, str]]:
        """All rows as strings, as written."""
        if not self.path.exists():
            return []
        with self.path.open(newline="") as file:
            return list(csv.DictReader(file, delimiter="\t"))

    def truncate(self, iteration: int) -> None:
        """Keep only rows up to ``iteration``: those after a checkpoint are redone on resume.

        A row cut short by a killed process is dropped with them.
        """
        kept = [
            row
            for row in self.rows()
            if None not in row  # no surplus fields
            and all(row.values())  # and none missing or empty
            and int(row["iteration"]) <= iteration
        ]
        if not kept:
            self.path.unlink(missing_ok=True)
            return
        with atomic_destination(self.path) as temporary, temporary.open("w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=list(kept[0]), delimiter="\t")
            writer.writeheader()
            writer.writerows(kept)

    def append(self, row: dict[str, Any]) -> None:
        """Add one row, writing the header first if the file is new."""
        new = not self.path.exists()
        with self.path.open("a", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=list(row), delimiter="\t")
            if new:
                writer.writeheader()
            writer.writerow({k: _format(v) for k, v in row.items()})

    def last_value(self, column: str) -> float | None:
        """The latest value of a column, or None when there are no rows."""
        rows = self.rows()
        return float(rows[-1][column]) if rows else None


def _format(value: Any) -> str:
    # repr keeps every digit of a float, so reruns compare bit for bit.
    return repr(value) if isinstance(value, float) else str(value)
