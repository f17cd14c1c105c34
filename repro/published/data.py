"""The paper's published numbers as typed, frozen data (loaded by :mod:`repro.published.load`).

Kept apart from the loader so that code reading the numbers depends only on these types.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

FAILS_TO_TRAIN = "x"
IMAGENET128 = "imagenet128"
CELL_METRICS = ("bpd", "params", "hours")
# The paper counts the parameters of models for RGB images (Tables 5 and 6).
PAPER_CHANNELS = 3


@dataclass(frozen=True)
class PrintedNumber:
    """A number as the paper printed it: its value, and its text, which fixes the precision."""

    value: float
    text: str

    @property
    def decimals(self) -> int:
        """Digits printed after the decimal point (0 for an integer)."""
        _, dot, fraction = self.text.partition(".")
        return len(fraction) if dot else 0

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class PublishedCell:
    """One dataset's cell of a Table 5 row; ``None`` is a blank, ``"x"`` is "fails to train"."""

    bpd: PrintedNumber | str | None = None
    params: PrintedNumber | None = None
    hours: PrintedNumber | str | None = None
    mark: str | None = None

    def get(self, metric: str) -> PrintedNumber | str | None:
        """Return the printed value of ``metric`` (one of :data:`CELL_METRICS`)."""
        return {"bpd": self.bpd, "params": self.params, "hours": self.hours}[metric]


@dataclass(frozen=True)
class Table5Row:
    """A model's row: its cells keyed by dataset (a missing dataset is a blank)."""

    model: str
    cells: Mapping[str, PublishedCell]
    note: str | None = None


@dataclass(frozen=True)
class Table5Group:
    """A titled group of rows, as the paper separates them."""

    name: str
    rows: tuple[Table5Row, ...]


@dataclass(frozen=True)
class Table5:
    """bpd / params / hours per dataset; ``imagenet128`` rows are keyed by :data:`IMAGENET128`."""

    title: str
    datasets: tuple[str, ...]
    marks: Mapping[str, str]
    groups: tuple[Table5Group, ...]
    imagenet128: tuple[Table5Row, ...]

    def hours(self, model: str, dataset: str) -> float | None:
        """The GPU hours printed for a model's cell, or ``None`` where none are printed."""
        rows = [row for group in self.groups for row in group.rows] + list(self.imagenet128)
        return printed_hours(rows, model, dataset)


def printed_hours(rows: Sequence[Table5Row], model: str, dataset: str) -> float | None:
    """The GPU hours printed in a model's cell of rows laid out as Table 5's, or ``None``."""
    for row in rows:
        cell = row.cells.get(dataset) if row.model == model else None
        if cell is not None and isinstance(cell.hours, PrintedNumber):
            return cell.hours.value
    return None


@dataclass(frozen=True)
class Table6Row:
    """One model configuration and its printed parameter count (millions)."""

    resolutions: int
    channels: int
    blocks: int
    params: PrintedNumber


@dataclass(frozen=True)
class Table6:
    """Parameter counts by configuration."""

    title: str
    note: str
    rows: tuple[Table6Row, ...]


@dataclass(frozen=True)
class Table7Row:
    """One model's FID, one value per temperature of :attr:`Table7.temperatures`."""

    model: str
    fid: tuple[PrintedNumber, ...]


@dataclass(frozen=True)
class Table7:
    """FID vs sampling temperature."""

    title: str
    note: str
    temperatures: tuple[float, ...]
    rows: tuple[Table7Row, ...]


@dataclass(frozen=True)
class Extras:
    """Published figures outside Tables 5-7, each section's note in ``notes``."""

    notes: Mapping[str, str]
    fid_shuffled_test: Mapping[str, PrintedNumber]
    ood_auroc: Mapping[str, Mapping[str, PrintedNumber]]
    ablation_transform: tuple[Table5Row, ...]


@dataclass(frozen=True)
class Published:
    """Everything in ``tables/published/``."""

    table5: Table5
    table6: Table6
    table7: Table7
    extras: Extras
