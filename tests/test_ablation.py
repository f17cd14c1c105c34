"""The transform ablation: its arms pinned in params.yaml, its table beside the published rows, and
the arms with and without multi-resolution noise compared where both ran."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from repro.config import load_params
from repro.layout import ProfileLayout
from repro.published import load_published
from repro.tables import TableInputs, build_ablation
from repro.tables.model import Status, Table

REPO = Path(__file__).resolve().parents[1]
PARAMS = load_params(REPO / "params.yaml")
WITH_NOISE, WITHOUT_NOISE = "cifar10-2res-small", "cifar10-2res-small-plain-noise"


def _inputs(profile: str = "paper") -> TableInputs:
    return TableInputs.from_params(PARAMS, profile=profile)


def _cell(table: Table, row: str, column: str):
    keys = [c.key for c in table.columns]
    (match,) = [r for r in table.rows if table.row_name(r) == row]
    return match.cells[keys.index(column)]


def test_every_published_ablation_cell_has_exactly_one_arm() -> None:
    published = load_published().extras.ablation_transform
    cells = {
        (spec.paper.ablation.model, spec.paper.ablation.dataset): spec
        for spec in PARAMS.paper_experiments().values()
        if spec.paper.ablation is not None
    }
    assert set(cells) == {(row.model, d) for row in published for d in ("cifar10", "imagenet64")}
    for (model, _), spec in cells.items():
        assert spec.model.transform == ("haar" if "Haar" in model else "unimodular")
        noise = "standard" if "w/o" in model else "multiresolution"
        assert spec.model.latent_noise == noise


def test_an_arm_differs_from_its_table5_twin_only_in_the_noise() -> None:
    twin, arm = (PARAMS.experiment(e, profile="paper") for e in (WITH_NOISE, WITHOUT_NOISE))
    assert arm.training.seed == twin.training.seed
    assert arm.model.blocks == twin.model.blocks and arm.data == twin.data
    assert arm.training.time_budget_hours == 19.79  # the ablation row's published hours


@pytest.fixture
def runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The paper fixtures, with the with-noise arm's bpd result copied to its twin (+0.0003)."""
    root = tmp_path / "runs"
    shutil.copytree(REPO / "tests" / "fixtures" / "results", root)
    monkeypatch.setenv("MRCNF_RUNS", str(root))
    layout = ProfileLayout("paper")
    source = layout.run(WITH_NOISE).eval_bpd
    result = json.loads(source.read_text())
    result["experiment"], result["bpd"] = WITHOUT_NOISE, result["bpd"] + 0.0003
    target = layout.run(WITHOUT_NOISE).eval_bpd
    target.parent.mkdir(parents=True)
    target.write_text(json.dumps(result))
    return root


@pytest.mark.usefixtures("runs")
def test_the_table_shows_both_arms_and_how_far_apart_they_are() -> None:
    table = build_ablation(_inputs())
    with_noise = _cell(table, "2-res MRCNF, w/ multi-res noise", "cifar10.bpd")
    without = _cell(table, "2-res MRCNF, w/o multi-res noise", "cifar10.bpd")
    assert (with_noise.producer, without.producer) == (WITH_NOISE, WITHOUT_NOISE)
    assert with_noise.status is not Status.NOT_RUN and without.status is not Status.NOT_RUN
    assert without.reproduced == pytest.approx(with_noise.reproduced + 0.0003)
    (note,) = [n for n in table.footnotes if n.startswith("Multi-resolution noise is")]
    assert "2-res MRCNF, CIFAR10 bpd: 0.0003" in note and "run-to-run variation" in note
    haar = _cell(table, "2-res Haar, w/ multi-res noise", "imagenet64.bpd")
    assert haar.status is Status.NOT_RUN and haar.published == "x"
