"""Content hashes and crash-safe writes, for every file the suite produces or caches."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from repro.errors import ReproError

_CHUNK_BYTES = 1 << 20
_SHARED_FILE_MODE = 0o644


class WriteError(ReproError, OSError):
    """A file that could not be written (no space, no permission, a folder in the way); the
    previous file, if any, is unchanged."""


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
        WriteError: The folder cannot be created, or the file written or renamed into place
            (one line naming ``path`` and the cause).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as error:
        raise _write_error(path, error) from error
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        # mkstemp creates owner-only files; results and cached artefacts are meant to be shared.
        temporary.chmod(_SHARED_FILE_MODE)
        os.replace(temporary, path)
    except WriteError:
        raise
    except OSError as error:
        raise _write_error(path, error) from error
    finally:
        temporary.unlink(missing_ok=True)


# What to do about the usual causes of a failed write.
_FIXES = {
    errno.ENOSPC: "free some disk space",
    errno.EDQUOT: "free some of your disk quota",
    errno.EACCES: "make its folder writable",
    errno.EPERM: "make its folder writable",
    errno.EROFS: "write to a writable file system",
    errno.EISDIR: "remove the directory in its place",
    errno.ENOTDIR: "remove the file where its folder should be",
}


def _write_error(path: Path, error: OSError) -> WriteError:
    cause = error.strerror or str(error)
    fix = _FIXES.get(error.errno or 0, "fix what the cause names")
    return WriteError(f"{path}: not written ({cause}; {fix}); any previous file is unchanged")


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` to ``path`` atomically as indented JSON with sorted keys and a final newline.

    Args:
        path: The destination; its folder is created if missing.
        data: Anything :func:`json.dumps` accepts.

    Raises:
        TypeError: ``data`` holds a value JSON cannot represent (``path`` is left untouched).
        WriteError: The file cannot be written (``path`` is left untouched).
    """
    # Serialised before the temporary file is opened, so an unencodable value costs no I/O.
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    with atomic_destination(path) as temporary:
        temporary.write_text(text)


def sidecar_path(path: Path) -> Path:
    """The JSON sidecar describing an artefact: ``path`` with ``.json`` appended to its name."""
    return path.with_name(path.name + ".json")
