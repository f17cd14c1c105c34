"""Where the suite keeps data, caches and run outputs.

Every location can be moved with an environment variable, so CI, a laptop and a GPU cluster can
share one code path: ``MRCNF_DATA_ROOT`` (datasets and downloaded assets), ``MRCNF_CACHE``
(derived artefacts such as converted Inception weights and reference statistics) and
``MRCNF_RUNS`` (training and evaluation outputs).
"""

from __future__ import annotations

import os
from pathlib import Path


def _env_path(variable: str, default: Path) -> Path:
    value = os.environ.get(variable)
    return Path(value).expanduser() if value else default


def data_root() -> Path:
    """Return the folder holding datasets (``$MRCNF_DATA_ROOT``, default ``./data``)."""
    return _env_path("MRCNF_DATA_ROOT", Path.cwd() / "data")


def cache_dir() -> Path:
    """Return the folder for re-creatable files (``$MRCNF_CACHE``, default ``<data>/cache``)."""
    return _env_path("MRCNF_CACHE", data_root() / "cache")


def runs_root() -> Path:
    """Return the folder holding run outputs (``$MRCNF_RUNS``, default ``./runs``)."""
    return _env_path("MRCNF_RUNS", Path.cwd() / "runs")
