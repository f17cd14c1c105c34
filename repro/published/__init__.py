"""The paper's published numbers: frozen types (:mod:`.data`) and their YAML loader (:mod:`.load`).

The numbers live in ``tables/published/*.yaml``. Nothing here imports torch or :mod:`repro.tables`
(the tables import this package, never the reverse).
"""

from __future__ import annotations

from repro.published.data import (
    CELL_METRICS,
    FAILS_TO_TRAIN,
    IMAGENET128,
    PAPER_CHANNELS,
    Extras,
    PrintedNumber,
    Published,
    PublishedCell,
    Table5,
    Table5Group,
    Table5Row,
    Table6,
    Table6Row,
    Table7,
    Table7Row,
    printed_hours,
)
from repro.published.load import PUBLISHED_DIR, PublishedDataError, load_published

__all__ = [
    "CELL_METRICS",
    "FAILS_TO_TRAIN",
    "IMAGENET128",
    "PAPER_CHANNELS",
    "PUBLISHED_DIR",
    "Extras",
    "PrintedNumber",
    "Published",
    "PublishedCell",
    "PublishedDataError",
    "Table5",
    "Table5Group",
    "Table5Row",
    "Table6",
    "Table6Row",
    "Table7",
    "Table7Row",
    "load_published",
    "printed_hours",
]
