"""What the tables are built from: the published data, the result files and the configuration."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from repro.config import load_params
from repro.errors import ReproError
from repro.layout import ProfileLayout
from repro.param_counts import Configuration, configurations
from repro.provenance import Provenance
from repro.published import PUBLISHED_DIR, PublishedDataError, load_published
from repro.results import (
    BpdResult,
    FidResult,
    ParamCount,
    ParamCounts,
    Result,
    TrainSummary,
    write_result,
)
from repro.tables import Results, ResultsError, TableInputs, build_table5
from tests.conftest import RESULT_FIXTURES

PARAMS = load_params(Path(__file__).resolve().parents[1] / "params.yaml")


# Published data --------------------------------------------------------------------------------


def test_published_data_loads_with_printed_precision(published):
    assert [g.name for g in published.table5.groups][-1].startswith("Multi-resolution")
    assert len(published.table6.rows) == 9
    assert published.table6.rows[2].params.text == "1.10"
    assert published.table6.rows[2].params.decimals == 2
    assert published.table7.temperatures == (1.0, 0.9, 0.8, 0.7, 0.6, 0.5)
    assert all(len(row.fid) == 6 for row in published.table7.rows)
    (ffjord,) = [r for g in published.table5.groups for r in g.rows if r.model == "FFJORD"]
    assert ffjord.cells["imagenet64"].bpd == "x"
    assert ffjord.cells["imagenet32"].hours == ">5days"
    assert ffjord.cells["imagenet32"].mark == "‡"
    assert published.table5.imagenet128[-1].cells["imagenet128"].params.text == "2.74"


def test_published_files_keep_the_provenance_header():
    for path in sorted(PUBLISHED_DIR.glob("*.yaml")):
        head = path.read_text(encoding="utf-8")[:600]
        assert head.startswith("# Published numbers of"), path
        assert "Provenance: transcribed by hand" in head, path


@pytest.mark.parametrize(
    ("file", "old", "new", "message"),
    [
        (
            "table7.yaml",
            "[89.55, 106.21, 171.53, 261.64, 370.38, 435.17]",
            "[89.55, 106.21, 171.53, 261.64, 370.38]",
            "table7.yaml: rows[1].fid has 5 values, expected 6 (one per temperature)",
        ),
        (
            "table5.yaml",
            "{model: PixelRNN, cifar10: {bpd: 3.00}",
            "{model: PixelRNN, cifar10: {bpd: failed}",
            "table5.yaml: groups[0].rows[0].cifar10.bpd is 'failed', expected a number or \"x\"",
        ),
        (
            "table6.yaml",
            "{resolutions: 1, channels: 64, blocks: 2, params: 0.16}",
            "{resolutions: 1, channels: 64, blocks: 2}",
            "table6.yaml: rows[0].params is missing",
        ),
        (
            "table5.yaml",
            'hours: 40.39, mark: "§"',
            'hours: 40.39, mark: "%"',
            "table5.yaml: groups[2].rows[2].imagenet32.mark is '%', not one of the marks",
        ),
    ],
)
def test_published_schema_violation_names_file_and_key_path(tmp_path, file, old, new, message):
    for path in PUBLISHED_DIR.glob("*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    text = (tmp_path / file).read_text(encoding="utf-8")
    assert text.count(old) == 1
    (tmp_path / file).write_text(text.replace(old, new), encoding="utf-8")
    with pytest.raises(PublishedDataError) as caught:
        load_published(tmp_path)
    error = str(caught.value)
    assert "\n" not in error
    assert error.startswith(str(tmp_path / file))
    assert message in error


def test_published_data_errors_are_repro_errors(tmp_path):
    assert issubclass(PublishedDataError, ReproError)
    for path in PUBLISHED_DIR.glob("*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    table5 = tmp_path / "table5.yaml"
    text = table5.read_text(encoding="utf-8")
    # Column headers print each dataset's registered display name, so the key must be registered.
    table5.write_text(text.replace("imagenet64", "imagenet65", 1), encoding="utf-8")
    with pytest.raises(PublishedDataError, match="not a registered dataset"):
        load_published(tmp_path)


# Result files ----------------------------------------------------------------------------------

_KINDS: dict[str, type[Result]] = {
    "train_summary.json": TrainSummary,
    "eval_bpd.json": BpdResult,
    "param_counts.json": ParamCounts,
}


def test_fixtures_of_older_formats_still_read():
    files = sorted(RESULT_FIXTURES.rglob("*.json"))
    assert len(files) == 15
    for path in files:
        kind = FidResult if path.parent.name == "fid" else _KINDS[path.name]
        assert kind.read(path).provenance.hardware.torch == "2.14.1"


def test_results_read_through_the_layout(runs):
    results = Results(ProfileLayout("paper"))
    bpd = results.bpd("cifar10-2res-small")
    assert (
        bpd.value == 3.68 and bpd.source == runs / "paper" / "cifar10-2res-small" / "eval_bpd.json"
    )
    assert isinstance(bpd.provenance, Provenance)
    # A file of an older format: the last checkpoint, solved as torchdiffeq ends by default.
    assert bpd.extras == {
        "bpd_bin_centre": 3.66,
        "num_images": 10_000,
        "nfe_mean": 412.5,
        "checkpoint": "last",
        "solver_end": "interpolated",
    }
    hours = results.train_hours("imagenet128-4res")
    assert (hours.value, hours.extras["stopped_by"]) == (58.59, "time_budget")
    fid = results.fid("cifar10-2res-small", 0.9)
    assert (fid.value, fid.source.name, fid.extras["num_samples"]) == (130.0, "T0.9.json", 50_000)
    count = results.param_count(resolutions=4, blocks=8, width=64)
    assert count.value == 2_741_088 and isinstance(count.value, int)
    # A missing file, or a configuration not counted, is "not run".
    assert results.bpd("cifar10-1res") is None
    assert results.fid("cifar10-2res-small", 0.5) is None
    assert results.param_count(resolutions=9, blocks=9, width=64) is None


def test_each_file_is_read_once(runs):
    results = Results(ProfileLayout("paper"))
    first = results.bpd("cifar10-2res-small")
    (runs / "paper" / "cifar10-2res-small" / "eval_bpd.json").unlink()
    assert results.bpd("cifar10-2res-small") == first
    assert results.param_count(resolutions=1, blocks=2, width=64) is not None
    (runs / "paper" / "param_counts.json").unlink()
    assert results.param_count(resolutions=1, blocks=4, width=64).value == 316_536


def _rewrite(path: Path, **changes) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    for key, value in changes.items():
        *parents, last = key.split(".")
        node = data
        for parent in parents:
            node = node[parent]
        node[last] = value
    path.write_text(json.dumps(data), encoding="utf-8")


def test_a_file_of_another_experiment_temperature_or_profile_is_an_error(runs):
    run = runs / "paper" / "cifar10-3res-small"
    shutil.copy(runs / "paper" / "cifar10-2res-small" / "eval_bpd.json", run / "eval_bpd.json")
    shutil.copy(run / "fid" / "T1.0.json", run / "fid" / "T0.8.json")
    _rewrite(runs / "paper" / "imagenet128-4res" / "eval_bpd.json", **{"provenance.profile": "x"})
    results = Results(ProfileLayout("paper"))
    with pytest.raises(ResultsError, match="experiment is 'cifar10-2res-small', expected 'cif"):
        results.bpd("cifar10-3res-small")
    with pytest.raises(ResultsError, match=r"T0\.8\.json: temperature is 1\.0, expected 0\.8"):
        results.fid("cifar10-3res-small", 0.8)
    with pytest.raises(ResultsError, match=r"provenance\.profile is 'x', expected 'paper'"):
        results.bpd("imagenet128-4res")


def test_param_counts_fill_tables_only_from_rgb_rows_listed_once(runs):
    path = runs / "paper" / "param_counts.json"
    counts = ParamCounts.read(path)
    grey = ParamCount(resolutions=1, blocks=2, width=64, channels=1, params=52_000)
    write_result(path, dataclasses.replace(counts, rows=[grey, *counts.rows]))
    assert Results(ProfileLayout("paper")).param_count(resolutions=1, blocks=2, width=64).value == (
        158_268
    )
    write_result(path, dataclasses.replace(counts, rows=[*counts.rows, counts.rows[0]]))
    with pytest.raises(
        ResultsError, match=r"param_counts\.json: rows list resolutions=1, blocks=2,"
    ):
        Results(ProfileLayout("paper")).param_count(resolutions=1, blocks=2, width=64)


def test_results_from_another_profile_are_rejected(published, runs):
    shutil.rmtree(runs / "paper")
    shutil.copytree(RESULT_FIXTURES / "smoke", runs / "paper")
    with pytest.raises(ResultsError, match="profile is 'smoke', expected 'paper'"):
        build_table5(TableInputs.from_params(PARAMS, profile="paper", published=published))


def test_malformed_results_file_is_a_one_line_error(published, runs):
    broken = runs / "paper" / "cifar10-2res-small" / "eval_bpd.json"
    broken.write_text('{"bpd": 3.6', encoding="utf-8")
    with pytest.raises(ResultsError) as caught:
        build_table5(TableInputs.from_params(PARAMS, profile="paper", published=published))
    assert str(caught.value).startswith(str(broken)) and "\n" not in str(caught.value)


# Configuration ---------------------------------------------------------------------------------


def test_param_count_configurations_are_table6_rows_and_table5_experiment_sizes(published):
    found = configurations(published, PARAMS.paper_experiments())
    table6 = [Configuration(r.resolutions, r.blocks, r.channels) for r in published.table6.rows]
    assert found[: len(table6)] == table6
    assert len(found) == len(set(found)) == 14
    for size in ((1, 14, 64), (4, 8, 64), (3, 40, 64), (1, 20, 64), (2, 12, 64), (3, 30, 64)):
        assert size in found
    filling = [e.model for e in PARAMS.paper_experiments().values() if e.paper.table5 is not None]
    assert set(found) == {*table6, *((m.resolutions, m.blocks, m.width) for m in filling)}


def test_inputs_from_params_pin_the_paper_architectures(published):
    smoke = TableInputs.from_params(PARAMS, profile="smoke", published=published)
    assert (smoke.profile, smoke.comparable) == ("smoke", False)
    assert smoke.layout.tables == Path("tables") / "smoke"
    assert list(smoke.experiments) == PARAMS.experiment_ids
    # Sizes are the paper's whatever the smoke profile shrinks its models to.
    model = smoke.experiments["cifar10-2res-small"].model
    assert (model.resolutions, model.blocks, model.width) == (2, 8, 64)
    assert PARAMS.experiment("cifar10-2res-small", profile="smoke").model.blocks != 8
    assert smoke.table7 == PARAMS.table7 and smoke.tolerances == PARAMS.tolerances
    assert TableInputs.from_params(PARAMS, profile="paper", published=published).comparable
