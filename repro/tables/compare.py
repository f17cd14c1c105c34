"""The comparison logic all table builders share: one cell, which experiment fills which cell,
and the footnotes every table carries."""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable, Iterable, Mapping
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from repro.errors import ReproError
from repro.published import FAILS_TO_TRAIN, PrintedNumber
from repro.tables.model import Cell, Column, Row, Status, Table
from repro.tables.results import Measurement

if TYPE_CHECKING:
    from repro.tables.inputs import TableInputs

# Float noise must not flip a status: 3.70 - 3.65 is 0.05000000000000027, within a 0.05 tolerance.
_SLACK = 1e-9


class TableConfigError(ReproError):
    """params.yaml's experiments or tolerances do not fit the published tables (one line)."""


@dataclass(frozen=True)
class Metric:
    """How one kind of number is compared and shown.

    ``tolerance`` names the entry of the tolerances mapping (``None``: the values must match
    exactly after ``compared``); ``relative`` scales it by the published value; ``rule`` states
    the test for a footnote, formatted with that tolerance. ``difference_format`` ``None`` means
    "at the printed precision". ``detail`` turns a cell's extras into a companion number shown
    beside ours (e.g. KID beside FID), or ``None`` where they lack it. ``uncertainty`` says what
    the standard error of a reproduced value is, for metrics whose values carry one.
    """

    header: str
    rule: str
    tolerance: str | None
    relative: bool
    value_format: str
    difference_format: str | None
    compared: Callable[[float, PrintedNumber], float]
    # Counts of the paper's own architectures do not shrink with a non-comparable profile.
    profile_independent: bool = False
    detail: Callable[[Mapping[str, float | int | str]], str | None] | None = None
    uncertainty: str | None = None


def _as_is(value: float, printed: PrintedNumber) -> float:
    return value


def _kid(extras: Mapping[str, float | int | str]) -> str | None:
    """KID and its own standard deviation over subsets, as the FID's companion.

    Written "sd", not "±": ``±`` is kept for the uncertainties that verdicts weigh.
    """
    if "kid_mean" not in extras or "kid_std" not in extras:
        return None
    return f"KID {extras['kid_mean']:.4f} (sd {extras['kid_std']:.4f})"


def _bin_centre(extras: Mapping[str, float | int | str]) -> str | None:
    """The bin-centre bpd beside the uniform one compared: the authors' code logged that one."""
    if "bpd_bin_centre" not in extras:
        return None
    return f"bin-centre {extras['bpd_bin_centre']:.3f}"


def _ood_means(extras: Mapping[str, float | int | str]) -> str | None:
    """The mean score of the in- and out-of-distribution images beside their auROC."""
    if not {"score", "mean_in", "mean_out"} <= set(extras):
        return None
    return f"mean {extras['score']} {extras['mean_in']:.2f} in, {extras['mean_out']:.2f} out"


def _millions_as_printed(count: float, printed: PrintedNumber) -> float:
    """Round an exact count to millions at the printed precision (half up, as people round)."""
    quantum = Decimal(1).scaleb(-printed.decimals)
    millions = Decimal(int(count)) / Decimal(10**6)
    return float(millions.quantize(quantum, rounding=ROUND_HALF_UP))


METRICS: dict[str, Metric] = {
    "bpd": Metric(
        header="bpd",
        rule="|Δbpd| ≤ {:g}",
        tolerance="bpd",
        relative=False,
        value_format="{:.3f}",
        difference_format="{:+.3f}",
        compared=_as_is,
        detail=_bin_centre,
        uncertainty="bpd: the standard error of the mean over the test images",
    ),
    "params": Metric(
        header="params (M)",
        rule="parameter counts equal at the printed precision",
        tolerance=None,
        relative=False,
        value_format="{:,.0f}",
        difference_format=None,
        compared=_millions_as_printed,
        profile_independent=True,
    ),
    "hours": Metric(
        header="hours",
        rule="hours within {:.0%}",
        tolerance="hours_relative",
        relative=True,
        value_format="{:.2f}",
        difference_format="{:+.2f}",
        compared=_as_is,
    ),
    "fid": Metric(
        header="FID",
        rule="FID within {:.0%}",
        tolerance="fid_relative",
        relative=True,
        value_format="{:.2f}",
        difference_format="{:+.2f}",
        compared=_as_is,
        detail=_kid,
        uncertainty="FID: its standard deviation over disjoint seed sets of samples",
    ),
    "auroc": Metric(
        header="auROC",
        rule="|ΔauROC| ≤ {:g}",
        tolerance="auroc_absolute",
        relative=False,
        value_format="{:.3f}",
        difference_format="{:+.3f}",
        compared=_as_is,
        detail=_ood_means,
    ),
}

