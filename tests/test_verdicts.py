"""Uncertainty beside every comparison: FID over seed sets, standard errors in the tables and
the verdicts they leave unresolved."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import statistics
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from rich.console import Console

from repro import eval_fid
from repro.config import load_params
from repro.fid import feature_statistics, fid_from_statistics
from repro.layout import ProfileLayout
from repro.results import BpdResult, FidResult, write_result
from repro.tables import (
    TABLES,
    Status,
    Table,
    TableInputs,
    compare_all,
    render,
    render_summary,
)

PARAMS = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
TOLERANCES = {"bpd": 0.05, "fid_relative": 0.10, "hours_relative": 0.25, "auroc_absolute": 0.05}
RUNS = ("cifar10-1res", "cifar10-2res-small", "cifar10-3res-small")
EXPERIMENTS = {run: PARAMS.experiment(run, profile="paper") for run in RUNS}
ROW5, ROW7 = "2-resolution MRCNF (small)", "2-resolution MRCNF"


@pytest.fixture
def runs(runs: Path) -> Path:
    """The paper profile's folder of the copied result fixtures (written before standard errors)."""
    return runs / "paper"


def _inputs(published) -> TableInputs:
    return TableInputs(
        experiments=EXPERIMENTS,
        table7=PARAMS.table7,
        layout=ProfileLayout("paper"),
        comparable=True,
        tolerances=TOLERANCES,
        published=published,
    )


def _build(number: int, published) -> Table:
    return TABLES[str(number)](_inputs(published))


def _cell(table: Table, row: str, column: str):
    keys = [c.key for c in table.columns]
    (match,) = [r for r in table.rows if table.row_name(r) == row]
    return match.cells[keys.index(column)]


def _set_bpd(runs: Path, bpd: float, standard_error: float) -> None:
    path = runs / "cifar10-2res-small" / "eval_bpd.json"
    result = BpdResult.read(path)
    write_result(path, dataclasses.replace(result, bpd=bpd, bpd_standard_error=standard_error))


def _set_fid(runs: Path, fids: list[float], spread: float) -> None:
    path = runs / "cifar10-2res-small" / "fid" / "T0.9.json"
    result = FidResult.read(path)
    changed = dataclasses.replace(result, fid=fids[0], fid_seed_sets=fids, fid_spread=spread)
    write_result(path, changed)


# Published CIFAR10 bpd of the 2-resolution MRCNF (small): 3.65, tolerance 0.05.
@pytest.mark.parametrize(
    ("bpd", "standard_error", "status", "unresolved"),
    [
        (3.66, 0.001, Status.REPRODUCED, False),  # well inside the tolerance
        (3.695, 0.004, Status.REPRODUCED, True),  # just inside, within 2 SE of its edge
        (3.705, 0.004, Status.DIFFERS, True),  # just outside, within 2 SE of its edge
        (3.90, 0.004, Status.DIFFERS, False),  # far outside
    ],
)
def test_bpd_verdict_and_whether_its_standard_error_can_decide_it(
    published, runs, bpd, standard_error, status, unresolved
):
    _set_bpd(runs, bpd, standard_error)
    cell = _cell(_build(5, published), ROW5, "cifar10.bpd")
    assert (cell.status, cell.unresolved) == (status, unresolved)
    assert cell.standard_error == standard_error


def test_markdown_shows_the_standard_error_and_marks_an_unresolved_verdict(published, runs):
    _set_bpd(runs, 3.705, 0.004)
    table = _build(5, published)
    markdown = render(table, "markdown")
    assert "3.705 ± 0.004 (+0.055) differs†" in markdown
    (note,) = [note for note in table.footnotes if note.startswith("±")]
    assert "mean over the test images" in note and "marked †" in note
    assert "2 standard errors of the tolerance" in note
    (record,) = [
        r
        for r in csv.DictReader(io.StringIO(render(table, "csv")))
        if r["row"] == ROW5 and r["column"] == "CIFAR10 bpd"
    ]
    assert (record["standard_error"], record["unresolved"]) == ("0.004", "True")


def test_fid_spread_over_seed_sets_is_its_standard_error(published, runs):
    # Published 106.21, tolerance 10%: 115.0 is 8.79 above, 1.83 inside the edge (< 2 × 2.0).
    _set_fid(runs, [115.0, 118.0, 114.0], 2.0)
    table = _build(7, published)
    cell = _cell(table, ROW7, "T0.90")
    assert (cell.status, cell.unresolved, cell.standard_error) == (Status.REPRODUCED, True, 2.0)
    markdown = render(table, "markdown")
    assert "115.00 ± 2.00 (+8.79, +8.3%) reproduced†; KID 0.0812 (sd 0.0021)" in markdown
    assert "3 sets on disjoint seeds" in markdown
    records = list(csv.DictReader(io.StringIO(render(table, "csv"))))
    (record,) = [r for r in records if r["row"] == ROW7 and r["column"] == "FID T=0.9"]
    assert (record["kid_mean"], record["kid_std"], record["seed_sets"]) == ("0.0812", "0.0021", "3")
    (fid,) = [
        c
        for c in json.loads(render(table, "json"))["cells"]
        if c["row"] == ROW7 and c["column"] == "FID T=0.9"
    ]
    assert fid["standard_error"] == 2.0 and fid["unresolved"] is True
    assert fid["extras"]["kid_std"] == 0.0021


