"""The dataset registry: one spec per dataset, its loader, and one-line errors for missing data."""

from __future__ import annotations

import dataclasses
import inspect
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from repro.datasets import (
    DATASETS,
    AmbiguousDatasetError,
    CorruptDatasetError,
    DatasetNotFoundError,
    DatasetSettingError,
    DatasetSpec,
    UnknownDatasetError,
    image_shape,
    load_dataset,
)
from repro.errors import ReproError
from tests.dataset_checks import assert_one_line_naming

REPO = Path(__file__).resolve().parents[1]


def test_unknown_dataset_error_lists_known_names(tmp_path: Path) -> None:
    with pytest.raises(KeyError) as caught:
        load_dataset("cifar100", root=tmp_path)
    message = str(caught.value)
    assert "cifar100" in message
    assert all(name in message for name in DATASETS)
    assert isinstance(caught.value, UnknownDatasetError) and isinstance(caught.value, ReproError)
    assert not message.startswith(("'", '"'))


def test_registry_holds_the_paper_datasets() -> None:
    assert set(DATASETS) == {
        *("mnist", "cifar10", "imagenet32", "imagenet64", "imagenet128"),
        *("svhn", "tinyimagenet"),  # out-of-distribution sets of the CIFAR10 models
    }
    facts = {name: (s.display_name, s.shape, s.train_images) for name, s in DATASETS.items()}
    assert facts == {
        "mnist": ("MNIST", (1, 32, 32), 50_000),
        "cifar10": ("CIFAR10", (3, 32, 32), 50_000),
        "imagenet32": ("ImageNet32", (3, 32, 32), 1_281_167),
        "imagenet64": ("ImageNet64", (3, 64, 64), 1_281_167),
        "imagenet128": ("ImageNet128", (3, 128, 128), 1_281_167),
        "svhn": ("SVHN", (3, 32, 32), 73_257),
        "tinyimagenet": ("TinyImageNet", (3, 64, 64), 100_000),
    }


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_spec_is_sane_and_resolves_to_its_loader(name: str, tmp_path: Path) -> None:
    spec = DATASETS[name]
    channels, height, width = spec.shape
    assert channels in (1, 3) and height == width and height & (height - 1) == 0
    assert spec.display_name and spec.display_name == spec.display_name.strip()
    assert spec.train_images > 0
    assert all(len(digest) == 64 and int(digest, 16) >= 0 for digest in spec.checksums.values())

    loader = spec.loader()
    assert callable(loader)
    keywords = {"root": tmp_path, "download": False, "limit_train": 1, "limit_test": 1}
    inspect.signature(loader).bind(**keywords, **spec.options)  # raises TypeError on a mismatch
    # Called on an empty root, so no real data is read.
    with pytest.raises(DatasetNotFoundError):
        spec.load(**keywords)


def test_spec_is_immutable_and_copies_its_mappings() -> None:
    options = {"size": 32}
    spec = DatasetSpec(
        display_name="Toy",
        shape=(3, 32, 32),
        train_images=1,
        module="repro.datasets.imagenet_npz",
        function="load_downsampled_imagenet",
        options=options,
    )
    options["size"] = 64
    assert spec.options == {"size": 32} and spec.checksums == {}
    with pytest.raises(TypeError):
        spec.options["size"] = 64  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.shape = (1, 8, 8)  # type: ignore[misc]


def test_importing_the_registry_leaves_torch_unloaded() -> None:
    code = (
        "import sys\n"
        "import repro.datasets\n"
        "from repro.datasets import DATASETS\n"
        "assert DATASETS['cifar10'].display_name == 'CIFAR10'\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision'))\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_image_shape_follows_the_spec_and_image_size() -> None:
    def data(dataset: str, image_size: int | None) -> SimpleNamespace:
        return SimpleNamespace(dataset=dataset, image_size=image_size, limit_train=None)

    assert image_shape(data("mnist", None)) == (1, 32, 32)
    assert image_shape(data("imagenet64", 16)) == (3, 16, 16)
    assert image_shape(data("tinyimagenet", 32)) == (3, 32, 32)
    with pytest.raises(UnknownDatasetError, match="cifar100"):
        image_shape(data("cifar100", None))


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_missing_dataset_raises_one_line_error_naming_the_root(name: str, tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as caught:
        load_dataset(name, root=tmp_path, download=False)
    assert isinstance(caught.value, FileNotFoundError)
    assert_one_line_naming(caught.value, tmp_path)


def test_negative_limit_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="limit_train") as caught:
        load_dataset("cifar10", root=tmp_path, limit_train=-1)
    assert isinstance(caught.value, DatasetSettingError) and isinstance(caught.value, ReproError)


def test_impossible_image_size_is_rejected_before_any_file_is_read(tmp_path: Path) -> None:
    # The root is empty: a check after loading would report the missing data instead.
    with pytest.raises(DatasetSettingError, match="image size 24"):
        load_dataset("imagenet64", root=tmp_path, image_size=24, download=False)


def test_dataset_errors_are_repro_errors_and_builtin_errors() -> None:
    assert issubclass(DatasetNotFoundError, ReproError)
    assert issubclass(DatasetNotFoundError, FileNotFoundError)
    for error in (CorruptDatasetError, DatasetSettingError, AmbiguousDatasetError):
        assert issubclass(error, ReproError) and issubclass(error, ValueError)
    assert issubclass(UnknownDatasetError, ReproError)
