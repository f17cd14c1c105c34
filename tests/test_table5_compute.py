"""What each reproduced Table 5 number rests on: the run's compute and GPU, the checkpoint scored,
the bin-centre bpd and the other solver ending beside it, and a progressive run's hours."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from repro.config import load_params
from repro.layout import ProfileLayout
from repro.results import BpdResult, Judgement, TrainSummary, write_result
from repro.tables import (
    Status,
    Table,
    TableConfigError,
    TableInputs,
    build_table5,
    compare_all,
    render,
    render_summary,
)
from tests.conftest import RESULT_FIXTURES
from tests.test_tables import cell

PARAMS = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
ROW, BPD, HOURS = "2-resolution MRCNF (small)", "cifar10.bpd", "cifar10.hours"
PROGRESSIVE = "imagenet128-4res"
PARENT = PARAMS.experiment(PROGRESSIVE, profile="paper").training.init_from
FIXTURE = RESULT_FIXTURES / "paper"


def _write_summary(runs: Path, experiment: str, *, device: str | None = None, **fields) -> None:
    """Write ``experiment``'s training summary: the ImageNet128 fixture's, with ``fields``."""
    summary = TrainSummary.read(FIXTURE / PROGRESSIVE / "train_summary.json")
    provenance = summary.provenance
    if device is not None:
        hardware = dataclasses.replace(provenance.hardware, device=device)
        provenance = dataclasses.replace(provenance, hardware=hardware)
    changed = dataclasses.replace(summary, experiment=experiment, provenance=provenance, **fields)
    write_result(runs / "paper" / experiment / "train_summary.json", changed)


def _write_bpd(runs: Path, **fields) -> None:
    """Rewrite cifar10-2res-small's bpd with ``fields``."""
    path = runs / "paper" / "cifar10-2res-small" / "eval_bpd.json"
    write_result(path, dataclasses.replace(BpdResult.read(path), **fields))


def _inputs(published) -> TableInputs:
    return TableInputs.from_params(PARAMS, profile="paper", published=published)


def _table(published) -> Table:
    return build_table5(_inputs(published))


def _note(table: Table, row: str, column: str) -> str:
    """The footnote the cell's mark refers to."""
    return table.cell_notes[cell(table, row, column).note]


# Compute ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stopped_by", "stop"),
    [
        ("time_budget", "the time budget of 19.79 h"),
        ("max_iterations", "the iteration limit"),
        ("max_epochs", "the epoch limit"),
    ],
)
def test_run_footnote_lists_iterations_epochs_gpu_and_what_stopped_training(
    published, runs, stopped_by, stop
):
    _write_summary(
        runs,
        "cifar10-2res-small",
        device="NVIDIA H100 80GB HBM3",
        iterations=12_345,
        epochs=24.69,
        stopped_by=stopped_by,
        time_budget_hours=19.79,
    )
    table = _table(published)
    bpd, hours = cell(table, ROW, BPD), cell(table, ROW, HOURS)
    assert bpd.note == hours.note is not None
    compute = f"12,345 iterations (24.7 epochs) on NVIDIA H100 80GB HBM3, stopped by {stop};"
    assert (
        table.cell_notes[bpd.note] == f"cifar10-2res-small: {compute} bpd of the last checkpoint."
    )
    # Every format shows it: the people-facing ones as a marked footnote, CSV on each cell.
    marked = f"{bpd.note} cifar10-2res-small: {compute}"
    assert f"differs {hours.note} |" in render(table, "markdown")
    for fmt in ("markdown", "latex"):
        assert marked in str(render(table, fmt))
    assert any(n.startswith(marked) for n in json.loads(render(table, "json"))["footnotes"])
    records = csv.DictReader(io.StringIO(render(table, "csv")))
    (record,) = [r for r in records if r["row"] == ROW and r["column"] == "CIFAR10 hours"]
    assert compute in record["note"] and record["iterations"] == "12345"
    out = io.StringIO()
    Console(file=out, width=400).print(render(table, "rich"))
    assert marked in out.getvalue()


def test_cells_not_run_and_parameter_counts_carry_no_run_mark(published, runs):
    (runs / "paper" / "cifar10-2res-small" / "train_summary.json").unlink()
    table = _table(published)
    assert cell(table, ROW, BPD).note is not None
    assert cell(table, ROW, HOURS).note is None
    assert cell(table, ROW, "cifar10.params").note is None
    assert "iterations" not in _note(table, ROW, BPD)


# bpd: bin-centre, checkpoint, solver ending ----------------------------------------------------


def test_bin_centre_bpd_is_shown_beside_the_uniform_bpd_that_the_verdict_uses(published, runs):
    # Published 3.65, tolerance 0.05: the uniform 3.72 differs, the bin-centre 3.66 would not.
    _write_bpd(runs, bpd=3.72, bpd_bin_centre=3.66)
    table = _table(published)
    bpd = cell(table, ROW, BPD)
    assert (bpd.status, bpd.difference) == (Status.DIFFERS, pytest.approx(0.07))
    assert f"3.720 (+0.070) differs; bin-centre 3.660 {bpd.note}" in render(table, "markdown")
    (note,) = [n for n in table.footnotes if n.startswith("bpd: our uniform")]
    assert "bin-centre" in note and "not stated" in note
    out = io.StringIO()
    Console(file=out, width=200).print(render_summary(compare_all(_inputs(published))))
    assert "3.720; bin-centre 3.660" in out.getvalue()
    assert "What the cells above rest on" in out.getvalue()