# The mark of a verdict its reproduced value's uncertainty cannot decide (see uncertainty_note).
UNRESOLVED_MARK = "†"
# How many standard errors from the tolerance's edge leave a verdict unresolved.
UNRESOLVED_STANDARD_ERRORS = 2


def check_tolerances(tolerances: Mapping[str, Any]) -> None:
    """Require every tolerance the metrics use, as a non-negative number.

    Raises:
        TableConfigError: a tolerance is missing or not a non-negative number.
    """
    for key in sorted({m.tolerance for m in METRICS.values() if m.tolerance is not None}):
        value = tolerances.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise TableConfigError(f"tolerances.{key} is {value!r}, expected a number >= 0")


def make_cell(
    inputs: TableInputs,
    *,
    metric: str,
    published: PrintedNumber | str | None,
    mark: str | None = None,
    producer: str | None,
    measurement: Measurement | None,
) -> Cell:
    """Compare one reproduced value with its published one.

    ``metric`` is a key of :data:`METRICS`; ``published`` the printed value (``"x"``: fails to
    train; ``None``: blank) and ``mark`` the mark printed beside it; ``producer`` the experiment
    (or results file) meant to reproduce it, ``None`` for a reference cell that nothing
    reproduces; ``measurement`` our value, ``None`` if it has not been produced.

    A compared cell is reproduced when |difference| is within the tolerance and differs
    otherwise; it is also marked unresolved when our value has a standard error ``se`` and
    ``| |difference| - tolerance | <= UNRESOLVED_STANDARD_ERRORS · se`` (2 standard errors).
    Before any of that, a measurement with impossible values is invalid (nothing of it shown)
    and one resting on something unverified is unverified (shown): neither is ever compared.
    """
    if producer is None:
        return Cell(metric, Status.REFERENCE, published, mark)
    if measurement is None:
        return Cell(metric, Status.NOT_RUN, published, mark, producer=producer)
    # Where the number came from is kept even for an invalid one: its footnote names the file.
    found = Cell(
        metric,
        Status.INVALID,
        published,
        mark,
        producer=producer,
        source=measurement.source,
        provenance=measurement.provenance,
        problems=measurement.problems,
    )
    if measurement.problems:
        return found
    measured = replace(
        found,
        status=Status.NOT_COMPARABLE,
        reproduced=measurement.value,
        extras=measurement.extras,
        standard_error=measurement.standard_error,
        unverified=measurement.unverified,
    )
    # Said whatever the profile: it is about the number itself, not what it is compared with.
    if measurement.unverified is not None:
        return replace(measured, status=Status.UNVERIFIED)
    # Precedence: a number of a non-comparable profile is never compared, even with an "x".
    if not (inputs.comparable or METRICS[metric].profile_independent):
        return measured
    if published == FAILS_TO_TRAIN:
        return replace(measured, status=Status.PUBLISHED_FAILING)
    if not isinstance(published, PrintedNumber):
        return replace(measured, status=Status.UNPUBLISHED)
    return _verdict(inputs, measured, published, value=measurement.value)


def _verdict(
    inputs: TableInputs, measured: Cell, published: PrintedNumber, *, value: float
) -> Cell:
    """``measured`` (our ``value``) reproduced or differing from ``published``, and whether its
    standard error leaves that unresolved."""
    rule = METRICS[measured.metric]
    compared = rule.compared(value, published)
    difference = compared - published.value
    allowed = 0.0 if rule.tolerance is None else inputs.tolerances[rule.tolerance]
    if rule.relative:
        allowed *= abs(published.value)
    within = abs(difference) <= allowed + _SLACK
    error = measured.standard_error
    return replace(
        measured,
        status=Status.REPRODUCED if within else Status.DIFFERS,
        compared=compared,
        difference=difference,
        relative_difference=difference / abs(published.value) if published.value else None,
        # Our value's noise could carry it across the tolerance's edge, either way.
        unresolved=(
            error is not None
            and abs(abs(difference) - allowed) <= UNRESOLVED_STANDARD_ERRORS * error
        ),
    )


def assign_cells(
    claims: Iterable[tuple[str, str, Hashable]], *, table: str, published: Collection[Hashable]
) -> dict[Hashable, str]:
    """Map each published cell to the experiment that fills it.

    ``claims`` holds, per experiment that names a cell of ``table``: where params.yaml names it
    (for messages), the experiment id and the cell's key.

    Raises:
        TableConfigError: A claim names no cell of ``published``, or two claim the same cell.
    """
    assigned: dict[Hashable, str] = {}
    owner: dict[Hashable, str] = {}
    for where, experiment, key in claims:
        if key not in published:
            raise TableConfigError(
                f"{where} names {key!r}, which is not in the published {table}: "
                "name it as the paper prints it"
            )
        if key in assigned:
            raise TableConfigError(
                f"{where} names the same {table} cell as {owner[key]}: one experiment per cell"
            )
        assigned[key], owner[key] = experiment, where
    return assigned


