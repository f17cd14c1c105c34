"""Writing tables: destinations checked before anything is computed, files replaced atomically
(:func:`repro.files.atomic_destination`), so a full disk or a killed run leaves the previous
file as it was."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from repro.files import atomic_destination
from repro.layout import table_stem
from repro.outputs import check_writable
from repro.tables.model import Table
from repro.tables.render import FILE_FORMATS, FORMATS


def table_paths(table_ids: Iterable[str], out_dir: Path) -> list[Path]:
    """The files :func:`write_tables` writes for the tables ``table_ids``.

    Args:
        table_ids: Keys of :data:`repro.layout.TABLE_IDS`.
        out_dir: The folder they go in.

    Returns:
        ``table5.md``, ``.tex`` and ``.csv`` (:func:`repro.layout.table_stem`) of each table, in
        that order.
    """
    return [
        out_dir / f"{table_stem(table_id)}.{suffix}"
        for table_id in table_ids
        for suffix in FILE_FORMATS
    ]


def write_tables(tables: Iterable[Table], out_dir: Path) -> list[Path]:
    """Write ``table{N}.md``, ``.tex`` and ``.csv`` of each table into ``out_dir``, atomically.

    Every file is rendered and every destination checked before the first is replaced.

    Args:
        tables: Built tables.
        out_dir: Normally the profile's :attr:`ProfileLayout.tables`; created if missing.

    Returns:
        The written paths.

    Raises:
        OutputError: A destination cannot be written (checked before any is replaced).
        WriteError: Writing failed (the files already replaced stay new, the others as they
            were).
    """
    tables = list(tables)
    texts = [str(FORMATS[fmt](table)) for table in tables for fmt in FILE_FORMATS.values()]
    paths = table_paths((table.id for table in tables), out_dir)
    for path in paths:
        check_writable(path)
    for path, text in zip(paths, texts, strict=True):
        with atomic_destination(path) as temporary:
            temporary.write_text(text, encoding="utf-8", newline="")
    return paths
