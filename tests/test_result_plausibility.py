"""Results that cannot be right: impossible values are marked invalid and never compared, FIDs of
unverified Inception weights are marked unverified, and unreadable result paths are one-line errors
(writing tables and the figure: test_table_writes.py)."""

from __future__ import annotations

import csv
import dataclasses
import errno
import io
import json
import math
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from matplotlib import pyplot as plt

from repro.cli import main
from repro.config import load_params
from repro.errors import ReproError
from repro.layout import ProfileLayout
from repro.plots import _plot_ours
from repro.results import BpdResult, FidResult
from repro.tables import (
    TABLES,
    Problem,
    ResultFileError,
    Results,
    Status,
    Table,
    TableInputs,
    compare_all,
    render,
    result_problems,
)
from repro.tables.results import Measurement
from tests.conftest import RESULT_FIXTURES

REPO = Path(__file__).resolve().parents[1]
PARAMS = load_params(REPO / "params.yaml")
ROW5, ROW7 = "2-resolution MRCNF (small)", "2-resolution MRCNF"
RUN = "cifar10-2res-small"
NAN = float("nan")


@pytest.fixture
def run(runs: Path) -> Path:
    """The copied fixture run whose bpd, hours and FID at T=0.9 fill the cells tested here."""
    return runs / "paper" / RUN


