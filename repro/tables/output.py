"""Writing tables and figures: destinations checked before anything is computed, files replaced
atomically, every failure one line naming the path and its cause.

A table or figure is replaced only once its new content is complete (:func:`atomic_output`), so a
full disk or a killed run leaves the previous file as it was.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from repro.errors import ReproError
from repro.files import atomic_destination
from repro.tables.model import Table
from repro.tables.render import FILE_FORMATS, FORMATS

# What to do about the usual causes of a failed write.
_FIXES = {
    errno.ENOSPC: "free some disk space",
    errno.EDQUOT: "free some of your disk quota",
    errno.EACCES: "make its folder writable",
    errno.EPERM: "make its folder writable",
    errno.EROFS: "write to a writable file system",
    errno.EISDIR: "remove the directory in its place",
}


class OutputError(ReproError):
    """A table or figure cannot be written where asked (one line: the path, the cause, the fix)."""


def check_destination(path: Path) -> None:
    """Refuse a destination that cannot be written, creating nothing.

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


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Yield a temporary path that replaces ``path`` only if the block succeeds.

    Args:
        path: The destination; its folder is created if missing.

    Returns:
        A context manager yielding the temporary file to write (it may not keep ``path``'s
        suffix: a writer that picks its format by suffix must be told the format).

    Raises:
        ReproError: An :class:`OSError` while creating, writing or renaming, as one line naming
            ``path`` (not the temporary file) and the cause (an :class:`OutputError` unless
            :func:`~repro.files.atomic_destination` already said so); ``path`` is left as it was.
    """
    try:
        with atomic_destination(path) as temporary:
            yield temporary
    except ReproError:
        raise  # already one line naming the path
    except OSError as error:
        cause = error.strerror or str(error)
        fix = _FIXES.get(error.errno or 0)
        raise OutputError(
            f"{path}: not written ({cause}{f'; {fix}' if fix else ''}); any previous file is "
            "unchanged"
        ) from None


def table_paths(numbers: Iterable[int], out_dir: Path) -> list[Path]:
    """The files :func:`write_tables` writes for the tables numbered ``numbers``.

    Args:
        numbers: Table numbers.
        out_dir: The folder they go in.

    Returns:
        ``table{N}.md``, ``.tex`` and ``.csv`` of each table, in that order.
    """
    return [out_dir / f"table{number}.{suffix}" for number in numbers for suffix in FILE_FORMATS]


def write_tables(tables: Iterable[Table], out_dir: Path) -> list[Path]:
    """Write ``table{N}.md``, ``.tex`` and ``.csv`` of each table into ``out_dir``, atomically.

    Every file is rendered and every destination checked before the first is replaced.

    Args:
        tables: Built tables.
        out_dir: Normally the profile's :attr:`ProfileLayout.tables`; created if missing.

    Returns:
        The written paths.

    Raises:
        OutputError: A destination cannot be written (the files already replaced stay new, the
            others as they were).
    """
    tables = list(tables)
    texts = [str(FORMATS[fmt](table)) for table in tables for fmt in FILE_FORMATS.values()]
    paths = table_paths((table.number for table in tables), out_dir)
    for path in paths:
        check_destination(path)
    for path, text in zip(paths, texts, strict=True):
        with atomic_output(path) as temporary:
            temporary.write_text(text, encoding="utf-8", newline="")
    return paths
