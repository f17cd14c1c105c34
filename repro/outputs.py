"""Claiming an output before computing it: one writer, a writable place, no lesser replacement.

A command that writes a result claims its file first (:func:`claimed`): it takes the file's lock
(:mod:`repro.locks`), checks that the file can be written, and refuses to replace a result
computed from more (more samples, more images) or from another checkpoint unless asked to.
Every check runs before the compute it would otherwise waste.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from repro.errors import ReproError
from repro.locks import exclusive


class OutputError(ReproError):
    """An output that cannot, or must not, be written (one line: the path, the cause, the fix)."""


def check_writable(path: Path) -> None:
    """Fail now, not after the compute, if ``path`` cannot be written; creates nothing.

    Args:
        path: The file to be written; its folder may be missing if it can be created.

    Raises:
        OutputError: ``path`` is a directory, a file stands where one of its folders should be,
            or the folder that would hold it (or the nearest existing one above) is not writable.
    """
    if path.is_dir():
        raise OutputError(f"{path}: is a directory; remove it or write elsewhere")
    existing = path.parent
    # Path(".").parent is Path("."), so this ends at the working directory or the root.
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"{path}: cannot create its folder, {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: cannot write it, {existing} is not writable; make it writable")


def check_replaceable(
    path: Path, *, held: Mapping[str, Any] | None, new: Mapping[str, Any], overwrite: bool
) -> None:
    """Refuse to replace a result computed from more, or of another kind, unless ``overwrite``.

    Args:
        path: The result's file.
        held: What the existing result was computed from (None: no readable result there).
        new: The same for the result about to be computed: counts (a larger count is a better
            result) and names (a checkpoint: another one is another result).
        overwrite: The user asked to replace it whatever it holds.

    Raises:
        OutputError: Naming what the existing result has that the new one lacks.
    """
    if overwrite or held is None:
        return
    lesser = [
        f"{key} {new[key]} (it has {held[key]})"
        for key in new
        if key in held and _lesser(new[key], held[key])
    ]
    if lesser:
        raise OutputError(
            f"{path} holds a result computed from more or from another checkpoint; this one "
            f"would have {', '.join(lesser)}: pass --overwrite to replace it"
        )


@contextlib.contextmanager
def claimed(
    path: Path,
    *,
    held: Callable[[Path], Mapping[str, Any] | None] | None = None,
    new: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    enabled: bool = True,
) -> Iterator[None]:
    """Hold ``path``'s lock for the block, after checking it can and may be written.

    Args:
        path: The output the block writes.
        held: Reads what the existing result at ``path`` was computed from (None: nothing
            there), once the lock is held (see :func:`check_replaceable`).
        new: What the block's result is computed from.
        overwrite: Replace the existing result whatever it holds.
        enabled: False on processes that do not write (torchrun ranks other than 0).

    Raises:
        LockedError: Another process is writing ``path``.
        OutputError: ``path`` cannot be written, or holds a result computed from more.
    """
    if enabled:
        check_writable(path)  # before the lock file is made beside it
    with exclusive(path, enabled=enabled):
        if enabled:
            existing = None if held is None else held(path)
            check_replaceable(path, held=existing, new=new or {}, overwrite=overwrite)
        yield


def stored_fields(path: Path, *keys: str) -> dict[str, Any] | None:
    """Fields of the JSON result at ``path`` (None when there is none, or it is unreadable:
    a file that cannot be read holds nothing to lose)."""
    try:
        stored = json.loads(path.read_text())
        return {key: stored[key] for key in keys}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _lesser(new: Any, held: Any) -> bool:
    if isinstance(new, int | float) and isinstance(held, int | float):
        return new < held
    return new != held
