"""The FID calibration: test images shuffled in k×k patches, their FID against the training split
(the FID growing as k shrinks), ``repro fid`` agreeing with the FID stage, the bpd of shuffled
images, and the calibration table and figure from result files."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from repro import eval_fid
from repro.calibration import evaluate_calibration
from repro.cli.fid import fid_images
from repro.config import CalibrationConfig, ConfigError, Params, load_params
from repro.datasets import load_dataset
from repro.eval_bpd import evaluate_run
from repro.fid import ensure_inception_weights
from repro.layout import ProfileLayout
from repro.outputs import OutputError
from repro.provenance import Hardware, Provenance
from repro.results import (
    CalibrationResult,
    FidExtractor,
    FidReference,
    ShuffledBpd,
    ShuffledBpdResult,
    ShuffledFid,
    metrics_path,
    write_result,
)
from repro.shuffle import PatchSizeError, image_seeds, shuffle_patches
from repro.shuffled_bpd import evaluate_shuffled_bpd
from repro.shuffled_plot import plot_shuffled_bpd
from repro.tables import TABLES, Status, TableInputs, compare_all, render
from repro.train import train
from tests.profiles import TINY_IMAGE_SIZE, params_with_profile, tiny_profile

REPO = Path(__file__).resolve().parents[1]
PARAMS = load_params(REPO / "params.yaml")
CPU = torch.device("cpu")
# The tiny profile's FID reference (tests/profiles.py): the first 32 training images at 8×8.
REFERENCE_IMAGES = 32


def _images(count: int, *, channels: int = 3, size: int = 8, seed: int = 0) -> torch.Tensor:
    shape = (count, channels, size, size)
    return torch.randint(0, 256, shape, generator=torch.Generator().manual_seed(seed)).byte()


def _blocks(image: torch.Tensor, patch: int) -> list[bytes]:
    """The image's patch×patch blocks (all channels), as a sorted multiset."""
    channels, height, width = image.shape
    blocks = image.reshape(channels, height // patch, patch, width // patch, patch)
    blocks = blocks.permute(1, 3, 0, 2, 4).reshape(-1, channels, patch, patch)
    return sorted(block.numpy().tobytes() for block in blocks)


# Shuffling ------------------------------------------------------------------------------------


@pytest.mark.parametrize("patch", [1, 2, 4])
def test_shuffling_permutes_whole_patches_and_changes_the_image(patch: int) -> None:
    images = _images(3)
    shuffled = shuffle_patches(images, patch=patch, seeds=[5, 6, 7])
    assert shuffled.dtype == torch.uint8 and shuffled.shape == images.shape
    for before, after in zip(images, shuffled, strict=True):
        assert not torch.equal(before, after)
        # Patches (with their channels) are moved whole: the same blocks, elsewhere.
        assert _blocks(before, patch) == _blocks(after, patch)


def test_each_image_has_its_own_permutation_from_its_own_seed() -> None:
    image = _images(1)
    twice = image.repeat(2, 1, 1, 1)
    different = shuffle_patches(twice, patch=1, seeds=[0, 1])
    assert not torch.equal(different[0], different[1])
    same = shuffle_patches(twice, patch=1, seeds=[3, 3])
    assert torch.equal(same[0], same[1])


def test_an_image_is_shuffled_the_same_whatever_its_batch() -> None:
    images = _images(4)
    seeds = image_seeds(10, 4)
    whole = shuffle_patches(images, patch=2, seeds=seeds)
    alone = shuffle_patches(images[2:3], patch=2, seeds=seeds[2:3])
    assert torch.equal(whole[2:3], alone)
    assert torch.equal(whole, shuffle_patches(images, patch=2, seeds=seeds))


def test_a_patch_the_size_of_the_image_leaves_it_unchanged() -> None:
    images = _images(3, channels=1, size=16)
    assert torch.equal(shuffle_patches(images, patch=16, seeds=[0, 1, 2]), images)


def test_a_patch_that_does_not_tile_the_image_is_one_line() -> None:
    with pytest.raises(PatchSizeError, match=r"patch size 3 does not tile 8×8 .* 1, 2, 4, 8$") as e:
        shuffle_patches(_images(2), patch=3, seeds=[0, 1])
    assert "\n" not in str(e.value)


# Settings -------------------------------------------------------------------------------------


def test_the_paper_and_smoke_calibrations_resolve() -> None:
    paper = PARAMS.calibration("paper")
    assert (paper.dataset, paper.patches, paper.test_images) == (
        "cifar10",
        [1, 2, 4, 8, 16, 32],
        None,
    )
    smoke = PARAMS.calibration("smoke")
    assert (smoke.dataset, smoke.image_size, smoke.patches[-1]) == ("mnist", 16, 16)


def _with(change) -> Params:
    raw = copy.deepcopy(PARAMS.raw)
    change(raw)
    return Params(path=Path("params.yaml"), raw=raw)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda r: r["calibration"].update(patches=[1, 3]),
            r"'calibration.patches\[1\]' is 3, which does not divide the 32×32 images",
        ),
        (lambda r: r["calibration"].update(patches=[2, 2]), "patches lists a size twice"),
        (lambda r: r["calibration"].update(pathces=[1]), "unknown key 'calibration.pathces'"),
        (lambda r: r["calibration"].update(dataset="cifar11"), "unknown dataset 'cifar11'"),
        (lambda r: r["profiles"].update(paper={"calibration": 3}), "calibration must be a mapping"),
    ],
)
def test_a_bad_calibration_setting_is_one_line_naming_it(change, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as error:
        _with(change).calibration("paper")
    assert "\n" not in str(error.value)


# FID of shuffled images, on real MNIST and Inception ------------------------------------------


@pytest.fixture(scope="module")
def weights():
    return ensure_inception_weights()


@pytest.mark.slow
def test_the_fid_grows_as_the_patches_shrink(
    weights, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MRCNF_RUNS", str(tmp_path))
    settings = CalibrationConfig(
        dataset="mnist",
        image_size=TINY_IMAGE_SIZE,
        patches=[1, 2, TINY_IMAGE_SIZE],
        test_images=24,
        reference_images=REFERENCE_IMAGES,
        seed=0,
        batch_size=24,
    )
    result = evaluate_calibration(settings, profile="smoke", device=CPU)
    fids = [entry.fid for entry in result.patches]
    assert fids[0] > fids[1] > fids[2] > 0, fids
    assert result.extractor.weights_verified == weights.verified
    assert (result.test_images, result.reference.count) == (24, REFERENCE_IMAGES)
    path = ProfileLayout("smoke").calibration
    assert CalibrationResult.read(path) == result
    assert set(json.loads(metrics_path(path).read_text())) == {
        f"{name}_k{k}" for k in settings.patches for name in ("fid", "kid_mean", "kid_std")
    }
    # A result of fewer images is refused before anything is computed.
    fewer = dataclasses.replace(settings, test_images=12)
    with pytest.raises(OutputError, match=r"test_images 12 \(it has 24\).*--overwrite"):
        evaluate_calibration(fewer, profile="smoke", device=CPU)


@pytest.mark.slow
def test_repro_fid_agrees_with_the_fid_stage(weights, tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(params_with_profile("tiny", _tiny()))
    experiment = load_params(params).experiment("cifar10-2res-small", profile="tiny")
    images = load_dataset("mnist", image_size=TINY_IMAGE_SIZE, limit_train=0, limit_test=16).test
    # What the FID stage computes for these images as samples of the experiment.
    _, reference = eval_fid._reference(experiment, device=CPU)
    stage = eval_fid._metrics([images], weights=weights, reference=reference, device=CPU)
    npz, out = tmp_path / "samples.npz", tmp_path / "fid.json"
    np.savez(npz, images=images.numpy(), seeds=np.arange(16))
    reference_images = str(experiment.fid.reference_images)
    args = [str(npz), "--reference", "mnist:train", "--reference-images", reference_images]
    result = CliRunner().invoke(fid_images, [*args, "--out", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    written = json.loads(out.read_text())
    for key in ("fid", "kid_mean", "kid_std"):
        assert written[key] == pytest.approx(stage[key], rel=1e-6, abs=1e-9), key
    assert written["reference"] == {"dataset": "mnist", "split": "train", "count": 32}
    assert written["image_shape"] == [16, 1, TINY_IMAGE_SIZE, TINY_IMAGE_SIZE]


def _tiny() -> dict:
    return tiny_profile(
        limit_train=64,
        limit_test=8,
        max_iterations=2,
        checkpoint_every_iterations=100,
        fid={"num_samples": 8, "reference_images": REFERENCE_IMAGES, "batch_size": 8},
    )


def _invoke_fid(path: Path, *extra: str) -> list[str]:
    result = CliRunner().invoke(fid_images, [str(path), "--reference", "mnist:train", *extra])
    assert result.exit_code == 1, result.output
    return [line for line in result.output.splitlines() if line.strip()]


@pytest.mark.parametrize(
    ("images", "extra", "expected"),
    [
        (None, (), "not found; give an .npz file or a folder of .png images"),
        (np.zeros((4, 8, 8), np.float32), (), "images are float32, need uint8"),
        (np.zeros((4, 5, 8, 8), np.uint8), (), "need N×C×H×W or N×H×W×C with C = 1 or 3"),
        (np.zeros((1, 1, 8, 8), np.uint8), (), "1 image; FID needs at least 2"),
        (np.zeros((4, 1, 8, 8), np.uint8), ("--reference", "mnist:val"), "is not DATASET:SPLIT"),
        (np.zeros((4, 1, 8, 8), np.uint8), ("--reference", "mnistt:train"), "unknown dataset"),
    ],
)
def test_repro_fid_refuses_unusable_input_in_one_line(
    images: np.ndarray | None, extra: tuple[str, ...], expected: str, tmp_path: Path
) -> None:
    path = tmp_path / "images.npz"
    if images is not None:
        np.savez(path, images=images)
    (line,) = _invoke_fid(path, *extra)
    assert expected in line


def test_repro_fid_refuses_an_empty_folder_and_an_npz_without_images(tmp_path: Path) -> None:
    (line,) = _invoke_fid(tmp_path)
    assert "no .png images in this folder" in line
    np.savez(tmp_path / "other.npz", pixels=np.zeros((4, 1, 8, 8), np.uint8))
    (line,) = _invoke_fid(tmp_path / "other.npz")
    assert "no 'images' array (it holds: pixels)" in line


# Bits per dimension of shuffled images ----------------------------------------------------------


@pytest.mark.slow
def test_the_unshuffled_bpd_is_the_evaluations_bpd(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(params_with_profile("tiny", _tiny()))
    loaded = load_params(params).experiment("cifar10-1res", profile="tiny")
    experiment = dataclasses.replace(
        loaded, evaluation=dataclasses.replace(loaded.evaluation, checkpoint="last")
    )
    run = tmp_path / "run"
    train(experiment, run_dir=run, device=CPU)
    calibration = dataclasses.replace(PARAMS.calibration("smoke"), patches=[1, 3, 4, 8])
    result = evaluate_shuffled_bpd(experiment, calibration, run_dir=run, device=CPU)
    assert [entry.patch for entry in result.patches] == [1, 4, 8]  # 3 does not tile 8×8
    assert ShuffledBpdResult.read(run / "shuffled_bpd.json") == result
    unshuffled = result.patches[-1]
    assert unshuffled.bpd == evaluate_run(experiment, run_dir=run, device=CPU).bpd
    assert result.patches[0].bpd != unshuffled.bpd


# The table and the figure, from result files ----------------------------------------------------


def _provenance(profile: str) -> Provenance:
    return Provenance(
        profile=profile,
        git_commit="0" * 40,
        params_hash="0" * 16,
        hardware=Hardware(device="NVIDIA H200", torch="2.14.1"),
        date="2026-01-01T00:00:00+00:00",
    )


def _calibration(profile: str, fids: dict[int, float], *, side: int, verified: bool = True):
    return CalibrationResult(
        profile=profile,
        dataset="cifar10" if side == 32 else "mnist",
        image_size=side,
        test_images=10_000,
        seed=0,
        patches=[ShuffledFid(patch=k, fid=f, kid_mean=0.1, kid_std=0.01) for k, f in fids.items()],
        reference=FidReference(dataset="cifar10", split="train", count=50_000),
        extractor=FidExtractor(
            name="torch-fidelity",
            weights_sha256="a" * 64,
            weights_origin="test",
            weights_verified=verified,
        ),
        provenance=_provenance(profile),
        settings={},
    )


def _inputs(profile: str) -> TableInputs:
    return TableInputs.from_params(PARAMS, profile=profile)


def _statuses(profile: str) -> dict[str, Status]:
    table = TABLES["calibration"](_inputs(profile))
    return {row.labels[0]: row.cells[0].status for row in table.rows}


def test_the_table_compares_each_k_with_the_paper(runs: Path) -> None:
    fids = {1: 345.0, 2: 200.0, 8: math.nan, 16: -5.0, 32: 3.2}  # 4×4: not computed
    write_result(ProfileLayout("paper").calibration, _calibration("paper", fids, side=32))
    assert _statuses("paper") == {
        "1x1": Status.REPRODUCED,
        "2x2": Status.DIFFERS,
        "4x4": Status.NOT_RUN,
        "8x8": Status.INVALID,
        "16x16": Status.INVALID,
        "32x32 (unshuffled test set)": Status.REPRODUCED,
    }
    markdown = render(TABLES["calibration"](_inputs("paper")), "markdown")
    assert "345.00 (+4.58, +1.3%) reproduced; KID 0.1000 (sd 0.0100)" in markdown
    assert "fid is nan (not a finite number)" in markdown and "k=16: fid is -5" in markdown
    summary = compare_all(_inputs("paper"))
    assert any(ref.table == "calibration" for ref in summary.differing)


def test_unverified_weights_are_shown_never_compared(runs: Path) -> None:
    result = _calibration("paper", {1: 340.0}, side=32, verified=False)
    write_result(ProfileLayout("paper").calibration, result)
    assert _statuses("paper")["1x1"] is Status.UNVERIFIED


def test_a_smoke_calibration_is_not_comparable_and_has_no_32_pixel_patches(runs: Path) -> None:
    fids = {1: 300.0, 2: 260.0, 4: 180.0, 8: 140.0, 16: 50.0}
    write_result(ProfileLayout("smoke").calibration, _calibration("smoke", fids, side=16))
    statuses = _statuses("smoke")
    assert statuses.pop("32x32 (unshuffled test set)") is Status.REFERENCE
    assert set(statuses.values()) == {Status.NOT_COMPARABLE}
    table = TABLES["calibration"](_inputs("smoke"))
    assert "not comparable" in table.title
    assert any(
        "MNIST test images at 16×16 (k = 16: unshuffled; a larger" in n for n in table.footnotes
    )


def test_the_figure_draws_the_shuffled_bpd_of_each_table7_model(runs: Path) -> None:
    entries = [ShuffledBpd(patch=k, bpd=4.0 - 0.1 * k, bpd_standard_error=0.01,
                           bpd_per_resolution=[-4.0]) for k in (1, 2, 4)]  # fmt: skip
    result = ShuffledBpdResult(
        experiment="cifar10-2res-small", profile="paper", num_images=10_000, seed=0,
        patches=entries, checkpoint="best", checkpoint_iteration=1, provenance=_provenance("paper"),
        settings={},
    )  # fmt: skip
    layout = ProfileLayout("paper")
    write_result(layout.run("cifar10-2res-small").shuffled_bpd, result)
    inputs = _inputs("paper")
    assert inputs.results.shuffled_bpd("cifar10-2res-small", 2).value == pytest.approx(3.8)
    assert inputs.results.shuffled_bpd("cifar10-2res-small", 8) is None
    out = runs / "figure.png"
    assert plot_shuffled_bpd(inputs, patches=[1, 2, 4, 8], out=out) == out
    assert out.read_bytes().startswith(b"\x89PNG")
