"""The output paths: dvc.yaml spells those of repro.layout, and each path is defined once."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from repro.layout import TABLE_IDS, ProfileLayout, table_stem
from repro.results import metrics_path
from repro.stage_settings import EXPERIMENT_STAGES
from repro.tables import TABLES

REPO = Path(__file__).resolve().parents[1]
STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
# What DVC substitutes, for one experiment.
VALUES = {"${profile}": "smoke", "${key}": "cifar10-1res"}


def _declared(stage: str, section: str) -> set[Path]:
    body = STAGES[stage].get("do", STAGES[stage])
    paths = set()
    for entry in body.get(section, []):
        text = next(iter(entry)) if isinstance(entry, dict) else entry
        for variable, value in VALUES.items():
            text = text.replace(variable, value)
        paths.add(Path(text))
    return paths


@pytest.fixture
def layout(monkeypatch: pytest.MonkeyPatch) -> ProfileLayout:
    monkeypatch.setenv("MRCNF_RUNS", "runs")  # relative, as dvc.yaml spells it
    return ProfileLayout("smoke")


def test_dvc_stages_write_the_layouts_paths(layout: ProfileLayout) -> None:
    run = layout.run("cifar10-1res")
    expected = {
        ("resolve", "outs"): {layout.settings},
        ("params", "outs"): {layout.param_counts},
        ("params", "metrics"): {metrics_path(layout.param_counts)},
        ("train", "outs"): {run.checkpoints, run.train_summary},
        ("train", "metrics"): {metrics_path(run.train_summary)},
        ("train", "plots"): {run.train_metrics},
        ("eval_bpd", "outs"): {run.eval_bpd},
        ("eval_bpd", "metrics"): {metrics_path(run.eval_bpd)},
        ("fid", "outs"): {run.fid_results},
        ("fid", "metrics"): {run.fid_metrics},
        ("fid_plot", "plots"): {layout.fid_plot},
        ("calibration", "outs"): {layout.calibration},
        ("calibration", "metrics"): {metrics_path(layout.calibration)},
        ("shuffled_bpd", "outs"): {run.shuffled_bpd},
        ("shuffled_bpd", "metrics"): {metrics_path(run.shuffled_bpd)},
        ("shuffled_bpd_plot", "plots"): {layout.shuffled_bpd_plot},
        ("ood", "outs"): {run.ood, run.ood_scores},
        ("ood", "metrics"): {metrics_path(run.ood)},
        ("ood", "plots"): {layout.ood_histogram("cifar10-1res")},
    }
    for (stage, section), paths in expected.items():
        assert _declared(stage, section) == paths, (stage, section)
    tables = {layout.tables / f"${{item}}.{suffix}" for suffix in ("md", "tex", "csv")}
    assert _declared("table", "outs") == tables


def test_the_table_stages_build_every_table_into_its_file() -> None:
    assert STAGES["table"]["foreach"] == {table_id: table_stem(table_id) for table_id in TABLE_IDS}
    assert tuple(TABLES) == TABLE_IDS


def test_stages_that_read_a_run_depend_on_its_checkpoints(layout: ProfileLayout) -> None:
    checkpoints = layout.run("cifar10-1res").checkpoints
    assert checkpoints in _declared("eval_bpd", "deps")
    assert checkpoints in _declared("fid", "deps")
    assert checkpoints in _declared("shuffled_bpd", "deps")
    assert checkpoints in _declared("ood", "deps")


@pytest.mark.parametrize(
    ("stage", "progressive"), [("train", "train_progressive"), ("eval_bpd", "eval_bpd_progressive")]
)
def test_progressive_stages_are_their_counterparts_for_the_progressive_section(
    stage: str, progressive: str
) -> None:
    body, other = STAGES[stage], STAGES[progressive]
    assert other["foreach"] == "${progressive_experiments}"
    parent = "runs/${profile}/${item.training.init_from}/checkpoints"
    extra = [parent] if stage == "train" else []
    assert other["do"]["deps"] == extra + body["do"]["deps"]
    for section in ("cmd", "params", "outs", "metrics", "plots"):
        assert other["do"].get(section) == body["do"].get(section), section


def test_each_stage_depends_on_its_resolved_settings_not_on_params_yaml(
    layout: ProfileLayout,
) -> None:
    readers = {stage: stage for stage in EXPERIMENT_STAGES}
    readers |= {"train_progressive": "train", "eval_bpd_progressive": "eval_bpd"}
    for stage, settings in readers.items():
        assert layout.stage_settings("cifar10-1res", settings) in _declared(stage, "deps"), stage
        assert "params" not in STAGES[stage]["do"], stage
    assert layout.stage_settings(None, "calibration") in _declared("calibration", "deps")
    assert "params" not in STAGES["calibration"]
