"""Out-of-distribution detection: auROC of the CIFAR10 models on SVHN and TinyImageNet, by bpd
and by S = bpd − L(x), ours beside the paper's (docs/method.md §8)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from repro.datasets.registry import DATASETS
from repro.results import OodResult, OodSetScores
from repro.tables.compare import assign_cells, finish_table, make_cell
from repro.tables.inputs import TableInputs
from repro.tables.model import Column, Row, Table
from repro.tables.plausibility import Problem, result_problems
from repro.tables.results import Measurement

# Published column -> the set it scores and our score. The paper heads the bpd columns "−bpd",
# but their values (0.05-0.08 on SVHN, which flows find likelier than CIFAR10) are the auROC of
# the bpd itself with the out-of-distribution images positive.
_COLUMNS: dict[str, tuple[str, str]] = {
    "svhn_neg_bpd": ("svhn", "bpd"),
    "svhn_S": ("svhn", "S"),
    "tinyimagenet_neg_bpd": ("tinyimagenet", "bpd"),
    "tinyimagenet_S": ("tinyimagenet", "S"),
}
_REFERENCE_ROW = "Glow"
_DIRECTION_NOTE = (
    "auROC with the out-of-distribution images as positives and a larger score as more "
    "out-of-distribution, of the bpd and of S = bpd − L(x); the paper heads the bpd columns "
    "'−bpd', but its values fit the bpd itself (docs/method.md §8). Glow's row is the paper's "
    "quotation of Serrà et al. (2020); nothing reproduces it."
)


def ood_experiments(inputs: TableInputs) -> dict[str, str]:
    """Published row -> the Table 7 experiment standing for it: the row of its number of
    resolutions ("2-res MRCNF" for 2), in params.yaml's order.

    Raises:
        TableConfigError: No row has an experiment's number of resolutions, or two experiments
            have the same number.
    """
    rows = [row for row in inputs.published.extras.ood_auroc if row != _REFERENCE_ROW]
    claims = []
    for experiment in inputs.table7:
        prefix = f"{inputs.experiments[experiment].model.resolutions}-res "
        row = next((row for row in rows if row.startswith(prefix)), f"{prefix}model")
        claims.append((f"table7.{experiment}", experiment, row))
    return assign_cells(claims, table="out-of-distribution table", published=rows)


def build_ood(inputs: TableInputs) -> Table:
    """The out-of-distribution table: each model's auROC per set and score, ours beside the
    paper's; Glow's row as a reference.

    Raises:
        TableConfigError: The Table 7 experiments do not map onto the published rows.
        ResultsError: A results file is malformed or belongs elsewhere.
    """
    published = inputs.published.extras.ood_auroc
    assigned = ood_experiments(inputs)
    rows, read = [], {}
    for model, printed in published.items():
        experiment = assigned.get(model)
        result = None if experiment is None else inputs.results.ood(experiment)
        if result is not None:
            read[experiment] = result
        cells = tuple(
            make_cell(
                inputs,
                metric="auroc",
                published=printed.get(column),
                producer=experiment,
                measurement=None if result is None else _measurement(inputs, result, *scored),
            )
            for column, scored in _COLUMNS.items()
        )
        rows.append(Row(labels=(model,), cells=cells))
    notes = [inputs.published.extras.notes.get("ood_auroc_cifar10_trained"), _DIRECTION_NOTE]
    notes += [_models_note(inputs, assigned), *_sets_notes(read.values())]
    return finish_table(
        inputs,
        table_id="ood",
        title="Out-of-distribution detection (auROC), models trained on CIFAR10",
        key_headers=("Model",),
        columns=tuple(
            Column(f"{name}.{score}", f"{DATASETS[name].display_name} {score}")
            for name, score in _COLUMNS.values()
        ),
        rows=rows,
        footnotes=[note for note in notes if note],
    )


def _measurement(
    inputs: TableInputs, result: OodResult, column: str, score: str
) -> Measurement | None:
    """Our auROC of one set and score, or None where the result has no set for the column."""
    entries = [entry for entry in result.sets if entry.column == column]
    if not entries:
        return None
    entry = entries[0]
    path = inputs.layout.run(result.experiment).ood
    by_bpd = score == "bpd"
    extras: dict[str, float | int | str] = {
        "set": entry.name,
        "score": score,
        "num_images_in": result.num_images,
        "num_images_out": entry.num_images,
        "mean_in": result.bpd if by_bpd else result.bpd - result.code_length,
        "mean_out": entry.bpd if by_bpd else entry.bpd - entry.code_length,
        "checkpoint": result.checkpoint,
    }
    if by_bpd:
        extras.update(
            {f"auroc_level{i}": value for i, value in enumerate(entry.auroc_per_resolution)}
        )
    problems = [Problem(path, text) for text in result_problems(result)]
    problems += [Problem(path, f"{column}: {text}") for text in _set_problems(entry)]
    return Measurement(
        entry.auroc_bpd if by_bpd else entry.auroc_S,
        path,
        result.provenance,
        extras,
        problems=tuple(problems),
    )


def _set_problems(entry: OodSetScores) -> list[str]:
    """A set's impossible values: a non-finite number, an auROC outside [0, 1]."""
    problems = list(result_problems(entry))
    aurocs = {"auroc_bpd": entry.auroc_bpd, "auroc_S": entry.auroc_S}
    aurocs.update(
        {f"auroc_per_resolution[{i}]": v for i, v in enumerate(entry.auroc_per_resolution)}
    )
    # A NaN is named by result_problems already.
    problems += [
        f"{name} is {value:g} (an auROC lies in [0, 1])"
        for name, value in aurocs.items()
        if math.isfinite(value) and not 0 <= value <= 1
    ]
    return problems


def _models_note(inputs: TableInputs, assigned: Mapping[str, str]) -> str | None:
    if not assigned:
        return None
    sizes = []
    for model, experiment in assigned.items():
        size = inputs.experiments[experiment].model
        sizes.append(f"{model} = {experiment} ({size.resolutions} res × {size.blocks} blocks)")
    return "Models: Table 7's, our decision (docs/method.md §6): " + "; ".join(sizes) + "."


def _sets_notes(results: Iterable[OodResult]) -> list[str]:
    """What was scored for each column where it is not the published set (a stand-in), and the
    compressor behind L(x), as the result files record them."""
    notes = {}
    for result in results:
        effort = result.settings.get("ood", {}).get("compressor", {}).get("effort")
        versions = ", ".join(f"{k} {v}" for k, v in sorted(result.codec.items()))
        notes[f"L(x): JPEG XL lossless (effort {effort}; {versions}), whole codestream."] = None
        for entry in result.sets:
            if entry.name != entry.column:
                column = DATASETS[entry.column].display_name
                where = f"{column} columns ({result.profile} profile)"
                notes[f"{where}: {entry.name}, {entry.description}."] = None
    return list(notes)
