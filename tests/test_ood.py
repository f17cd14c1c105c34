"""Out-of-distribution detection: the auROC's direction, the compressor's code length, S, the
settings, one run end to end and the table beside the published values (the SVHN and TinyImageNet
loaders: test_ood_datasets.py)."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import imagecodecs
import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner

from repro.cli.ood import ood as ood_command
from repro.config import ConfigError, Experiment, load_params
from repro.datasets import load_dataset
from repro.eval_bpd import measure_bits_per_dim
from repro.layout import ProfileLayout
from repro.models import load_model
from repro.ood.compression import CompressorInputError, code_length_bits_per_dim
from repro.ood.config import OodConfig
from repro.ood.evaluate import IN_DISTRIBUTION, OodSetError, _ood_images, evaluate_ood
from repro.ood.scores import ScoredImages, auroc, compare_sets
from repro.provenance import Hardware, Provenance
from repro.results import OodResult, OodSetScores, metrics_path, write_result
from repro.tables import TABLES, Cell, Status, Table, TableInputs, render
from repro.train import train
from tests.dataset_checks import write_svhn
from tests.profiles import params_with_profile, tiny_profile
from tests.test_setting_ranges import NumericSetting, _bad_values, numeric_settings

REPO = Path(__file__).resolve().parents[1]
PARAMS = load_params(REPO / "params.yaml")
CPU = torch.device("cpu")

# --- auROC and S -----------------------------------------------------------------------------


def test_higher_scores_out_of_distribution_give_an_auroc_near_one() -> None:
    rng = np.random.default_rng(0)
    inside = rng.normal(3.5, 0.1, 500)
    assert auroc(inside + 1.0, inside) > 0.99  # OOD images of higher bpd: detected
    assert auroc(inside - 1.0, inside) < 0.01  # of lower bpd (SVHN under CIFAR10 flows): missed
    assert auroc(inside, inside) == pytest.approx(0.5)


def test_the_auroc_counts_pairs_and_half_the_ties() -> None:
    # Pairs (out, in): 1>0, 1<2, 2>0, 2=2 (½), 3>0, 3>2: 4.5 of 6.
    assert auroc([1, 2, 3], [0, 2]) == pytest.approx(0.75)
    assert auroc([5], [1, 2, 3, 4]) == 1.0 and auroc([0], [1, 2]) == 0.0
    with pytest.raises(ValueError, match="both sets"):
        auroc([], [1.0])


def test_s_is_the_bpd_less_the_code_length_and_can_reverse_the_verdict() -> None:
    inside = ScoredImages(
        bpd=np.array([3.0, 3.2]),
        bpd_per_resolution=np.array([[-2.0, -3.0], [-1.8, -3.0]]),
        code_length=np.array([4.0, 4.1]),
    )
    # Likelier by bpd but far simpler (low L): S = bpd − L finds them out.
    outside = ScoredImages(
        bpd=np.array([2.0, 2.1]),
        bpd_per_resolution=np.array([[-3.0, -3.0], [-2.9, -3.0]]),
        code_length=np.array([1.0, 1.2]),
    )
    np.testing.assert_allclose(outside.s_score, [1.0, 0.9])
    scores = compare_sets("svhn", inside=inside, outside=outside)
    assert (scores.auroc_bpd, scores.auroc_S) == (0.0, 1.0)
    assert scores.auroc_per_resolution == [0.0, 0.5]
    assert (scores.column, scores.num_images, scores.bpd) == ("svhn", 2, pytest.approx(2.05))
    assert scores.code_length == pytest.approx(1.1)


# --- the compressor --------------------------------------------------------------------------


def _gradient() -> torch.Tensor:
    """A fixed 32×32 RGB image: a diagonal ramp, a vertical one and an inverted horizontal one."""
    i = torch.arange(32)
    channels = [
        (i[:, None] * 4 + i[None, :] * 4) % 256,
        i[:, None] * 8 + 0 * i,
        255 - i * 8 + 0 * i,
    ]
    return torch.stack([c.expand(32, 32) for c in channels]).to(torch.uint8)[None]


def test_the_code_length_of_fixed_images_is_pinned() -> None:
    # Bytes of libjxl 0.11.1's lossless codestream at effort 7, whole (header included).
    checkerboard = ((torch.arange(32)[:, None] + torch.arange(32)) % 2 * 255).to(torch.uint8)
    constant = torch.zeros(1, 3, 32, 32, dtype=torch.uint8)
    images = {"gradient": (_gradient(), 108), "checkerboard": (checkerboard[None, None], 42)}
    images["constant"] = (constant, 18)  # little besides the header
    for name, (image, size) in images.items():
        expected = size * 8 / image[0].numel()
        assert code_length_bits_per_dim(image).tolist() == [expected], name


def test_the_code_is_lossless_and_per_image() -> None:
    noise = torch.randint(0, 256, (2, 3, 16, 16), generator=torch.Generator().manual_seed(0))
    images = torch.cat([_gradient()[:, :, :16, :16], noise.to(torch.uint8)])
    lengths = code_length_bits_per_dim(images)
    assert lengths[0] < 2 < 8 < lengths[1]  # a ramp compresses, noise cannot
    one = code_length_bits_per_dim(images[1:2])
    assert torch.equal(one, lengths[1:2])  # the batch does not matter
    for image in images:
        stream = imagecodecs.jpegxl_encode(image.permute(1, 2, 0).numpy(), lossless=True, effort=7)
        assert np.array_equal(imagecodecs.jpegxl_decode(stream), image.permute(1, 2, 0).numpy())


@pytest.mark.parametrize(
    "images",
    [torch.zeros(1, 2, 8, 8, dtype=torch.uint8), torch.zeros(1, 3, 8, 8), torch.zeros(3, 8, 8)],
    ids=["two-channels", "float", "three-dims"],
)
def test_the_compressor_refuses_what_it_cannot_take_in_one_line(images: torch.Tensor) -> None:
    with pytest.raises(CompressorInputError, match="1 or 3 channels") as caught:
        code_length_bits_per_dim(images)
    assert "\n" not in str(caught.value)


# --- settings --------------------------------------------------------------------------------


def test_the_profiles_resolve_their_sets() -> None:
    assert PARAMS.ood("paper").datasets == ["svhn", "tinyimagenet"]
    smoke = PARAMS.ood("smoke")
    assert smoke.datasets == ["inverted", "noise"]
    assert smoke.compressor == PARAMS.ood("paper").compressor
    assert PARAMS.tolerances["auroc_absolute"] == 0.05


def _ood_with(tmp_path: Path, **values: object) -> OodConfig:
    raw = copy.deepcopy(PARAMS.raw)
    raw["profiles"]["smoke"]["ood"] = {**raw["profiles"]["smoke"]["ood"], **values}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return load_params(path).ood("smoke")


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({"datasets": ["cifar100"]}, "unknown set 'cifar100'"),
        ({"datasets": ["svhn", "inverted"]}, "two sets for svhn's columns"),
        ({"datasets": []}, "names no set"),
        ({"dequantization": "none"}, "'ood.dequantization' must be one of"),
        ({"sizes": 3}, "unknown key 'ood.sizes'"),
    ],
)
def test_bad_settings_are_one_line_naming_the_key(
    tmp_path: Path, values: dict[str, object], words: str
) -> None:
    with pytest.raises(ConfigError, match=words) as caught:
        _ood_with(tmp_path, **values)
    assert "\n" not in str(caught.value)


OOD_NUMBERS = list(numeric_settings(OodConfig, "ood."))


def test_every_numeric_ood_setting_declares_a_range() -> None:
    keys = {setting.key for setting in OOD_NUMBERS}
    assert keys == {"ood.num_images", "ood.batch_size", "ood.seed", "ood.compressor.effort"}
    assert all(setting.interval is not None for setting in OOD_NUMBERS)


@pytest.mark.parametrize("setting", OOD_NUMBERS, ids=[s.key for s in OOD_NUMBERS])
def test_an_ood_number_outside_its_range_is_refused_naming_the_key(
    tmp_path: Path, setting: NumericSetting
) -> None:
    *parents, name = setting.key.split(".")[1:]
    for value, words in _bad_values(setting):  # NaN, ±inf and just outside each bound
        nested: dict[str, object] = {name: value}
        for parent in reversed(parents):
            nested = {parent: nested}
        with pytest.raises(ConfigError) as caught:
            _ood_with(tmp_path, **nested)
        message = str(caught.value)
        assert f"'{setting.key}'" in message and words in message and "\n" not in message


# --- one run, end to end ---------------------------------------------------------------------


@pytest.fixture
def trained(tmp_path: Path, runs: Path) -> tuple[Experiment, OodConfig, ProfileLayout]:
    profile = tiny_profile(
        limit_train=64, limit_test=24, max_iterations=2, checkpoint_every_iterations=2
    )
    profile["all"]["evaluation"]["checkpoint"] = "last"
    profile["ood"] = {"datasets": ["inverted", "noise"], "batch_size": 16}
    path = tmp_path / "params.yaml"
    path.write_text(params_with_profile("tiny", profile))
    params = load_params(path)
    experiment = params.experiment("cifar10-2res-small", profile="tiny")
    layout = ProfileLayout("tiny")
    train(experiment, run_dir=layout.run(experiment.id).root, device=CPU)
    return experiment, params.ood("tiny"), layout


def test_a_run_writes_its_result_scores_and_histograms(trained, tmp_path: Path) -> None:
    experiment, ood, layout = trained
    run, figure = layout.run(experiment.id), tmp_path / "tables" / "ood.png"
    result = evaluate_ood(experiment, ood, run_dir=run.root, histogram=figure, device=CPU)
    assert OodResult.read(run.ood) == result and figure.stat().st_size > 0
    assert [entry.name for entry in result.sets] == ["inverted", "noise"]
    with np.load(run.ood_scores) as stored:
        scores = {key: stored[key] for key in stored.files}
    assert scores[f"{IN_DISTRIBUTION}/bpd"].shape == (24,)
    assert scores["noise/bpd_per_resolution"].shape == (24, 2)
    # The per-image pass is the one bpd evaluation uses: same noise, probes and batches.
    model = load_model(run, experiment, device=CPU).model
    inside = load_dataset("mnist", image_size=8, limit_train=0, limit_test=24).test
    mean = measure_bits_per_dim(
        model, inside, dequantization="uniform", batch_size=16, seed=ood.seed, device=CPU
    )
    assert result.bpd == pytest.approx(mean.bpd, rel=1e-12)
    assert scores["noise/code_length"].mean() == pytest.approx(result.sets[1].code_length)
    s_in = scores[f"{IN_DISTRIBUTION}/bpd"] - scores[f"{IN_DISTRIBUTION}/code_length"]
    s_out = scores["inverted/bpd"] - scores["inverted/code_length"]
    assert result.sets[0].auroc_S == pytest.approx(auroc(s_out, s_in))
    metrics = json.loads(metrics_path(run.ood).read_text())
    assert set(metrics) == {"bpd"} | {
        f"{m}_{c}" for m in OodResult.METRICS for c in ("svhn", "tinyimagenet")
    }


def test_a_set_of_other_channels_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_svhn(tmp_path / "svhn", "test_32x32.mat", 2, seed=0)
    monkeypatch.setenv("MRCNF_DATA_ROOT", str(tmp_path))
    grey = torch.zeros(2, 1, 16, 16, dtype=torch.uint8)
    with pytest.raises(OodSetError, match=r"3×16×16 images, the model takes 1×16×16") as caught:
        _ood_images("svhn", inside=grey, limit=None, seed=0)
    assert "\n" not in str(caught.value)
    noise = _ood_images("noise", inside=grey, limit=None, seed=0)
    assert torch.equal(noise, _ood_images("noise", inside=grey, limit=None, seed=0))
    assert torch.equal(_ood_images("inverted", inside=grey, limit=None, seed=0), 255 - grey)


# --- the table -------------------------------------------------------------------------------


def _write_ood(runs: Path, experiment: str, **sets: tuple[float, float]) -> Path:
    """An ``ood.json`` of the paper profile with the (auROC bpd, auROC S) of each set."""
    provenance = Provenance(
        profile="paper",
        git_commit="0123456789abcdef",
        params_hash="fedcba9876543210",
        hardware=Hardware(device="NVIDIA H200", torch="2.14.1"),
        date="2025-01-01T00:00:00+00:00",
    )
    entries = [
        OodSetScores(
            column=name,
            name=name,
            description=name,
            num_images=100,
            auroc_bpd=by_bpd,
            auroc_S=by_s,
            auroc_per_resolution=[by_bpd, 0.5],
            bpd=2.2,
            code_length=4.0,
        )
        for name, (by_bpd, by_s) in sets.items()
    ]
    result = OodResult(
        experiment=experiment, profile="paper", dataset="cifar10", num_images=100, bpd=3.4,
        code_length=5.0, bpd_per_resolution=[-2.0, -2.6], sets=entries,
        codec={"imagecodecs": "2025.3.30", "libjxl": "0.11.1"}, checkpoint="best",
        checkpoint_iteration=1000, provenance=provenance,
        settings={"ood": dataclasses.asdict(PARAMS.ood("paper"))},
    )  # fmt: skip
    path = runs / "paper" / experiment / "ood.json"
    write_result(path, result)
    return path


def _cells(table: Table, row: str) -> dict[str, Cell]:
    (match,) = [r for r in table.rows if r.labels == (row,)]
    return {column.key: cell for column, cell in zip(table.columns, match.cells, strict=True)}


def test_the_table_sets_ours_beside_the_published_auroc(published, runs: Path) -> None:
    _write_ood(runs, "cifar10-2res-small", svhn=(0.08, 0.45))
    built = TABLES["ood"](TableInputs.from_params(PARAMS, profile="paper", published=published))
    two = _cells(built, "2-res MRCNF")
    assert two["svhn.bpd"].status is Status.REPRODUCED  # 0.08 against 0.06
    assert two["svhn.bpd"].difference == pytest.approx(0.02)
    assert two["svhn.S"].status is Status.DIFFERS  # 0.45 against 0.25
    assert two["tinyimagenet.bpd"].status is Status.NOT_RUN  # no such set in the file
    assert _cells(built, "3-res MRCNF")["svhn.S"].status is Status.NOT_RUN
    assert {cell.status for cell in _cells(built, "Glow").values()} == {Status.REFERENCE}
    text = render(built, "markdown")
    assert "mean bpd 3.40 in, 2.20 out" in text and "'−bpd'" in text


def test_an_impossible_auroc_is_invalid_never_compared(published, runs: Path) -> None:
    path = _write_ood(runs, "cifar10-1res", svhn=(1.3, float("nan")))
    built = TABLES["ood"](TableInputs.from_params(PARAMS, profile="paper", published=published))
    one = _cells(built, "1-res CNF")
    assert one["svhn.bpd"].status is Status.INVALID and one["svhn.S"].status is Status.INVALID
    notes = " ".join(built.footnotes)
    assert f"invalid: {path}" in notes and "auroc_bpd is 1.3 (an auROC lies in [0, 1])" in notes


def test_the_command_reports_a_missing_checkpoint_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MRCNF_RUNS", str(tmp_path))
    arguments = ["cifar10-2res-small", "--profile", "smoke", "--params", str(REPO / "params.yaml")]
    result = CliRunner().invoke(ood_command, arguments)
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "cifar10-2res-small" in lines[0], result.output
    assert not (tmp_path / "smoke" / "cifar10-2res-small" / "ood.json").exists()
