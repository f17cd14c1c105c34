"""Table 7: FID against sampling temperature for three CIFAR10 models."""

from __future__ import annotations

from collections.abc import Mapping

from repro.tables.compare import assign_cells, finish_table, make_cell
from repro.tables.inputs import TableInputs
from repro.tables.model import Column, Row, Table

_PROTOCOL_NOTE = (
    "FID protocol (not stated in the paper; our decision, docs/method.md §6): 50,000 samples per "
    "temperature against the CIFAR10 training set, torch-fidelity with the TF-Inception feature "
    "extractor, KID computed alongside (in the JSON and CSV outputs)."
)


def _sizes_note(inputs: TableInputs, assigned: Mapping[str, str]) -> str:
    """Name the model size behind each row: the paper does not state them, so they are ours."""
    sizes = []
    for model, experiment in assigned.items():
        size = inputs.experiments[experiment].model
        sizes.append(
            f"{model} = {experiment} ({size.resolutions} res × {size.blocks} blocks, "
            f"width {size.width})"
        )
    return "Model sizes are our decision (docs/method.md §6): " + "; ".join(sizes) + "."


def _samples_note(rows: list[Row]) -> str | None:
    """How many samples and seed sets the reproduced FIDs used, and what the KID beside them is."""
    extras = [cell.extras for row in rows for cell in row.cells if cell.extras]
    if not extras:
        return None
    counts = sorted({e["num_samples"] for e in extras})
    note = "Reproduced FIDs used " + " / ".join(f"{n:,}" for n in counts) + " samples"
    # Files written before seed sets existed drew one set.
    sets = sorted({int(e.get("seed_sets", 1)) for e in extras})
    if sets != [1]:
        note += (
            f" per set, {' / '.join(map(str, sets))} sets on disjoint seeds (FID, KID: the first)"
        )
    return f"{note}; KID beside FID: of the same samples, sd = its deviation over subsets."


def table7_experiments(inputs: TableInputs) -> dict[str, str]:
    """Published Table 7 model -> the experiment standing for it, in params.yaml's order.

    Raises:
        TableConfigError: An experiment names no published row, or two name the same one.
    """
    claims = [(f"table7.{e}", e, model) for e, model in inputs.table7.items()]
    published = {row.model for row in inputs.published.table7.rows}
    return assign_cells(claims, table="Table 7", published=published)


def build_table7(inputs: TableInputs) -> Table:
    """Table 7: the models' FID at each temperature, ours beside the paper's.

    params.yaml's ``table7`` names the published row each experiment stands for.

    Raises:
        TableConfigError: An experiment names no published row, or two name the same one.
        ResultsError: A results file is malformed or belongs elsewhere.
    """
    table7 = inputs.published.table7
    assigned = table7_experiments(inputs)
    rows = []
    for row in table7.rows:
        experiment = assigned.get(row.model)
        cells = tuple(
            make_cell(
                inputs,
                metric="fid",
                published=fid,
                producer=experiment,
                measurement=(
                    None if experiment is None else inputs.results.fid(experiment, temperature)
                ),
            )
            for temperature, fid in zip(table7.temperatures, row.fid, strict=True)
        )
        rows.append(Row(labels=(row.model,), cells=cells))
    notes = [table7.note, _PROTOCOL_NOTE, _samples_note(rows)]
    if assigned:
        notes.insert(1, _sizes_note(inputs, assigned))
    return finish_table(
        inputs,
        table_id="7",
        title=table7.title,
        key_headers=("Model",),
        columns=tuple(Column(f"T{t:.2f}", f"FID T={t:g}") for t in table7.temperatures),
        rows=rows,
        footnotes=[note for note in notes if note],
    )
