"""Published data, table building, comparison statuses and rendering, from fixture metrics."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console
from rich.table import Table as RichTable

from repro.config import Table5Cell, load_params
from repro.errors import ReproError
from repro.layout import ProfileLayout, table_stem
from repro.published import PublishedDataError
from repro.tables import (
    FORMATS,
    TABLES,
    ResultsError,
    Status,
    Table,
    TableConfigError,
    TableInputs,
    compare_all,
    render,
    render_summary,
    write_tables,
)
from repro.tables.render import STATUS_STYLES

FIXTURES = Path(__file__).parent / "fixtures" / "results"
PARAMS = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
TOLERANCES = {"bpd": 0.05, "fid_relative": 0.10, "hours_relative": 0.25, "auroc_absolute": 0.05}
# The experiments of params.yaml the fixtures hold results of, and three that are not run
# (cifar10-1res, imagenet32-1res, and imagenet64-3res-small: imagenet128-4res's parent, so its
# hours are not run either), at the paper profile as TableInputs.from_params pins them.
RUNS = (
    "cifar10-2res-small",
    "cifar10-3res-small",
    "cifar10-1res",
    "imagenet32-1res",
    "imagenet64-2res-big",
    "imagenet64-3res-small",
    "imagenet128-4res",
)
EXPERIMENTS = {run: PARAMS.experiment(run, profile="paper") for run in RUNS}


@pytest.fixture(autouse=True)
def fixture_runs(monkeypatch):
    """Results are read from the fixtures: ``runs/<profile>`` is ``FIXTURES/<profile>``."""
    monkeypatch.setenv("MRCNF_RUNS", str(FIXTURES))


def inputs(published, *, profile="paper", experiments=EXPERIMENTS, table7=None, tolerances=None):
    return TableInputs(
        experiments=experiments,
        table7=PARAMS.table7 if table7 is None else table7,
        layout=ProfileLayout(profile),
        comparable=PARAMS.comparable(profile),
        tolerances=TOLERANCES if tolerances is None else tolerances,
        published=published,
    )


def build(number: int, published, **options):
    return TABLES[str(number)](inputs(published, **options))


def cell(table: Table, row: str, column: str):
    """Find a cell by row name and column key."""
    keys = [c.key for c in table.columns]
    (match,) = [r for r in table.rows if table.row_name(r) == row]
    return match.cells[keys.index(column)]


# Statuses --------------------------------------------------------------------------------------


def test_table5_within_and_outside_tolerance(published):
    table = build(5, published)
    row = "2-resolution MRCNF (small)"
    bpd = cell(table, row, "cifar10.bpd")
    assert bpd.status is Status.REPRODUCED
    assert bpd.difference == pytest.approx(0.03)
    assert bpd.provenance.hardware.device == "NVIDIA H200"
    assert bpd.source.name == "eval_bpd.json"
    hours = cell(table, row, "cifar10.hours")
    assert hours.status is Status.DIFFERS
    assert hours.difference == pytest.approx(30.0 - 19.79)
    differs = cell(table, "3-resolution MRCNF (small)", "cifar10.bpd")
    assert differs.status is Status.DIFFERS
    assert differs.difference == pytest.approx(3.90 - 3.79)


def test_table5_params_compare_at_printed_precision(published):
    table = build(5, published)
    params = cell(table, "2-resolution MRCNF (small)", "cifar10.params")
    assert params.reproduced == 1_335_744
    assert params.compared == pytest.approx(1.3)
    assert params.status is Status.REPRODUCED
    imagenet128 = cell(table, "4-resolution MRCNF", "imagenet128.params")
    assert (imagenet128.compared, imagenet128.status) == (pytest.approx(2.74), Status.REPRODUCED)


def test_missing_results_are_not_run_and_baselines_are_references(published):
    table = build(5, published)
    assert cell(table, "3-resolution MRCNF (small)", "cifar10.hours").status is Status.NOT_RUN
    assert cell(table, "RNODE (re-implemented)", "imagenet32.bpd").status is Status.NOT_RUN
    glow = [cell(table, "Glow", f"cifar10.{m}") for m in ("bpd", "params", "hours")]
    assert {c.status for c in glow} == {Status.REFERENCE}
    assert not next(r for r in table.rows if r.labels == ("Glow",)).attempted


def test_published_x_is_published_failing(published):
    table = build(5, published)
    for metric, value in (("bpd", 3.70), ("hours", 50.0)):
        failing = cell(table, "2-resolution MRCNF (big)", f"imagenet64.{metric}")
        assert (failing.status, failing.reproduced, failing.difference) == (
            Status.PUBLISHED_FAILING,
            value,
            None,
        )
    assert cell(table, "2-resolution MRCNF (big)", "imagenet64.params").status is (
        Status.REPRODUCED
    )


def test_footnotes_name_time_budget_stops_hardware_and_dirty_commits(published):
    notes = build(5, published).footnote_lines
    assert any("time budget" in note and "imagenet128-4res" in note for note in notes)
    assert any(note.startswith("Published hours") and "on NVIDIA H200" in note for note in notes)
    assert any("commit 3f2a9c1e7b5d," in note for note in notes)
    assert any("commit 3f2a9c1e7b5d+dirty," in note for note in notes)


def test_smoke_profile_is_never_comparable_except_parameter_counts(published):
    tables = [build(number, published, profile="smoke") for number in TABLES]
    for table in tables:
        assert "smoke" in table.title
        assert any("smoke" in note for note in table.footnotes)
        statuses = {c.status for r in table.rows for c in r.cells if c.metric != "params"}
        assert not statuses & {Status.REPRODUCED, Status.DIFFERS, Status.PUBLISHED_FAILING}
    table5 = tables[0]
    smoke = cell(table5, "2-resolution MRCNF (small)", "cifar10.bpd")
    assert (smoke.status, smoke.difference) == (Status.NOT_COMPARABLE, None)
    # Counts are of the paper's architectures in every profile, so they are compared.
    assert cell(table5, "2-resolution MRCNF (small)", "cifar10.params").status is Status.REPRODUCED
    assert cell(table5, "2-resolution MRCNF (big)", "imagenet64.bpd").status is (
        Status.NOT_COMPARABLE
    )


# Configuration against the published tables ----------------------------------------------------


def _claiming(experiment: str, model: str, dataset: str):
    cell = Table5Cell(model=model, dataset=dataset)
    spec = EXPERIMENTS[experiment]
    return dataclasses.replace(spec, paper=dataclasses.replace(spec.paper, table5=cell))


def test_experiment_naming_no_published_cell_is_rejected(published):
    experiments = {**EXPERIMENTS, "x": _claiming("cifar10-1res", "No such model", "cifar10")}
    with pytest.raises(TableConfigError, match=r"experiments\.x\.paper\.table5 names"):
        build(5, published, experiments=experiments)


def test_two_experiments_may_not_fill_one_cell(published):
    twin = _claiming("cifar10-1res", "2-resolution MRCNF (small)", "cifar10")
    with pytest.raises(
        TableConfigError, match=r"same Table 5 cell as experiments\.cifar10-2res-small\."
    ):
        build(5, published, experiments={**EXPERIMENTS, "twin": twin})
    table7 = {"cifar10-2res-small": "2-resolution MRCNF", "cifar10-1res": "2-resolution MRCNF"}
    with pytest.raises(TableConfigError, match=r"table7\.cifar10-1res names the same Table 7"):
        build(7, published, table7=table7)
    with pytest.raises(TableConfigError, match=r"table7\.cifar10-1res names 'No such row'"):
        build(7, published, table7={"cifar10-1res": "No such row"})


def test_inputs_refuse_bad_tolerances_and_unknown_table7_experiments(published):
    with pytest.raises(TableConfigError, match=r"tolerances\.fid_relative is None"):
        inputs(published, tolerances={k: v for k, v in TOLERANCES.items() if k != "fid_relative"})
    with pytest.raises(TableConfigError, match="table7 names unknown experiment 'nope'"):
        inputs(published, table7={"nope": "1-resolution CNF"})
    for error in (TableConfigError, ResultsError, PublishedDataError):
        assert issubclass(error, ReproError)


# Table 6 ---------------------------------------------------------------------------------------

EXACT_COUNTS = {
    (1, 2): 158_268,
    (1, 4): 316_536,
    (1, 14): 1_107_876,
    (2, 8): 1_335_744,
    (2, 20): 3_339_360,
    (2, 40): 6_678_720,
    (3, 6): 1_528_812,
    (3, 8): 2_038_416,
    (3, 20): 5_096_040,
}


def test_table6_two_rows_differ_by_a_hundredth_and_seven_match(published):
    table = build(6, published, experiments={}, table7={})
    by_config = {(int(r.labels[0]), int(r.labels[2])): r.cells[0] for r in table.rows}
    assert {k: c.reproduced for k, c in by_config.items()} == EXACT_COUNTS
    differing = {k for k, c in by_config.items() if c.status is Status.DIFFERS}
    assert differing == {(1, 14), (2, 8)}
    assert all(by_config[k].difference == pytest.approx(0.01) for k in differing)
    assert all(c.status is Status.REPRODUCED for k, c in by_config.items() if k not in differing)
    assert any("docs/method.md §1" in note for note in table.footnotes)


# Table 7 ---------------------------------------------------------------------------------------


def test_table7_fid_relative_tolerance_and_decided_sizes(published):
    table = build(7, published)
    assert cell(table, "2-resolution MRCNF", "T1.00").status is Status.REPRODUCED
    outside = cell(table, "2-resolution MRCNF", "T0.90")
    assert outside.status is Status.DIFFERS
    assert outside.relative_difference == pytest.approx((130.0 - 106.21) / 106.21)
    assert outside.extras["kid_mean"] == pytest.approx(0.0812)
    assert cell(table, "2-resolution MRCNF", "T0.50").status is Status.NOT_RUN
    assert cell(table, "1-resolution CNF", "T1.00").status is Status.NOT_RUN
    notes = " ".join(table.footnotes)
    for size in ("1 res × 14 blocks", "2 res × 8 blocks", "3 res × 6 blocks"):
        assert size in notes
    assert "50,000 samples" in notes and "KID" in notes


# Rendering -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tables(published):
    with pytest.MonkeyPatch.context() as patch:  # built once, so outside fixture_runs
        patch.setenv("MRCNF_RUNS", str(FIXTURES))
        return [build(number, published) for number in TABLES]


def test_every_format_renders(tables):
    for table in tables:
        assert isinstance(render(table, "rich"), RichTable)
        Console(file=io.StringIO(), width=240).print(render(table, "rich"))
        assert "\\begin{tabular}" in render(table, "latex")
        records = list(csv.DictReader(io.StringIO(render(table, "csv"))))
        assert records and {r["table"] for r in records} == {table.id}
        document = json.loads(render(table, "json"))
        assert document["table"] == table.id
    with pytest.raises(ValueError, match="unknown table format"):
        render(tables[0], "html")
    assert set(FORMATS) == {"rich", "markdown", "latex", "csv", "json"}


def test_markdown_shows_published_and_reproduced_side_by_side(tables):
    markdown = render(tables[0], "markdown")
    assert "| 2-resolution MRCNF (small)" in markdown
    assert "3.65" in markdown and "3.680 (+0.030) reproduced" in markdown
    assert "1,335,744 (1.3M) (+0.0) reproduced" in markdown
    assert "3.700 published failing" in markdown
    table6 = render(tables[1], "markdown")
    assert "1.10" in table6 and "1,107,876 (1.11M) (+0.01) differs" in table6


def test_csv_and_json_carry_numbers_and_provenance(tables):
    records = list(csv.DictReader(io.StringIO(render(tables[0], "csv"))))
    (bpd,) = [
        r
        for r in records
        if r["row"] == "2-resolution MRCNF (small)" and r["column"] == "CIFAR10 bpd"
    ]
    assert (bpd["published"], bpd["reproduced"], bpd["status"]) == ("3.65", "3.68", "reproduced")
    assert bpd["device"] == "NVIDIA H200"
    document = json.loads(render(tables[2], "json"))
    (fid,) = [
        c
        for c in document["cells"]
        if c["row"] == "2-resolution MRCNF" and c["reproduced"] == 130.0
    ]
    assert fid["published"] == 106.21 and fid["status"] == "differs"
    assert fid["extras"]["num_samples"] == 50_000


def test_write_tables_writes_md_tex_csv(tables, tmp_path):
    written = write_tables(tables, tmp_path)
    assert sorted(p.name for p in written) == sorted(
        f"{table_stem(n)}.{suffix}" for n in TABLES for suffix in ("md", "tex", "csv")
    )
    # Written whole through a temporary file each, which is gone once it replaced the table.
    assert sorted(tmp_path.iterdir()) == sorted(written)
    assert (tmp_path / "table6.md").read_text(encoding="utf-8") == render(tables[1], "markdown")


def test_every_status_has_a_colour():
    assert set(STATUS_STYLES) == set(Status)


# Summary ---------------------------------------------------------------------------------------


def test_compare_all_sorts_differences_worst_first(published):
    summary = compare_all(inputs(published))
    severities = [ref.severity for ref in summary.differing]
    assert severities == sorted(severities, reverse=True)
    # Table 5's small CIFAR10 run is also an arm of the ablation, compared with its printed
    # numbers there too.
    table5 = [ref for ref in summary.differing if ref.table == "5"]
    worst = table5[0]
    assert (worst.table, worst.row, worst.column) == (
        "5",
        "2-resolution MRCNF (small)",
        "CIFAR10 hours",
    )
    paper_tables = [ref for ref in summary.differing if ref.table != "ablation"]
    assert len(paper_tables) == 6 and summary.counts[Status.DIFFERS] == len(summary.differing)
    assert summary.counts[Status.PUBLISHED_FAILING] == 2
    assert Status.REFERENCE not in summary.counts
    assert all(ref.cell.status is Status.NOT_RUN for ref in summary.not_run)
    assert summary.counts[Status.NOT_RUN] == len(summary.not_run)
    out = io.StringIO()
    Console(file=out, width=200).print(render_summary(summary))
    assert "worst first" in out.getvalue() and "cifar10-1res" in out.getvalue()


def test_table_code_does_not_import_torch():
    # A fresh interpreter: other test modules in this session may import torch themselves.
    modules = "repro.tables, repro.tables.inputs, repro.published, repro.layout"
    code = f"import sys, {modules}; print('torch' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
