"""Errors for absent or unreadable datasets; every message is a single line."""

from __future__ import annotations

from pathlib import Path

import numpy as np


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


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are absent and could not be fetched.

    The message reads ``<what> not found under <where>: <remedy>``.
    """

    def __init__(self, what: str, where: Path, remedy: str) -> None:
        super().__init__(_one_line(f"{what} not found under {where}: {remedy}"))


class CorruptDatasetError(ValueError):
    """A dataset file exists but does not hold what its format promises.

    The message reads ``<path> is unreadable or malformed: <problem>``.
    """

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(_one_line(f"{path} is unreadable or malformed: {problem}"))