def short_commit(commit: str) -> str:
    """Shorten a commit id, keeping a suffix such as ``+dirty`` that qualifies it."""
    sha, plus, suffix = commit.partition("+")
    return f"{sha[:12]}{plus}{suffix}"


def _provenance_footnotes(rows: Iterable[Row]) -> list[str]:
    provenances = [c.provenance for row in rows for c in row.cells if c.provenance is not None]
    # Dates differ per file and are left out, so one line covers a whole batch of runs.
    notes = (
        f"Reproduced with profile '{p.profile}' on {p.hardware.device} "
        f"(torch {p.hardware.torch}), "
        f"commit {short_commit(p.git_commit)}, params.yaml hash {p.params_hash[:12]}."
        for p in provenances
    )
    return list(dict.fromkeys(notes))


def uncertainty_note(rows: Iterable[Row]) -> str | None:
    """Explain ``±`` and the unresolved mark, where some cell of ``rows`` shows them."""
    cells = [cell for row in rows for cell in row.cells]
    with_error = dict.fromkeys(c.metric for c in cells if c.standard_error is not None)
    if not with_error:
        return None
    meanings = "; ".join(str(METRICS[metric].uncertainty) for metric in with_error)
    note = f"± gives the uncertainty of our value ({meanings})."
    if any(cell.unresolved for cell in cells):
        note += (
            f" A verdict marked {UNRESOLVED_MARK} is unresolved: |difference| is within "
            f"{UNRESOLVED_STANDARD_ERRORS} standard errors of the tolerance, so our value's "
            "uncertainty cannot decide it."
        )
    return note


def validity_notes(rows: Iterable[Row], *, runs: Path) -> list[str]:
    """Footnotes on the values that are not compared for what they are, not what they show.

    Args:
        rows: The table's rows.
        runs: The profile's results folder, which unverified files are named relative to.

    Returns:
        One footnote per file with impossible values (``invalid: <file>: <what is wrong>; ...``),
        then one per reason values are unverified, naming their files; empty where every value
        is sound.
    """
    cells = [cell for row in rows for cell in row.cells]
    invalid: dict[Path, dict[str, None]] = {}
    for problem in (problem for cell in cells for problem in cell.problems):
        invalid.setdefault(problem.source, {})[problem.text] = None
    notes = [
        f"invalid: {source}: {'; '.join(texts)}; not shown, never compared."
        for source, texts in invalid.items()
    ]
    unverified: dict[str, dict[str, None]] = {}
    for cell in cells:
        if cell.unverified is not None and cell.source is not None:
            source = cell.source
            name = source.relative_to(runs) if source.is_relative_to(runs) else source
            unverified.setdefault(cell.unverified, {})[str(name)] = None
    notes += [
        f"unverified (in {runs}): {', '.join(files)}: {reason}; shown, never compared with the "
        "paper."
        for reason, files in unverified.items()
    ]
    return notes


def finish_table(
    inputs: TableInputs,
    *,
    table_id: str,
    title: str,
    key_headers: tuple[str, ...],
    columns: tuple[Column, ...],
    rows: list[Row],
    footnotes: list[str],
    cell_notes: Mapping[str, str] | None = None,
) -> Table:
    """Assemble a :class:`Table`, adding the footnotes every table shares.

    Those are: the warning of a non-comparable profile (also put in the title), the tolerances of
    the table's metrics, what ``±`` and the unresolved mark mean (where cells show them), the
    invalid and unverified values (:func:`validity_notes`), and one line per distinct provenance
    of the reproduced cells (profile, hardware, commit).
    ``cell_notes`` (mark -> footnote) are the footnotes the cells of ``rows`` refer to by mark.
    """
    profile = inputs.profile
    shared = []
    if not inputs.comparable:
        title = f"{title} [{profile} profile: not comparable with the paper]"
        shared.append(
            f"Profile '{profile}' runs shrunk settings (comparable: false in params.yaml): its "
            "numbers are shown but never compared with the paper's."
        )
    else:
        metrics = [METRICS[m] for m in dict.fromkeys(c.metric for r in rows for c in r.cells)]
        rules = (
            m.rule.format(inputs.tolerances[m.tolerance]) if m.tolerance else m.rule
            for m in metrics
        )
        shared.append(f"Counted as reproduced: {'; '.join(rules)}.")
    shared += [note for note in (uncertainty_note(rows),) if note]
    shared += validity_notes(rows, runs=inputs.layout.runs)
    shared += _provenance_footnotes(rows)
    return Table(
        id=table_id,
        title=title,
        profile=profile,
        key_headers=key_headers,
        columns=columns,
        rows=tuple(rows),
        footnotes=tuple(dict.fromkeys([*footnotes, *shared])),
        cell_notes=dict(cell_notes or {}),
    )
