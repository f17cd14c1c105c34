"""Bounding how long third-party downloaders may wait on the network."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def socket_timeout(seconds: float) -> Iterator[None]:
    """Give sockets opened inside the block a default timeout, then restore the old one.

    torchvision's downloaders and ``torch.hub`` call ``urlopen`` without a timeout, so behind a
    firewall that drops packets (rather than refusing them) they would hang forever. The default
    is process-wide: do not download from several threads at once.

    Args:
        seconds: Longest wait for a connection or for each read.

    Returns:
        A context manager.
    """
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)