def test_old_result_files_read_and_render_without_standard_errors(published, runs):
    old = BpdResult.read(runs / "cifar10-2res-small" / "eval_bpd.json")
    assert old.bpd_standard_error is None and old.bpd_bin_centre_standard_error is None
    assert "bpd_standard_error" not in json.loads(
        (runs / "cifar10-2res-small" / "eval_bpd.json").read_text()
    )
    fid = FidResult.read(runs / "cifar10-2res-small" / "fid" / "T0.9.json")
    assert fid.fid_spread is None and fid.fid_seed_sets is None
    for number in TABLES:
        table = _build(number, published)
        assert not any(c.unresolved or c.standard_error for r in table.rows for c in r.cells)
        markdown = render(table, "markdown")
        assert "±" not in markdown and "†" not in markdown
    # The bpd cell keeps its verdict from the tolerance alone.
    assert _cell(_build(5, published), ROW5, "cifar10.bpd").status is Status.REPRODUCED


def test_summary_counts_unresolved_verdicts_apart(published, runs):
    _set_bpd(runs, 3.705, 0.004)
    summary = compare_all(_inputs(published))
    # The run is Table 5's cell and the ablation's MRCNF arm with multi-resolution noise.
    (ref,) = [ref for ref in summary.unresolved if ref.table == "5"]
    assert (ref.table, ref.row, ref.column) == ("5", ROW5, "CIFAR10 bpd")
    assert ref in summary.differing  # counted under its status too
    out = io.StringIO()
    Console(file=out, width=200).print(render_summary(summary))
    assert "unresolved †" in out.getvalue() and "differs†" in out.getvalue()


def test_metrics_files_carry_the_uncertainties(runs):
    path = runs / "cifar10-2res-small" / "eval_bpd.json"
    _set_bpd(runs, 3.68, 0.004)
    metrics = json.loads(path.with_name("eval_bpd.metrics.json").read_text())
    assert metrics["bpd_standard_error"] == 0.004
    _set_fid(runs, [115.0, 118.0], 2.1)
    metrics = json.loads((runs / "cifar10-2res-small" / "fid" / "T0.9.metrics.json").read_text())
    assert metrics["fid_spread"] == 2.1


# FID over seed sets ----------------------------------------------------------------------------


class _FakeFid:
    """Stand-ins for sampling and Inception: an image is its seed, its features drawn from it."""

    def __init__(self) -> None:
        self.sampled: list[int] = []
        self.saved: list[int] = []
        self.weights = SimpleNamespace(sha256="0" * 64, origin="test", verified=True)
        rng = np.random.default_rng(0)
        self.reference = SimpleNamespace(
            mu=np.zeros(4), sigma=np.eye(4), features=rng.normal(size=(50, 4)), count=50
        )

    def sample_run(self, layout, experiment, *, seeds, **options) -> tuple[torch.Tensor, int]:
        """The images, and the training iteration of the checkpoint that drew them."""
        self.sampled = list(seeds)
        return torch.tensor(seeds)[:, None], 0

    @staticmethod
    def extract_features(images: torch.Tensor, **options) -> torch.Tensor:
        rows = [torch.randn(4, generator=torch.Generator().manual_seed(int(s))) for s in images]
        return torch.stack(rows).double()

    def fid_of(self, seeds: range) -> float:
        features = self.extract_features(torch.tensor(list(seeds))[:, None])
        return fid_from_statistics(
            *feature_statistics(features), self.reference.mu, self.reference.sigma
        )


@pytest.fixture
def fake_fid(monkeypatch) -> _FakeFid:
    fake = _FakeFid()
    monkeypatch.setattr(eval_fid, "_reference", lambda *a, **k: (fake.weights, fake.reference))
    monkeypatch.setattr(eval_fid, "sample_run", fake.sample_run)
    monkeypatch.setattr(eval_fid, "extract_features", fake.extract_features)
    monkeypatch.setattr(
        eval_fid, "save_samples", lambda images, *, seeds, stem: fake.saved.extend(seeds)
    )
    return fake


def _fid_with_sets(tmp_path: Path, seed_sets: int) -> FidResult:
    experiment = PARAMS.experiment("cifar10-2res-small", profile="smoke")
    fid = dataclasses.replace(experiment.fid, num_samples=32, seed_sets=seed_sets, seed=7)
    return eval_fid.evaluate_fid(
        dataclasses.replace(experiment, fid=fid),
        run_dir=tmp_path / f"sets{seed_sets}",
        temperature=1.0,
        device=torch.device("cpu"),
    )


def test_fid_seed_sets_are_disjoint_and_the_first_keeps_the_usual_result(tmp_path, fake_fid):
    result = _fid_with_sets(tmp_path, 3)
    assert fake_fid.sampled == list(range(7, 7 + 3 * 32))
    assert fake_fid.saved == list(range(7, 7 + 32))  # only the first set's samples are saved
    expected = [fake_fid.fid_of(range(7 + k * 32, 7 + (k + 1) * 32)) for k in range(3)]
    assert result.fid_seed_sets == pytest.approx(expected, rel=1e-12)
    assert result.fid == result.fid_seed_sets[0]
    assert result.fid_spread == pytest.approx(statistics.stdev(expected), rel=1e-12)
    assert (result.seeds, result.num_samples) == ([7, 39], 32)
    single = _fid_with_sets(tmp_path, 1)
    assert (single.fid, single.kid_mean, single.kid_std) == (
        result.fid,
        result.kid_mean,
        result.kid_std,
    )
    assert single.fid_spread is None and single.fid_seed_sets == [single.fid]
