"""FID and KID of any images against any registered dataset split (``repro fid``), and the
reference statistics of a split that the calibration shares.

Images come from an ``.npz`` file (key ``images``, as ``repro sample`` writes) or a folder of PNG
files; the reference is a split's first N images, brought to an image size by the data loader's
own block averaging, with its Inception statistics cached as the FID stages' are.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from repro.datasets import DatasetSettingError, dataset_spec, load_dataset
from repro.errors import ReproError
from repro.fid import (
    InceptionWeights,
    ReferenceStatistics,
    ensure_inception_weights,
    extract_features,
    feature_statistics,
    fid_from_statistics,
    kid,
    reference_statistics,
)
from repro.fid.weights import EXTRACTOR_NAME
from repro.provenance import Provenance
from repro.results import FidExtractor, FidReference, Result
from repro.runtime import provenance

SPLITS = ("train", "test")
NPZ_KEY = "images"
# Images read as they are: grey (L) and RGB; anything else is converted by the user, knowingly.
_PNG_CHANNELS = {"L": 1, "RGB": 3}


class ImagesError(ReproError):
    """Images that cannot be compared: missing, empty, or of the wrong shape or type."""


@dataclass(frozen=True)
class Distances:
    """FID and KID (mean and its standard deviation over subsets) of images to a reference."""

    fid: float
    kid_mean: float
    kid_std: float


@dataclass(frozen=True)
class ImagesFidResult(Result):
    """FID and KID of any images (``images``: an ``.npz`` or a PNG folder; ``images_sha256``:
    their uint8 N×C×H×W bytes) against a dataset split (``repro fid --out``)."""

    METRICS: ClassVar[tuple[str, ...]] = ("fid", "kid_mean", "kid_std")
    images: str
    images_sha256: str
    image_shape: list[int]
    fid: float
    kid_mean: float
    kid_std: float
    reference: FidReference
    reference_image_size: int
    extractor: FidExtractor
    provenance: Provenance


def parse_reference(text: str) -> tuple[str, str]:
    """``"cifar10:train"`` -> ``("cifar10", "train")``, both checked.

    Raises:
        ImagesError: Not ``DATASET:SPLIT``, or a split other than train and test.
        UnknownDatasetError: The dataset is not registered.
    """
    dataset, colon, split = text.partition(":")
    if not colon or split not in SPLITS:
        raise ImagesError(
            f"reference {text!r} is not DATASET:SPLIT with SPLIT one of {', '.join(SPLITS)} "
            "(e.g. cifar10:train)"
        )
    dataset_spec(dataset)
    return dataset, split


def split_reference(
    dataset: str,
    split: str,
    *,
    image_size: int | None,
    count: int | None,
    weights: InceptionWeights,
    device: torch.device,
    batch_size: int,
) -> ReferenceStatistics:
    """The (cached) Inception statistics of a split's first ``count`` images at ``image_size``.

    Args:
        dataset: A registered dataset.
        split: ``train`` or ``test``.
        image_size: Side the images are block-averaged to, as the data loader does (None:
            native).
        count: The first this many images (None: the whole split).
        weights: The Inception weights.
        device: Where Inception runs.
        batch_size: Images per Inception pass.

    Raises:
        DatasetSettingError: ``image_size`` is not the native side over a power of two.
        DatasetNotFoundError: The dataset is absent and could not be fetched.
    """
    limits = {"limit_train": 0, "limit_test": 0, f"limit_{split}": count}
    images = getattr(load_dataset(dataset, image_size=image_size, **limits), split)
    return reference_statistics(
        images, dataset=dataset, split=split, weights=weights, device=device, batch_size=batch_size
    )


def distances(
    images: torch.Tensor,
    reference: ReferenceStatistics,
    *,
    weights: InceptionWeights,
    device: torch.device,
    batch_size: int,
) -> Distances:
    """FID and KID of ``images`` (uint8 N×C×H×W, N ≥ 2) to the reference, as the FID stages
    compute them (torch-fidelity's arithmetic on its Inception features)."""
    features = extract_features(images, weights=weights, batch_size=batch_size, device=device)
    fid = fid_from_statistics(*feature_statistics(features), reference.mu, reference.sigma)
    kid_mean, kid_std = kid(features, reference.features)
    return Distances(fid=fid, kid_mean=kid_mean, kid_std=kid_std)


def extractor_record(weights: InceptionWeights) -> FidExtractor:
    """What a result records of the feature extractor and its weights' verification."""
    return FidExtractor(
        name=f"torch-fidelity {EXTRACTOR_NAME}",
        weights_sha256=weights.sha256,
        weights_origin=weights.origin,
        weights_verified=weights.verified,
    )


def read_images(path: Path) -> torch.Tensor:
    """Images from an ``.npz`` file (key ``images``) or a folder of ``.png`` files (sorted by
    name), as uint8 N×C×H×W.

    An array may be N×C×H×W or N×H×W×C (C = 1 or 3; N×C×H×W where both fit) or N×H×W (grey);
    PNG files must be grey (L) or RGB, all of one size and mode.

    Raises:
        ImagesError: ``path`` is missing or neither; no images, fewer than 2, or not uint8
            images of a shape above.
    """
    if path.is_dir():
        array = _png_folder(path)
    elif path.is_file() and path.suffix.lower() == ".npz":
        array = _npz(path)
    elif path.exists():
        raise ImagesError(f"{path}: not an .npz file or a folder of .png images")
    else:
        raise ImagesError(f"{path}: not found; give an .npz file or a folder of .png images")
    if array.dtype != np.uint8:
        raise ImagesError(
            f"{path}: images are {array.dtype}, need uint8 pixels 0-255 (from [0, 1]: "
            "(x * 255).round().astype('uint8'))"
        )
    return torch.from_numpy(np.ascontiguousarray(_channels_first(array, path)))


def _npz(path: Path) -> np.ndarray:
    try:
        with np.load(path, allow_pickle=False) as archive:
            if NPZ_KEY not in archive.files:
                keys = ", ".join(archive.files) or "none"
                raise ImagesError(f"{path}: no '{NPZ_KEY}' array (it holds: {keys})")
            return archive[NPZ_KEY]
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise ImagesError(f"{path}: not a readable .npz file ({error})") from None


def _png_folder(folder: Path) -> np.ndarray:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png" and p.is_file())
    if not files:
        raise ImagesError(f"{folder}: no .png images in this folder")
    arrays = []
    for file in files:
        try:
            with Image.open(file) as image:
                if image.mode not in _PNG_CHANNELS:
                    raise ImagesError(
                        f"{file}: PNG mode {image.mode}; convert the images to grey (L) or RGB"
                    )
                arrays.append(np.asarray(image))
        except (OSError, UnidentifiedImageError) as error:
            raise ImagesError(f"{file}: not a readable PNG image ({error})") from None
        if arrays[-1].shape != arrays[0].shape:
            raise ImagesError(
                f"{file}: {arrays[-1].shape} pixels, but {files[0].name} has "
                f"{arrays[0].shape}: give images of one size and mode"
            )
    return np.stack(arrays)


def _channels_first(array: np.ndarray, path: Path) -> np.ndarray:
    """N×C×H×W from N×C×H×W, N×H×W×C or N×H×W, with at least 2 images."""
    if array.ndim == 3:
        array = array[:, None]
    elif array.ndim == 4 and array.shape[1] not in (1, 3) and array.shape[3] in (1, 3):
        array = array.transpose(0, 3, 1, 2)
    if array.ndim != 4 or array.shape[1] not in (1, 3):
        raise ImagesError(
            f"{path}: images of shape {array.shape}; need N×C×H×W or N×H×W×C with C = 1 or 3, "
            "or N×H×W"
        )
    if len(array) < 2:
        raise ImagesError(f"{path}: {len(array)} image; FID needs at least 2")
    return array


def compare_images(
    path: Path,
    *,
    dataset: str,
    split: str,
    reference_images: int | None,
    image_size: int | None,
    batch_size: int,
    device: torch.device,
) -> ImagesFidResult:
    """FID and KID of the images at ``path`` against a dataset split's first images.

    Args:
        path: An ``.npz`` file or a folder of PNG images (see :func:`read_images`).
        dataset: A registered dataset.
        split: ``train`` or ``test``.
        reference_images: The split's first this many images (None: all of it).
        image_size: The reference images' side (None: the images' own, if square).
        batch_size: Images per Inception pass.
        device: Where Inception runs.

    Raises:
        ImagesError: Unusable images, or an image size the dataset cannot be brought to.
        InceptionWeightsError: Missing or mismatched Inception weights.
        DatasetNotFoundError: The dataset is absent and could not be fetched.
    """
    images = read_images(path)
    height, width = images.shape[-2:]
    if image_size is None and height != width:
        raise ImagesError(f"{path}: images are {height}×{width}; pass --image-size")
    size = image_size or height
    weights = ensure_inception_weights()
    try:
        statistics = split_reference(
            dataset, split, image_size=size, count=reference_images, weights=weights,
            device=device, batch_size=batch_size,
        )  # fmt: skip
    except DatasetSettingError as error:
        if image_size is not None:
            raise
        raise ImagesError(f"{error}; the images are {height}×{width}: pass --image-size") from None
    measured = distances(images, statistics, weights=weights, device=device, batch_size=batch_size)
    reference = FidReference(dataset=dataset, split=split, count=statistics.count)
    settings = {"reference": asdict(reference), "image_size": size}
    return ImagesFidResult(
        images=str(path),
        images_sha256=hashlib.sha256(images.numpy().tobytes()).hexdigest(),
        image_shape=list(images.shape),
        **asdict(measured),
        reference=reference,
        reference_image_size=size,
        extractor=extractor_record(weights),
        provenance=provenance(profile="none", params_hash=settings_hash(settings), device=device),
    )


def settings_hash(settings: dict[str, object]) -> str:
    """A short hash of the settings a number was computed with, for provenance."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