def _edit(path: Path, **changes: object) -> None:
    """Change top-level keys of a result file (json writes NaN as the bare word NaN)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    data.update(changes)
    path.write_text(json.dumps(data), encoding="utf-8")


def _inputs(published) -> TableInputs:
    return TableInputs.from_params(PARAMS, profile="paper", published=published)


def _cell(table: Table, row: str, column: str):
    keys = [c.key for c in table.columns]
    (match,) = [r for r in table.rows if table.row_name(r) == row]
    return match.cells[keys.index(column)]


def _lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.strip()]


# The plausibility check ------------------------------------------------------------------------


def test_result_problems_name_each_impossible_value(run):
    bpd = BpdResult.read(run / "eval_bpd.json")
    assert result_problems(bpd) == ()
    broken = dataclasses.replace(bpd, bpd=-1.5, bpd_standard_error=-0.01)
    assert result_problems(broken) == (
        "bpd is -1.5 (a total bpd cannot be below 0)",
        "bpd_standard_error is -0.01 (a standard error cannot be below 0)",
    )
    fid = FidResult.read(run / "fid" / "T0.9.json")
    broken = dataclasses.replace(fid, fid_seed_sets=[130.0, NAN], kid_std=-0.1)
    assert result_problems(broken) == (
        "fid_seed_sets[1] is nan (not a finite number)",
        "kid_std is -0.1 (a standard deviation cannot be below 0)",
    )


def test_negative_per_level_terms_and_float_noise_below_zero_fid_are_fine(run):
    bpd = BpdResult.read(run / "eval_bpd.json")
    assert result_problems(dataclasses.replace(bpd, bpd_per_resolution=[-1.0, 4.68])) == ()
    fid = FidResult.read(run / "fid" / "T0.9.json")
    assert result_problems(dataclasses.replace(fid, fid=-1e-7)) == ()
    assert result_problems(dataclasses.replace(fid, fid=-1e-5))


# Invalid cells ---------------------------------------------------------------------------------

IMPOSSIBLE = [
    ("eval_bpd.json", {"bpd": -1.5}, 5, ROW5, "cifar10.bpd", "bpd is -1.5"),
    ("eval_bpd.json", {"bpd": NAN}, 5, ROW5, "cifar10.bpd", "bpd is nan"),
    ("eval_bpd.json", {"bpd_standard_error": -0.004}, 5, ROW5, "cifar10.bpd", "-0.004"),
    ("eval_bpd.json", {"bpd_exact_end": -3.0}, 5, ROW5, "cifar10.bpd", "bpd_exact_end is -3"),
    ("fid/T0.9.json", {"fid": -5.0}, 7, ROW7, "T0.90", "fid is -5"),
    ("fid/T0.9.json", {"fid": NAN}, 7, ROW7, "T0.90", "fid is nan"),
    ("fid/T0.9.json", {"kid_std": -0.1}, 7, ROW7, "T0.90", "kid_std is -0.1"),
    (
        "fid/T0.9.json",
        {"fid_seed_sets": [130.0, 128.0], "fid_spread": -2.0},
        7,
        ROW7,
        "T0.90",
        "fid_spread is -2",
    ),
    ("train_summary.json", {"train_hours": NAN}, 5, ROW5, "cifar10.hours", "train_hours is nan"),
]


@pytest.mark.parametrize(("file", "changes", "number", "row", "column", "named"), IMPOSSIBLE)
def test_an_impossible_value_makes_its_cell_invalid_and_never_a_verdict(
    published, run, file, changes, number, row, column, named
):
    _edit(run / file, **changes)
    table = TABLES[str(number)](_inputs(published))
    cell = _cell(table, row, column)
    assert cell.status is Status.INVALID
    assert (cell.reproduced, cell.compared, cell.difference, cell.unresolved) == (
        None,
        None,
        None,
        False,
    )
    assert {problem.source for problem in cell.problems} == {run / file}
    (note,) = [note for note in table.footnotes if note.startswith("invalid:")]
    assert f"{run / file}: " in note and named in note and "never compared" in note
    summary = compare_all(_inputs(published))
    # Table 5's small CIFAR10 run is also the ablation's MRCNF arm with multi-resolution noise.
    invalid = [(ref.table, ref.row) for ref in summary.invalid if ref.table == str(number)]
    assert invalid == [(str(number), row)]
    assert {ref.cell.source for ref in summary.invalid} == {run / file}
    verdicts = (*summary.differing, *summary.unresolved)
    assert not [ref for ref in verdicts if ref.cell.source == run / file]


def test_an_invalid_cell_shows_no_number_in_any_format(published, run):
    _edit(run / "eval_bpd.json", bpd=-1.5, bpd_standard_error=0.004)
    table = TABLES["5"](_inputs(published))
    markdown = render(table, "markdown")
    assert "-1.500" not in markdown and "bin-centre 3.660" not in markdown
    assert "| invalid" in markdown.replace("  ", " ")
    (record,) = [
        r
        for r in csv.DictReader(io.StringIO(render(table, "csv")))
        if r["row"] == ROW5 and r["column"] == "CIFAR10 bpd"
    ]
    assert (record["status"], record["reproduced"], record["difference"]) == ("invalid", "", "")
    assert record["problems"].startswith(str(run / "eval_bpd.json"))
    # The run's footnote draws nothing from the invalid file either.
    assert not any("bpd of the" in note for note in table.cell_notes.values() if RUN in note)


def test_an_invalid_value_beats_a_non_comparable_profile(published, runs):
    _edit(runs / "smoke" / RUN / "eval_bpd.json", bpd=-0.5)
    inputs = TableInputs.from_params(PARAMS, profile="smoke", published=published)
    assert _cell(TABLES["5"](inputs), ROW5, "cifar10.bpd").status is Status.INVALID


def test_a_negative_per_level_term_keeps_its_verdict(published, run):
    _edit(run / "eval_bpd.json", bpd_per_resolution=[-1.0, 4.68])
    cell = _cell(TABLES["5"](_inputs(published)), ROW5, "cifar10.bpd")
    assert (cell.status, cell.problems) == (Status.REPRODUCED, ())


def test_compare_prints_the_verdict_invalid_with_the_file(published, run, monkeypatch):
    _edit(run / "fid" / "T0.9.json", fid=-5.0)
    result = CliRunner(env={"COLUMNS": "400"}).invoke(main, ["compare", "--profile", "paper"])
    assert result.exit_code == 0, result.output
    (line,) = [line for line in result.output.splitlines() if "FID T=0.9" in line]
    assert "invalid" in line and "differs" not in line and "-5" in line


# Unreadable result paths -----------------------------------------------------------------------


def _bpd_error(run: Path) -> str:
    with pytest.raises(ResultFileError) as caught:
        Results(ProfileLayout("paper")).bpd(RUN)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(str(run / "eval_bpd.json"))
    assert isinstance(caught.value, ReproError)
    return message


def test_a_directory_at_a_result_path_is_an_error_not_not_run(run):
    (run / "eval_bpd.json").unlink()
    (run / "eval_bpd.json").mkdir()
    assert "is a directory" in _bpd_error(run) and "remove it" in _bpd_error(run)


def test_an_unreadable_result_file_is_an_error(run, monkeypatch):
    path = run / "eval_bpd.json"
    read_text = Path.read_text

    def refused(self: Path, *args: object, **kwargs: object) -> str:
        if self == path:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return read_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", refused)
    assert "cannot be read (Permission denied); make it readable" in _bpd_error(run)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file without read permission")
def test_a_file_without_read_permission_is_an_error(run):
    (run / "eval_bpd.json").chmod(0)
    assert "Permission denied" in _bpd_error(run)


@pytest.mark.parametrize(
    ("content", "said"),
    [(b'{"bpd": 3.6', "not valid JSON"), (b"\xff\xfe{", "not UTF-8 text"), (b"", "not valid")],
)
def test_a_corrupt_result_file_is_an_error(run, content, said):
    (run / "eval_bpd.json").write_bytes(content)
    assert said in _bpd_error(run)


def test_a_broken_link_is_an_error_and_only_a_missing_path_is_not_run(run):
    assert Results(ProfileLayout("paper")).bpd("cifar10-1res") is None
    (run / "eval_bpd.json").unlink()
    (run / "eval_bpd.json").symlink_to(run / "nowhere.json")
    assert "not a regular file" in _bpd_error(run)


def test_the_table_command_says_one_line_for_a_directory_at_a_result_path(run):
    (run / "eval_bpd.json").unlink()
    (run / "eval_bpd.json").mkdir()
    result = CliRunner().invoke(main, ["table", "--id", "5", "--profile", "paper"])
    assert result.exit_code == 1
    (line,) = _lines(result.output)
    assert line.startswith(f"error: {run / 'eval_bpd.json'}: is a directory")


# Unverified Inception weights ------------------------------------------------------------------

SHA = "ab12" * 16


def _extractor(verified: bool) -> dict[str, object]:
    return {
        "name": "inception-v3-compat",
        "weights_sha256": SHA,
        "weights_origin": "converted",
        "weights_verified": verified,
    }


def test_an_fid_of_unverified_weights_is_shown_but_never_compared(published, run):
    _edit(run / "fid" / "T0.9.json", extractor=_extractor(False))
    table = TABLES["7"](_inputs(published))
    cell = _cell(table, ROW7, "T0.90")
    assert (cell.status, cell.reproduced, cell.difference) == (Status.UNVERIFIED, 130.0, None)
    (note,) = [note for note in table.footnotes if note.startswith("unverified")]
    assert f"computed with unverified Inception weights ({SHA[:12]})" in note
    assert f"{RUN}/fid/T0.9.json" in note
    assert "130.00 unverified; KID" in render(table, "markdown")
    summary = compare_all(_inputs(published))
    assert [(ref.table, ref.column) for ref in summary.unverified] == [("7", "FID T=0.9")]
    assert summary.counts[Status.UNVERIFIED] == 1
    assert not [ref for ref in summary.differing if ref.cell is cell]


def test_an_fid_of_verified_weights_gets_its_verdict(published, run):
    _edit(run / "fid" / "T0.9.json", extractor=_extractor(True))
    cell = _cell(TABLES["7"](_inputs(published)), ROW7, "T0.90")
    assert (cell.status, cell.unverified) == (Status.DIFFERS, None)


# The figure ------------------------------------------------------------------------------------


def _measurement(value: float, *, problems=(), unverified=None) -> Measurement:
    fid = FidResult.read(RESULT_FIXTURES / "paper" / RUN / "fid" / "T0.9.json")
    return Measurement(
        value, Path("f.json"), fid.provenance, problems=problems, unverified=unverified
    )


def test_the_figure_leaves_invalid_fids_out_and_draws_unverified_ones_hollow():
    figure, axes = plt.subplots()
    problem = (Problem(Path("f.json"), "fid is -5 (an FID cannot be below 0)"),)
    measured = [
        (1.0, _measurement(95.0)),
        (0.9, _measurement(-5.0, problems=problem)),
        (0.8, _measurement(150.0, unverified="computed with unverified Inception weights (x)")),
    ]
    _plot_ours(axes, "m", "C0", measured)
    drawn = {line.get_label(): list(line.get_ydata()) for line in axes.get_lines()}
    plt.close(figure)
    assert all(-5.0 not in values for values in drawn.values())
    assert drawn["m (ours; 1 invalid, not shown)"] == [95.0]
    assert drawn["m (ours, unverified Inception weights)"] == [150.0]
    assert not any(math.isnan(v) for values in drawn.values() for v in values)
