"""Published data, table building, comparison statuses and rendering, from fixture metrics."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console
from rich.table import Table as RichTable

from repro.config import load_params
from repro.published import PUBLISHED_DIR, PublishedDataError, load_published
from repro.tables import (
    FORMATS,
    TABLES,
    ResultsError,
    Status,
    Table,
    TableConfigError,
    compare_all,
    render,
    render_summary,
    write_tables,
)

FIXTURES = Path(__file__).parent / "fixtures" / "results"
PARAMS = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
TOLERANCES = {"bpd": 0.05, "fid_relative": 0.10, "hours_relative": 0.25}


# id: (dataset, resolutions, blocks, its Table 5 row, its Table 7 row), as the caller passes them.
_RUNS = {
    "cifar10-2res-small": ("cifar10", 2, 8, "2-resolution MRCNF (small)", "2-resolution MRCNF"),
    "cifar10-3res-small": ("cifar10", 3, 6, "3-resolution MRCNF (small)", "3-resolution MRCNF"),
    "cifar10-1res-fid": ("cifar10", 1, 14, None, "1-resolution CNF"),
    "imagenet32-1res": ("imagenet32", 1, 20, "RNODE (re-implemented)", None),
    "imagenet64-2res-big": ("imagenet64", 2, 40, "2-resolution MRCNF (big)", None),
    "imagenet128-4res": ("imagenet128", 4, 8, "4-resolution MRCNF", None),
}
EXPERIMENTS = {
    run: {
        **{"dataset": dataset, "resolutions": resolutions, "blocks": blocks, "width": 64},
        **({"table5": {"model": table5, "dataset": dataset}} if table5 else {}),
        **({"table7": {"model": table7}} if table7 else {}),
    }
    for run, (dataset, resolutions, blocks, table5, table7) in _RUNS.items()
}


@pytest.fixture(scope="module")
def published():
    return load_published()


def build(number: int, published, *, profile="paper", results_dir=None, experiments=EXPERIMENTS):
    return TABLES[number](
        published=published,
        results_dir=FIXTURES / profile if results_dir is None else results_dir,
        experiments=experiments,
        tolerances=TOLERANCES,
        profile=profile,
        comparable=PARAMS.comparable(profile),
    )


def cell(table: Table, row: str, column: str):
    """Find a cell by row name and column key."""
    keys = [c.key for c in table.columns]
    (match,) = [r for r in table.rows if table.row_name(r) == row]
    return match.cells[keys.index(column)]


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


# Statuses --------------------------------------------------------------------------------------


def test_table5_within_and_outside_tolerance(published):
    table = build(5, published)
    row = "2-resolution MRCNF (small)"
    bpd = cell(table, row, "cifar10.bpd")
    assert bpd.status is Status.REPRODUCED
    assert bpd.difference == pytest.approx(0.03)
    assert bpd.provenance.device == "NVIDIA H200"
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
    notes = build(5, published).footnotes
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


def test_results_from_another_profile_are_rejected(published, tmp_path):
    shutil.copytree(FIXTURES / "smoke", tmp_path / "paper")
    with pytest.raises(ResultsError, match="profile is 'smoke', expected 'paper'"):
        build(5, published, results_dir=tmp_path / "paper")


def test_malformed_results_file_is_a_one_line_error(published, tmp_path):
    shutil.copytree(FIXTURES / "paper", tmp_path / "paper")
    broken = tmp_path / "paper" / "cifar10-2res-small" / "eval_bpd.json"
    broken.write_text('{"bpd": 3.6', encoding="utf-8")
    with pytest.raises(ResultsError) as caught:
        build(5, published, results_dir=tmp_path / "paper")
    assert str(caught.value).startswith(str(broken)) and "\n" not in str(caught.value)


def test_experiment_naming_no_published_cell_is_rejected(published):
    experiments = {"x": {"table5": {"model": "No such model", "dataset": "cifar10"}}}
    with pytest.raises(TableConfigError, match=r"experiments\.x\.table5 names"):
        build(5, published, experiments=experiments)


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
    table = build(6, published, experiments={})
    by_config = {(int(r.labels[0]), int(r.labels[2])): r.cells[0] for r in table.rows}
    assert {k: c.reproduced for k, c in by_config.items()} == EXACT_COUNTS
    differing = {k for k, c in by_config.items() if c.status is Status.DIFFERS}
    assert differing == {(1, 14), (2, 8)}
    assert all(by_config[k].difference == pytest.approx(0.01) for k in differing)
    assert all(c.status is Status.REPRODUCED for k, c in by_config.items() if k not in differing)
    assert any("METHOD.md §1" in note for note in table.footnotes)


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
    return [build(number, published) for number in TABLES]


def test_every_format_renders(tables):
    for table in tables:
        assert isinstance(render(table, "rich"), RichTable)
        Console(file=io.StringIO(), width=240).print(render(table, "rich"))
        assert "\\begin{tabular}" in render(table, "latex")
        records = list(csv.DictReader(io.StringIO(render(table, "csv"))))
        assert records and {r["table"] for r in records} == {str(table.number)}
        document = json.loads(render(table, "json"))
        assert document["table"] == table.number
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
        f"table{n}.{suffix}" for n in TABLES for suffix in ("md", "tex", "csv")
    )


# Summary ---------------------------------------------------------------------------------------


def test_compare_all_sorts_differences_worst_first(published):
    summary = compare_all(
        published=published,
        results_dir=FIXTURES / "paper",
        experiments=EXPERIMENTS,
        tolerances=TOLERANCES,
        profile="paper",
        comparable=True,
    )
    severities = [ref.severity for ref in summary.differing]
    assert severities == sorted(severities, reverse=True)
    worst = summary.differing[0]
    assert (worst.table, worst.row, worst.column) == (
        5,
        "2-resolution MRCNF (small)",
        "CIFAR10 hours",
    )
    assert summary.counts[Status.DIFFERS] == len(summary.differing) == 6
    assert summary.counts[Status.PUBLISHED_FAILING] == 2
    assert Status.REFERENCE not in summary.counts
    assert all(ref.cell.status is Status.NOT_RUN for ref in summary.not_run)
    assert summary.counts[Status.NOT_RUN] == len(summary.not_run)
    out = io.StringIO()
    Console(file=out, width=200).print(render_summary(summary))
    assert "worst first" in out.getvalue() and "cifar10-1res-fid" in out.getvalue()


def test_table_code_does_not_import_torch():
    # A fresh interpreter: other test modules in this session may import torch themselves.
    code = "import sys, repro.tables, repro.published; print('torch' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