def test_checkpoint_footnote_tells_the_best_checkpoint_and_its_judge_from_the_last(published, runs):
    # As the run recorded it, whatever params.yaml says now.
    judged = Judgement(images="test", every_epochs=0.5, dequantization="uniform")
    _write_bpd(runs, checkpoint="best", checkpoint_iteration=48_000, judged_by=judged)
    best = _note(_table(published), ROW, BPD)
    assert (
        "bpd of the best checkpoint (iteration 48,000), judged by uniform-dequantisation bpd on "
        "the test set every 0.5 epochs, as the authors did (optimistic" in best
    )
    held_out = Judgement(
        images="held_out", every_epochs=2.0, dequantization="bin_centre", held_out_images=5000
    )
    _write_bpd(runs, checkpoint="best", checkpoint_iteration=48_000, judged_by=held_out)
    assert "judged by bin-centre bpd on 5,000 held-out training images every 2 epochs" in _note(
        _table(published), ROW, BPD
    )
    _write_bpd(runs, checkpoint="last", checkpoint_iteration=100_000, judged_by=None)
    last = _note(_table(published), ROW, BPD)
    assert "bpd of the last checkpoint (iteration 100,000)" in last
    assert "judged" not in last and "best" not in last


_AUTHORS_END = "interpolating back from past t = 1 (the authors' bosh3, torchdiffeq's default)"


@pytest.mark.parametrize(
    ("exact_end", "clause"),
    [
        (False, f"bpd with the solver {_AUTHORS_END}, 3.702 with it ending exactly at t = 1."),
        (True, f"bpd with the solver ending exactly at t = 1, 3.680 with it {_AUTHORS_END}."),
    ],
)
def test_run_footnote_gives_the_bpd_of_the_other_solver_ending(published, runs, exact_end, clause):
    value = 3.702 if exact_end else 3.68
    _write_bpd(runs, bpd=value, exact_end=exact_end, bpd_interpolated_end=3.68, bpd_exact_end=3.702)
    assert _note(_table(published), ROW, BPD).endswith(clause)


# Progressive training --------------------------------------------------------------------------


def _printed_hours(published, experiment: str) -> float:
    paper = PARAMS.experiment(experiment, profile="paper").paper.table5
    return published.table5.hours(paper.model, paper.dataset)


def test_progressive_hours_are_its_own_plus_its_parents(published, runs):
    printed, parent_printed = (_printed_hours(published, e) for e in (PROGRESSIVE, PARENT))
    _write_summary(runs, PARENT, train_hours=35.0, time_budget_hours=parent_printed)
    _write_summary(runs, PROGRESSIVE, train_hours=23.0, time_budget_hours=printed - parent_printed)
    table = _table(published)
    hours = cell(table, "4-resolution MRCNF", "imagenet128.hours")
    assert hours.reproduced == pytest.approx(35.0 + 23.0)
    assert hours.difference == pytest.approx(58.0 - printed)
    assert (hours.extras["own_hours"], hours.extras["parent_hours"]) == (23.0, 35.0)
    note = table.cell_notes[hours.note]
    assert f"hours = its own 23.00 + {PARENT}'s 35.00;" in note
    assert f"the published {printed:g} h less {PARENT}'s published {parent_printed:g} h" in note
    assert "only its 128×128 level trained" in note
    (budget,) = [n for n in table.footnotes if n.startswith("Stopped by the time budget")]
    assert PROGRESSIVE in budget


def test_progressive_hours_are_not_run_without_the_parents_summary(published, runs):
    assert not (runs / "paper" / PARENT / "train_summary.json").exists()
    table = _table(published)
    hours = cell(table, "4-resolution MRCNF", "imagenet128.hours")
    assert (hours.status, hours.reproduced, hours.producer) == (Status.NOT_RUN, None, PROGRESSIVE)
    assert f"{PARENT}'s (no training summary yet), so not run" in table.cell_notes[hours.note]
    assert cell(table, "4-resolution MRCNF", "imagenet128.bpd").status is Status.REPRODUCED
    assert not any(PROGRESSIVE in n for n in table.footnotes if n.startswith("Stopped by"))


def test_inputs_refuse_a_parent_that_is_not_tabulated(published):
    experiments = PARAMS.paper_experiments()
    del experiments[PARENT]
    with pytest.raises(TableConfigError, match=rf"{PROGRESSIVE}\.training\.init_from names"):
        TableInputs(
            experiments=experiments,
            table7=PARAMS.table7,
            layout=ProfileLayout("paper"),
            comparable=True,
            tolerances=PARAMS.tolerances,
            published=published,
        )
