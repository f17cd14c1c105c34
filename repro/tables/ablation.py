"""The transform ablation: the Haar wavelet against the MRCNF transform, each with and without
multi-resolution noise, laid out as Table 5 (bpd, params, hours for CIFAR10 and ImageNet64)."""

from __future__ import annotations

from repro.tables.compare import finish_table
from repro.tables.inputs import TableInputs
from repro.tables.model import Column, Row, Table
from repro.tables.table5 import PARAMS_NOTE, Section, cell_columns, cell_rows, run_footnotes

TITLE = "Transform ablation: Haar vs MRCNF, with and without multi-resolution noise"
DATASETS = ("cifar10", "imagenet64")
_WITH, _WITHOUT = "w/ multi-res noise", "w/o multi-res noise"
_ARMS_NOTE = (
    "The MRCNF rows with multi-resolution noise are Table 5's experiments themselves; every arm "
    "has the size of its Table 5 small model. Haar: the paper's definition (details divided by 2, "
    "log ½ per coarse dimension); model.detail_logit: true gives the authors' code's form."
)


def _noise_note(rows: list[Row], columns: tuple[Column, ...]) -> str | None:
    """How far the arms with and without multi-resolution noise are apart where both ran.

    The noise is a fixed scale after each level's CNF with a base of the same scale: log p,
    gradients and samples are unchanged, so the two arms of one seed differ by rounding only.
    """
    by_model = {row.labels[0]: row for row in rows}
    gaps = []
    for model, with_noise in by_model.items():
        without = by_model.get(model.replace(_WITH, _WITHOUT)) if _WITH in model else None
        if without is None:
            continue
        for column, ours, twin in zip(columns, with_noise.cells, without.cells, strict=True):
            if ours.metric == "bpd" and None not in (ours.reproduced, twin.reproduced):
                gap = abs(ours.reproduced - twin.reproduced)
                gaps.append(f"{model.split(',')[0]}, {column.header}: {gap:.4f}")
    if not gaps:
        return None
    return (
        "Multi-resolution noise is a reparametrisation (log p, gradients and samples unchanged), "
        "and each pair of arms runs with one seed; |Δbpd| with vs without: "
        + "; ".join(gaps)
        + ". The paper's differences between such rows are run-to-run variation."
    )


def build_ablation(inputs: TableInputs) -> Table:
    """The ablation's published rows, with the arms' numbers beside the printed ones.

    Raises:
        TableConfigError: An experiment names no published cell, or two name the same one.
        ResultsError: A results file is malformed or belongs elsewhere.
    """
    published = inputs.published.extras
    sections = [Section("", published.ablation_transform, DATASETS)]
    rows, cell_notes = cell_rows(
        inputs, sections, datasets=DATASETS, paper_cell="ablation", table="transform ablation"
    )
    columns = cell_columns(DATASETS)
    notes = [published.notes["ablation_transform"], _ARMS_NOTE, _noise_note(rows, columns)]
    return finish_table(
        inputs,
        table_id="ablation",
        title=TITLE,
        key_headers=("Model",),
        columns=columns,
        rows=rows,
        footnotes=[*[n for n in notes if n], *run_footnotes(sections, rows), PARAMS_NOTE],
        cell_notes=cell_notes,
    )
