"""Errors for unknown, absent, ambiguous or unreadable datasets; every message is a single line.

Each is a :class:`repro.errors.ReproError` (user-fixable: the command line prints its message
without a traceback) and also the builtin type callers caught before, e.g. ``FileNotFoundError``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from repro.errors import ReproError


def _one_line(text: str) -> str:
    # Messages embed third-party errors (urllib, pip, torchvision) that span lines; a CLI or log
    # line should show the whole story at once.
    return " ".join(text.split())


def describe(value: object) -> str:
    """Summarise what a file held where an array was expected, e.g. ``float64 (10, 3)``.

    Args:
        value: Anything read from a dataset file.

    Returns:
        The array's dtype and shape, or the object's type name.
    """
    if isinstance(value, np.ndarray):
        return f"{value.dtype} {value.shape}"
    return type(value).__name__


class UnknownDatasetError(ReproError, KeyError):
    """A dataset name that is not in ``DATASETS``; the message lists the known names."""

    def __str__(self) -> str:
        # KeyError would print the repr of its argument, quotes included.
        return str(self.args[0])


class DatasetSettingError(ReproError, ValueError):
    """A dataset option that cannot work, e.g. a negative limit or an impossible image size."""


class DatasetNotFoundError(ReproError, FileNotFoundError):
    """A dataset's files are absent and could not be fetched.

    The message reads ``<what> not found under <where>: <remedy>``.
    """

    def __init__(self, what: str, where: Path, remedy: str) -> None:
        super().__init__(_one_line(f"{what} not found under {where}: {remedy}"))


class AmbiguousDatasetError(ReproError, ValueError):
    """A dataset file occurs more than once below its folder, so which to read is unclear.

    The message reads ``ambiguous <what> layout: <name> found at <paths>; keep one copy``.
    """

    def __init__(self, what: str, name: str, paths: list[Path]) -> None:
        where = ", ".join(map(str, paths))
        super().__init__(
            _one_line(f"ambiguous {what} layout: {name} found at {where}; keep one copy")
        )


class CorruptDatasetError(ReproError, ValueError):
    """A dataset file exists but does not hold what its format promises.

    The message reads ``<path> is unreadable or malformed: <problem>``.
    """

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(_one_line(f"{path} is unreadable or malformed: {problem}"))
