"""Dataset layer: file formats, errors and the image transforms.

CIFAR10 and ImageNet are tested on small files written here in the real formats.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from repro.datasets import (
    AmbiguousDatasetError,
    CorruptDatasetError,
    DatasetNotFoundError,
    DatasetSettingError,
    downsample,
    load_dataset,
    load_experiment_data,
    random_horizontal_flip,
)
from repro.errors import ReproError
from tests.dataset_checks import assert_one_line_naming, reference_downsample

REPO = Path(__file__).resolve().parents[1]


# --- transforms ------------------------------------------------------------------------------


def test_downsample_averages_2x2_blocks_and_rounds_ties_to_even() -> None:
    images = torch.tensor(
        [[3, 3, 1, 1], [2, 2, 1, 0], [0, 0, 5, 6], [0, 0, 7, 8]], dtype=torch.uint8
    ).view(1, 1, 4, 4)
    # Block means 2.5, 0.75, 0, 6.5.
    expected = torch.tensor([[2, 1], [0, 6]], dtype=torch.uint8).view(1, 1, 2, 2)
    assert torch.equal(downsample(images, 2), expected)


def test_downsample_rounds_once_over_the_whole_block() -> None:
    images = torch.zeros(1, 1, 4, 4, dtype=torch.uint8)
    images[0, 0, :2, :2] = torch.tensor([[3, 3], [2, 2]], dtype=torch.uint8)
    # Exact mean 10/16 rounds to 1; rounding after each halving would give round(2/4) = 0.
    assert downsample(images, 1).item() == 1


def test_downsample_keeps_channels_and_images_apart() -> None:
    images = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8)
    assert torch.equal(downsample(images, 8), reference_downsample(images, 8))
    assert downsample(images, 32) is images


@pytest.mark.parametrize(
    ("images", "size"),
    [
        (torch.zeros(1, 1, 32, 32, dtype=torch.uint8), 24),
        (torch.zeros(1, 1, 32, 32, dtype=torch.uint8), 64),
        (torch.zeros(1, 1, 32, 32, dtype=torch.uint8), 0),
        (torch.zeros(1, 1, 32, 32), 16),
        (torch.zeros(1, 1, 32, 16, dtype=torch.uint8), 8),
    ],
    ids=["not-power-of-two", "upsample", "zero", "float", "not-square"],
)
def test_downsample_rejects_impossible_requests(images: torch.Tensor, size: int) -> None:
    with pytest.raises(ValueError):
        downsample(images, size)


@pytest.mark.parametrize("size", [24, 64, 0, -8])
def test_downsample_size_error_is_a_setting_error_listing_the_sizes(size: int) -> None:
    with pytest.raises(DatasetSettingError, match=r"\(32, 16, 8, 4, 2, 1\)") as caught:
        downsample(torch.zeros(1, 1, 32, 32, dtype=torch.uint8), size)
    assert isinstance(caught.value, ReproError) and "\n" not in str(caught.value)


def test_random_horizontal_flip_mirrors_about_half_deterministically() -> None:
    images = torch.randint(0, 256, (1000, 3, 2, 5), dtype=torch.uint8)
    flipped = random_horizontal_flip(images, generator=torch.Generator().manual_seed(7))
    again = random_horizontal_flip(images, generator=torch.Generator().manual_seed(7))
    other = random_horizontal_flip(images, generator=torch.Generator().manual_seed(8))

    mirrored = (flipped == images.flip(-1)).flatten(1).all(1)
    unchanged = (flipped == images).flatten(1).all(1)
    assert (mirrored | unchanged).all()
    assert 430 < int(mirrored.sum()) < 570
    assert torch.equal(flipped, again)
    assert not torch.equal(flipped, other)


# --- CIFAR10 ---------------------------------------------------------------------------------


def _write_cifar10(root: Path, *, protocol: int) -> tuple[np.ndarray, np.ndarray]:
    """Write 5 train batches of 4 images and a test batch of 3; return the flat pixel rows."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = {name: rng.integers(0, 256, (4, 3072), dtype=np.uint8) for name in range(1, 6)}
    test = rng.integers(0, 256, (3, 3072), dtype=np.uint8)
    for path, data in [(f"data_batch_{i}", rows[i]) for i in rows] + [("test_batch", test)]:
        batch = {b"batch_label": b"x", b"labels": [0] * len(data), b"data": data}
        (folder / path).write_bytes(pickle.dumps(batch, protocol=protocol))
    return np.concatenate(list(rows.values())), test


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_cifar10_round_trips_channel_planar_pixels(tmp_path: Path, protocol: int) -> None:
    train_rows, test_rows = _write_cifar10(tmp_path, protocol=protocol)
    splits = load_dataset("cifar10", root=tmp_path, download=False)

    assert splits.train.shape == (20, 3, 32, 32) and splits.test.shape == (3, 3, 32, 32)
    assert splits.train.dtype == torch.uint8 and splits.train.is_contiguous()
    # Channel-planar: row index c·1024 + y·32 + x holds channel c at (y, x).
    assert splits.train[13, 2, 5, 7] == train_rows[13, 2 * 1024 + 5 * 32 + 7]
    assert np.array_equal(splits.train.reshape(20, -1).numpy(), train_rows)
    assert np.array_equal(splits.test.reshape(3, -1).numpy(), test_rows)


