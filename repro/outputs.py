"""Claiming an output before computing it: one writer, a writable place, no lesser replacement.

A command that writes a result claims its file first (:func:`claimed`): it takes the file's lock
(:mod:`repro.locks`), checks that the file can be written, and refuses to replace a result
computed from more (more samples, more images) or from another checkpoint unless asked to.
Every check runs before the compute it would otherwise waste.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from repro.errors import ReproError
from repro.locks import exclusive


class OutputError(ReproError):
    """An output that cannot, or must not, be written."""


def check_writable(path: Path) -> None:
    """Fail now, not after the compute, if ``path`` cannot be written.

    Raises:
        OutputError: ``path`` is a folder, or its folder cannot be created or written to.
    """
    if path.is_dir():
        raise OutputError(f"{path} is a folder where a file is to be written: move it away")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".probe"):
            pass
    except OSError as error:
        cause = error.strerror or str(error)
        raise OutputError(
            f"{path}: cannot write there ({cause}): free space or fix the folder's permissions"
        ) from None


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
    held: Mapping[str, Any] | None = None,
    new: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    enabled: bool = True,
) -> Iterator[None]:
    """Hold ``path``'s lock for the block, after checking it can and may be written.

    Args:
        path: The output the block writes.
        held: What its existing result was computed from (see :func:`check_replaceable`).
        new: What the block's result is computed from.
        overwrite: Replace the existing result whatever it holds.
        enabled: False on processes that do not write (torchrun ranks other than 0).

    Raises:
        LockedError: Another process is writing ``path``.
        OutputError: ``path`` cannot be written, or holds a result computed from more.
    """
    with exclusive(path, enabled=enabled):
        if enabled:
            check_writable(path)
            check_replaceable(path, held=held, new=new or {}, overwrite=overwrite)
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
