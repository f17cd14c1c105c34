"""Unpickling restricted to what dataset pickles hold: builtins and numpy arrays.

A pickle can run arbitrary code when loaded, and these files come from downloads and user
folders, so every global a pickle names must be on an allow-list.
"""

from __future__ import annotations

import pickle
import zlib
from pathlib import Path
from typing import Any, BinaryIO

from repro.datasets.errors import CorruptDatasetError

_ALLOWED_GLOBALS = frozenset(
    {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        # numpy 2 renamed numpy.core to numpy._core; old pickles (MNIST, CIFAR10) use the former.
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        # Protocol-2 pickles written by Python 3 encode bytes objects through _codecs.encode.
        ("_codecs", "encode"),
    }
)

# What a truncated, garbled or gzip-damaged pickle can raise while loading.
_DECODE_ERRORS = (
    pickle.UnpicklingError,
    EOFError,
    OSError,
    zlib.error,
    ValueError,
    TypeError,
    AttributeError,
    IndexError,
    KeyError,
)


class _DatasetUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
        return super().find_class(module, name)


def unpickle(stream: BinaryIO, *, encoding: str, origin: Path) -> Any:
    """Load one pickled object that may only contain builtins and numpy arrays.

    Args:
        stream: Binary stream positioned at the pickle.
        encoding: How to decode Python 2 ``str`` objects (``"latin1"`` or ``"bytes"``).
        origin: The file the stream comes from, named in errors.

    Returns:
        The unpickled object.

    Raises:
        CorruptDatasetError: The stream is not a pickle, is truncated, or names a global
            outside the allow-list.
    """
    try:
        return _DatasetUnpickler(stream, encoding=encoding).load()
    except _DECODE_ERRORS as exc:
        raise CorruptDatasetError(origin, f"not a readable pickle ({exc})") from exc