def test_cifar10_limit_spans_batches_before_downsampling(tmp_path: Path) -> None:
    train_rows, _ = _write_cifar10(tmp_path, protocol=2)
    splits = load_dataset("cifar10", root=tmp_path, limit_train=6, limit_test=0, image_size=16)

    first_six = torch.from_numpy(train_rows[:6]).view(6, 3, 32, 32)
    assert torch.equal(splits.train, reference_downsample(first_six, 16))
    assert splits.test.shape == (0, 3, 16, 16)
    with pytest.raises(ValueError):
        load_dataset("cifar10", root=tmp_path, image_size=64)


def test_experiment_data_applies_the_tighter_train_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    train_rows, _ = _write_cifar10(tmp_path, protocol=2)
    monkeypatch.setenv("MRCNF_DATA_ROOT", str(tmp_path))
    data = SimpleNamespace(dataset="cifar10", image_size=8, limit_train=6, limit_test=2)

    splits = load_experiment_data(data, max_train=4)  # type: ignore[arg-type]
    first_four = torch.from_numpy(train_rows[:4]).view(4, 3, 32, 32)
    assert torch.equal(splits.train, reference_downsample(first_four, 8))
    assert splits.test.shape == (2, 3, 8, 8)
    assert load_experiment_data(data, max_train=100).train.shape[0] == 6  # type: ignore[arg-type]
    assert load_experiment_data(data).train.shape[0] == 6  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "content",
    [b"not a pickle", pickle.dumps({b"data": np.zeros((4, 100), np.uint8)}), pickle.dumps(print)],
    ids=["garbage", "wrong-shape", "foreign-global"],
)
def test_cifar10_bad_batch_is_reported_by_name(tmp_path: Path, content: bytes) -> None:
    _write_cifar10(tmp_path, protocol=2)
    bad = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    bad.write_bytes(content)
    with pytest.raises(CorruptDatasetError) as caught:
        load_dataset("cifar10", root=tmp_path, download=False)
    assert_one_line_naming(caught.value, bad)


# --- ImageNet32 / ImageNet64 -----------------------------------------------------------------


