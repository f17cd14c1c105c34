"""One writer per output: operating-system locks that a killed process cannot leave behind.

A lock is ``flock`` on a small file beside what it guards. The kernel releases it when the
process exits, however it exits (SIGKILL included), so there is no stale lock to clean up; the
file only names the holder, for the message a second writer gets. Training locks its run folder;
evaluation, sampling and FID lock the file they write, so that different outputs of one run can
be computed in parallel.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

from repro.errors import ReproError

_HOLDER_BYTES = 512


class LockedError(ReproError):
    """Another process is writing the same output."""


def lock_file(guarded: Path, *, folder: bool = False) -> Path:
    """The lock file of ``guarded``: a hidden file beside it, or inside it for a folder."""
    return guarded / ".lock" if folder else guarded.with_name(f".{guarded.name}.lock")


@contextlib.contextmanager
def exclusive(guarded: Path, *, folder: bool = False, enabled: bool = True) -> Iterator[None]:
    """Hold the lock of ``guarded`` (a file to write, or a whole folder) for the block.

    Args:
        guarded: What the block writes; the folder of its lock file is created if missing.
        folder: ``guarded`` is a folder (a training run's), locked as a whole.
        enabled: False on the processes that do not write (torchrun ranks other than 0).

    Raises:
        LockedError: Another process holds the lock; the message names it.
    """
    if not enabled:
        yield
        return
    path = lock_file(guarded, folder=folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, _HOLDER_BYTES, 0).decode(errors="replace").strip()
            raise LockedError(
                f"{guarded} is being written by {holder or 'another process'}: wait for it to "
                "finish, or stop it"
            ) from None
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, _holder().encode(), 0)
        yield
    finally:
        # Closing releases the lock; the file stays, and is read only while someone holds it.
        os.close(descriptor)


def _holder() -> str:
    """This process, as a second writer is told about it."""
    command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])
    since = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    return f"process {os.getpid()} on {socket.gethostname()} ('{command}', since {since})"
