"""What a reproduced Table 5 number rests on, stated beside it: the run's compute, the checkpoint
scored, the solver ending, and how a progressive run's hours add up.

The paper's hours were measured on one older GPU, so a run stopped by the same time budget on a
faster GPU trains for more iterations than the authors did; the reader needs those iterations,
the GPU and what stopped the run to judge a number. Everything here is drawn from the result files
and the experiments' configuration, never typed in.
"""

from __future__ import annotations

import math
from dataclasses import replace

from repro.experiment import Experiment
from repro.levels import level_sizes, trained_levels
from repro.tables.inputs import TableInputs
from repro.tables.results import Measurement

# The metrics of a Table 5 cell that a run's own files yield (parameter counts do not).
RUN_METRICS = ("bpd", "hours")
_STOPPED_BY = {
    "max_iterations": "the iteration limit",
    "max_epochs": "the epoch limit",
    "time_budget": "the time budget",
}
_DEQUANTIZATION = {"bin_centre": "bin-centre", "uniform": "uniform-dequantisation"}
_ENDINGS = {
    "interpolated": (
        "interpolating back from past t = 1 (the authors' bosh3, torchdiffeq's default)"
    ),
    "exact": "ending exactly at t = 1",
}


def train_hours(inputs: TableInputs, experiment: str) -> Measurement | None:
    """The training hours compared with the published ones, or ``None`` if not all trained.

    A progressive run (``training.init_from``) is compared as the whole model the paper timed:
    its own hours plus its parent's. Its extras add ``own_hours``, ``parent_hours`` and
    ``parent_stopped_by``; without the parent's training summary the hours are not run, and
    with an impossible value in either summary they are invalid (both files' problems named).

    Raises:
        ResultsError: A training summary is malformed or belongs elsewhere.
    """
    own = inputs.results.train_hours(experiment)
    parent = inputs.experiments[experiment].training.init_from
    if own is None or parent is None:
        return own
    before = inputs.results.train_hours(parent)
    if before is None:
        return None
    extras = {
        **own.extras,
        "own_hours": own.value,
        "parent_hours": before.value,
        "parent_stopped_by": before.extras["stopped_by"],
    }
    problems = (*own.problems, *before.problems)
    return replace(own, value=own.value + before.value, extras=extras, problems=problems)


def run_note(inputs: TableInputs, experiment: str) -> str | None:
    """One footnote on what the experiment's bpd and hours rest on, or ``None`` if nothing does.

    It states, where known: the iterations, epochs, GPU and what stopped training; for a
    progressive run, the levels it trained and how its hours and budget relate to its parent's;
    which checkpoint was scored and how it was chosen; the bpd of the other solver ending.
    Nothing is drawn from a file with impossible values: its cells say invalid.

    Raises:
        ResultsError: A result file is malformed or belongs elsewhere.
    """
    hours = inputs.results.train_hours(experiment)
    trusted_hours, bpd = _trusted(hours), _trusted(inputs.results.bpd(experiment))
    spec = inputs.experiments[experiment]
    parts = [
        None if trusted_hours is None else _compute(trusted_hours),
        _progressive(inputs, spec, hours),
        None if bpd is None else _checkpoint(bpd),
        None if bpd is None else _other_ending(bpd),
    ]
    found = [part for part in parts if part]
    return f"{experiment}: {'; '.join(found)}." if found else None


def _trusted(measurement: Measurement | None) -> Measurement | None:
    """The measurement, or ``None`` where its file holds an impossible value."""
    return None if measurement is None or measurement.problems else measurement


def _compute(hours: Measurement) -> str:
    """Iterations, epochs, GPU and what stopped the run (with its budget, if that did)."""
    extras = hours.extras
    stopped_by = str(extras["stopped_by"])
    stop = _STOPPED_BY[stopped_by]
    if stopped_by == "time_budget" and "time_budget_hours" in extras:
        stop += f" of {extras['time_budget_hours']:.2f} h"
    return (
        f"{extras['iterations']:,} iterations ({extras['epochs']:.1f} epochs) on "
        f"{hours.provenance.hardware.device}, stopped by {stop}"
    )