def _write_downsampled_imagenet(root: Path, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Write batches 1..10 (batch i holds i images whose pixels all equal i) and 3 val images."""
    folder = root / f"imagenet{size}"
    train_folder = folder / f"Imagenet{size}_train_npz"
    val_folder = folder / f"Imagenet{size}_val_npz"
    train_folder.mkdir(parents=True)
    val_folder.mkdir()
    batches = [np.full((i, 3 * size * size), i, dtype=np.uint8) for i in range(1, 11)]
    for index, data in enumerate(batches, start=1):
        save = np.savez_compressed if index % 2 else np.savez
        save(train_folder / f"train_data_batch_{index}.npz", data=data, labels=np.ones(index))
    val = np.random.default_rng(1).integers(0, 256, (3, 3 * size * size), dtype=np.uint8)
    np.savez(val_folder / "val_data.npz", data=val, labels=np.ones(3))
    return np.concatenate(batches), val


@pytest.mark.parametrize("size", [32, 64])
def test_downsampled_imagenet_reads_batches_in_numeric_order(tmp_path: Path, size: int) -> None:
    train_rows, val_rows = _write_downsampled_imagenet(tmp_path, size)
    splits = load_dataset(f"imagenet{size}", root=tmp_path)

    assert splits.name == f"imagenet{size}"
    assert splits.train.shape == (55, 3, size, size) and splits.test.shape == (3, 3, size, size)
    assert np.array_equal(splits.train.reshape(55, -1).numpy(), train_rows)
    assert splits.train[-1].eq(10).all()  # batch 10 is last, not second
    assert splits.test[2, 1, 3, 4] == val_rows[2, size * size + 3 * size + 4]


@pytest.mark.parametrize("size", [32, 64])
def test_downsampled_imagenet_malformed_array_is_reported_by_name(
    tmp_path: Path, size: int
) -> None:
    _write_downsampled_imagenet(tmp_path, size)
    bad = tmp_path / f"imagenet{size}" / f"Imagenet{size}_val_npz" / "val_data.npz"
    np.savez(bad, data=np.zeros((3, 1000), np.uint8))
    with pytest.raises(CorruptDatasetError, match="N×") as caught:
        load_dataset(f"imagenet{size}", root=tmp_path)
    assert_one_line_naming(caught.value, bad)


def test_downsampled_imagenet_duplicate_file_is_ambiguous(tmp_path: Path) -> None:
    _write_downsampled_imagenet(tmp_path, 32)
    original = next((tmp_path / "imagenet32").rglob("val_data.npz"))
    copy = tmp_path / "imagenet32" / "extra" / "val_data.npz"
    copy.parent.mkdir()
    copy.write_bytes(original.read_bytes())
    with pytest.raises(AmbiguousDatasetError, match="keep one copy") as caught:
        load_dataset("imagenet32", root=tmp_path)
    assert_one_line_naming(caught.value, copy)


def test_downsampled_imagenet_names_the_missing_batch(tmp_path: Path) -> None:
    _write_downsampled_imagenet(tmp_path, 32)
    next((tmp_path / "imagenet32").rglob("train_data_batch_10.npz")).unlink()
    with pytest.raises(DatasetNotFoundError, match=r"train_data_batch_\{10\}\.npz"):
        load_dataset("imagenet32", root=tmp_path)


# --- ImageNet128 -----------------------------------------------------------------------------


def _write_imagenet128(root: Path) -> dict[str, np.ndarray]:
    """Write PNGs of several sizes and modes under train/ and val/; return their pixels."""
    rng = np.random.default_rng(2)
    pictures = {
        "train/n01/a.png": np.full((200, 300, 3), (10, 120, 250), dtype=np.uint8),
        "train/n01/b.PNG": rng.integers(0, 256, (256, 256, 3), dtype=np.uint8),
        "train/n02/c.png": rng.integers(0, 256, (150, 100), dtype=np.uint8),
        "val/d.png": rng.integers(0, 256, (64, 64, 3), dtype=np.uint8),
    }
    for relative, pixels in pictures.items():
        path = root / "imagenet128" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(path)
    return pictures


def test_imagenet128_resizes_whole_images_with_a_box_filter(tmp_path: Path) -> None:
    pictures = _write_imagenet128(tmp_path)
    splits = load_dataset("imagenet128", root=tmp_path)

    assert splits.train.shape == (3, 3, 128, 128) and splits.test.shape == (1, 3, 128, 128)
    assert splits.train.dtype == torch.uint8
    constant, noise, grey = splits.train
    assert torch.equal(
        constant, torch.tensor([10, 120, 250], dtype=torch.uint8).view(3, 1, 1).expand(3, 128, 128)
    )
    # A box filter halving 256→128 is the 2×2 block mean (PIL's fixed point may be off by 1);
    # bilinear or bicubic filters mix neighbouring blocks and miss this by far more.
    source = torch.from_numpy(pictures["train/n01/b.PNG"]).permute(2, 0, 1).unsqueeze(0)
    block_mean = F.avg_pool2d(source.double(), 2)[0]
    assert (noise.double() - block_mean).abs().max() <= 1
    assert torch.equal(grey[0], grey[1]) and torch.equal(grey[1], grey[2])


def test_imagenet128_caches_resized_splits(tmp_path: Path) -> None:
    _write_imagenet128(tmp_path)
    first = load_dataset("imagenet128", root=tmp_path)
    folder = tmp_path / "imagenet128"
    assert (folder / "train_128.npy").is_file() and (folder / "val_128.npy").is_file()

    for image in [*folder.rglob("*.png"), *folder.rglob("*.PNG")]:
        image.unlink()
    cached = load_dataset("imagenet128", root=tmp_path, limit_train=2)
    assert torch.equal(cached.train, first.train[:2])
    assert torch.equal(cached.test, first.test)


def test_imagenet128_limited_pass_leaves_no_cache(tmp_path: Path) -> None:
    _write_imagenet128(tmp_path)
    splits = load_dataset("imagenet128", root=tmp_path, limit_train=1, image_size=32)
    assert splits.train.shape == (1, 3, 32, 32)
    assert not (tmp_path / "imagenet128" / "train_128.npy").exists()


def test_imagenet128_undecodable_image_is_reported_by_name(tmp_path: Path) -> None:
    _write_imagenet128(tmp_path)
    bad = tmp_path / "imagenet128" / "val" / "e.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(CorruptDatasetError) as caught:
        load_dataset("imagenet128", root=tmp_path)
    assert_one_line_naming(caught.value, bad)
