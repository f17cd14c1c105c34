"""Content hashes and crash-safe writes, for every file the suite produces or caches."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_CHUNK_BYTES = 1 << 20
_SHARED_FILE_MODE = 0o644


def sha256_bytes(data: bytes) -> str:
    """The hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file, read in chunks (it may be larger than memory)."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_destination(path: Path) -> Iterator[Path]:
    """Yield a temporary path that replaces ``path`` only if the block succeeds.

    The temporary file lives in the destination folder so the final rename stays on one file
    system and is atomic: readers see either the old file or the complete new one, never a
    half-written artefact from an interrupted run. If the block raises, the temporary file is
    removed and ``path`` is left as it was.

    Args:
        path: The final destination; its folder is created if missing.

    Returns:
        A context manager yielding an existing, empty temporary file to write; the replaced
        file has mode 0644.

    Raises:
        OSError: The folder cannot be created or the file cannot be renamed into place.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        # mkstemp creates owner-only files; results and cached artefacts are meant to be shared.
        temporary.chmod(_SHARED_FILE_MODE)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` to ``path`` atomically as indented JSON with sorted keys and a final newline.

    Args:
        path: The destination; its folder is created if missing.
        data: Anything :func:`json.dumps` accepts.

    Raises:
        TypeError: ``data`` holds a value JSON cannot represent (``path`` is left untouched).
        OSError: The file cannot be written.
    """
    # Serialised before the temporary file is opened, so an unencodable value costs no I/O.
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    with atomic_destination(path) as temporary:
        temporary.write_text(text)


def sidecar_path(path: Path) -> Path:
    """The JSON sidecar describing an artefact: ``path`` with ``.json`` appended to its name."""
    return path.with_name(path.name + ".json")