def _progressive(inputs: TableInputs, spec: Experiment, hours: Measurement | None) -> str | None:
    """Which levels a progressive run trained, and how its hours and budget relate to its
    parent's (``None`` for a run trained from scratch)."""
    parent = spec.training.init_from
    if parent is None:
        return None
    sizes = level_sizes(spec)
    trained = trained_levels(spec)
    if len(trained) == len(sizes):
        levels = f"every level trained, starting from {parent}'s"
    else:
        names = ", ".join(f"{sizes[level]}×{sizes[level]}" for level in trained)
        levels = f"only its {names} level{'s' if len(trained) > 1 else ''} trained, the others "
        levels += f"kept from {parent}"
    before = inputs.results.train_hours(parent)
    own, parents = (_hours_text(m) for m in (hours, before))
    added = f"hours = its own {own} + {parent}'s {parents}"
    if hours is None or before is None:
        added += ", so not run"
    elif hours.problems or before.problems:
        added += ", so invalid"
    budget = _budget_beyond_parent(inputs, spec, hours)
    return "; ".join(part for part in (levels, added, budget) if part)


def _hours_text(hours: Measurement | None) -> str:
    if hours is None:
        return "(no training summary yet)"
    return "(invalid)" if hours.problems else f"{hours.value:.2f}"


def _budget_beyond_parent(
    inputs: TableInputs, spec: Experiment, hours: Measurement | None
) -> str | None:
    """Say that the run's budget is its cell's published hours less its parent's, where it is."""
    trusted = _trusted(hours)
    budget = None if trusted is None else trusted.extras.get("time_budget_hours")
    parent = inputs.experiments[str(spec.training.init_from)]
    printed, parent_printed = (_printed_hours(inputs, e) for e in (spec, parent))
    if budget is None or printed is None or parent_printed is None:
        return None
    if not math.isclose(float(budget), printed - parent_printed, abs_tol=1e-6):
        return None
    return (
        f"its time budget is the published {printed:g} h less {parent.id}'s published "
        f"{parent_printed:g} h [decision: the paper's hours are the whole model's]"
    )


def _printed_hours(inputs: TableInputs, spec: Experiment) -> float | None:
    cell = spec.paper.table5
    return None if cell is None else inputs.published.table5.hours(cell.model, cell.dataset)


def _checkpoint(bpd: Measurement) -> str:
    """The checkpoint scored and, for the best one, how it was chosen."""
    extras = bpd.extras
    which = extras["checkpoint"]
    at = (
        f" (iteration {extras['checkpoint_iteration']:,})"
        if "checkpoint_iteration" in extras
        else ""
    )
    text = f"bpd of the {which} checkpoint{at}"
    if which != "best":
        return text
    judged_on = extras.get("judged_on")
    if judged_on is None:
        return f"{text}, judged in a way its file does not record"
    images = {
        "test": "the test set",
        "held_out": f"{extras.get('held_out_images', 0):,} held-out training images",
    }[str(judged_on)]
    text += (
        f", judged by {_DEQUANTIZATION[str(extras['judged_by'])]} bpd on {images} every "
        f"{extras['judged_every_epochs']:g} epochs"
    )
    if judged_on == "test":
        text += ", as the authors did (optimistic: the test set both chooses and scores it)"
    return text


def _other_ending(bpd: Measurement) -> str | None:
    """The bpd of the solver ending that did not give the value, where it was computed too."""
    ending = str(bpd.extras["solver_end"])
    (other,) = (end for end in _ENDINGS if end != ending)
    value = bpd.extras.get(f"bpd_{other}_end")
    if value is None:
        return None
    return f"bpd with the solver {_ENDINGS[ending]}, {value:.3f} with it {_ENDINGS[other]}"
