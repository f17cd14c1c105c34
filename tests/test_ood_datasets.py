"""The out-of-distribution sets' loaders on files written in their real formats: SVHN's MATLAB
arrays and TinyImageNet's validation JPEGs, their checksums and their one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

from repro.datasets import CorruptDatasetError, DatasetNotFoundError, load_dataset
from tests.dataset_checks import assert_one_line_naming, reference_downsample, write_svhn


def test_svhn_reads_height_width_channel_image_arrays(tmp_path: Path) -> None:
    train_pixels = write_svhn(tmp_path / "svhn", "train_32x32.mat", 5, seed=0)
    test_pixels = write_svhn(tmp_path / "svhn", "test_32x32.mat", 4, seed=1)
    splits = load_dataset("svhn", root=tmp_path, download=False, limit_test=3)
    assert splits.train.shape == (5, 3, 32, 32) and splits.test.shape == (3, 3, 32, 32)
    assert splits.train.is_contiguous() and splits.test.dtype == torch.uint8
    assert splits.test[2, 1, 5, 7] == test_pixels[5, 7, 1, 2]
    assert np.array_equal(splits.train.numpy(), train_pixels.transpose(3, 2, 0, 1))


def test_svhn_needs_only_the_files_of_the_splits_it_reads(tmp_path: Path) -> None:
    write_svhn(tmp_path / "svhn", "test_32x32.mat", 4, seed=1)
    splits = load_dataset("svhn", root=tmp_path, download=False, limit_train=0, image_size=16)
    assert splits.train.shape == (0, 3, 16, 16) and splits.test.shape == (4, 3, 16, 16)
    with pytest.raises(DatasetNotFoundError, match=r"train_32x32\.mat") as caught:
        load_dataset("svhn", root=tmp_path, download=False)
    assert_one_line_naming(caught.value, tmp_path / "svhn")
    assert "ufldl.stanford.edu" in str(caught.value)


def test_svhn_md5_sums_are_torchvisions() -> None:
    from torchvision.datasets import SVHN

    from repro.datasets.svhn import MD5

    assert {name: md5 for _, name, md5 in SVHN.split_list.values() if name in MD5} == MD5


@pytest.mark.parametrize("content", ["garbage", "wrong-shape"])
def test_a_malformed_svhn_file_is_reported_by_name(tmp_path: Path, content: str) -> None:
    path = tmp_path / "svhn" / "test_32x32.mat"
    path.parent.mkdir()
    if content == "garbage":
        path.write_bytes(b"not a MATLAB file")
    else:
        scipy.io.savemat(path, {"X": np.zeros((28, 28, 1, 2), np.uint8)})
    with pytest.raises(CorruptDatasetError) as caught:
        load_dataset("svhn", root=tmp_path, download=False, limit_train=0)
    assert_one_line_naming(caught.value, path)


def _write_tiny_imagenet(root: Path) -> dict[str, np.ndarray]:
    """Three validation JPEGs (one grey) listed out of name order, and two training ones; return
    the pixels each decodes to."""
    folder = root / "tiny-imagenet-200"
    rng = np.random.default_rng(3)
    pictures = {
        "val/images/val_10.JPEG": rng.integers(0, 256, (64, 64, 3), dtype=np.uint8),
        "val/images/val_2.JPEG": np.full((64, 64, 3), (200, 30, 90), dtype=np.uint8),
        "val/images/val_0.JPEG": rng.integers(0, 256, (64, 64), dtype=np.uint8),
        "train/n01/images/n01_0.JPEG": rng.integers(0, 256, (64, 64, 3), dtype=np.uint8),
        "train/n02/images/n02_0.JPEG": rng.integers(0, 256, (64, 64, 3), dtype=np.uint8),
    }
    decoded = {}
    for relative, pixels in pictures.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(path, format="JPEG")
        with Image.open(path) as image:
            decoded[relative] = np.asarray(image.convert("RGB")).transpose(2, 0, 1)
    index = ["val_0.JPEG\tn01\t0\t0\t63\t63", "val_2.JPEG\tn02\t1\t2\t3\t4", "val_10.JPEG\tn01\t0"]
    (folder / "val" / "val_annotations.txt").write_text("\n".join(index) + "\n")
    return decoded


def test_tiny_imagenet_reads_the_validation_split_in_its_index_order(tmp_path: Path) -> None:
    decoded = _write_tiny_imagenet(tmp_path)
    splits = load_dataset("tinyimagenet", root=tmp_path, download=False)
    assert splits.train.shape == (2, 3, 64, 64) and splits.test.shape == (3, 3, 64, 64)
    order = ["val/images/val_0.JPEG", "val/images/val_2.JPEG", "val/images/val_10.JPEG"]
    assert np.array_equal(splits.test.numpy(), np.stack([decoded[name] for name in order]))
    grey = splits.test[0]
    assert torch.equal(grey[0], grey[1]) and torch.equal(grey[1], grey[2])
    assert np.array_equal(splits.train[1].numpy(), decoded["train/n02/images/n02_0.JPEG"])


def test_tiny_imagenet_halves_by_2x2_block_averages(tmp_path: Path) -> None:
    _write_tiny_imagenet(tmp_path)
    native = load_dataset("tinyimagenet", root=tmp_path, limit_train=0).test
    halved = load_dataset("tinyimagenet", root=tmp_path, limit_train=0, image_size=32).test
    assert torch.equal(halved, reference_downsample(native, 32))


def test_missing_tiny_imagenet_files_are_one_line_naming_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "tiny-imagenet-200"
    with pytest.raises(DatasetNotFoundError, match=r"val_annotations\.txt") as caught:
        load_dataset("tinyimagenet", root=tmp_path, limit_train=0)
    assert_one_line_naming(caught.value, folder)
    assert "tiny-imagenet-200.zip" in str(caught.value)
    _write_tiny_imagenet(tmp_path)
    (folder / "val" / "images" / "val_2.JPEG").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"val_2\.JPEG") as caught:
        load_dataset("tinyimagenet", root=tmp_path, limit_train=0)
    assert_one_line_naming(caught.value, folder)


def test_a_tiny_imagenet_image_of_another_size_is_reported_by_name(tmp_path: Path) -> None:
    _write_tiny_imagenet(tmp_path)
    bad = tmp_path / "tiny-imagenet-200" / "val" / "images" / "val_2.JPEG"
    Image.fromarray(np.zeros((32, 48, 3), np.uint8)).save(bad, format="JPEG")
    with pytest.raises(CorruptDatasetError, match="64×64") as caught:
        load_dataset("tinyimagenet", root=tmp_path, limit_train=0)
    assert_one_line_naming(caught.value, bad)
