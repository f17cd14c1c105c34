"""The FID calibration table: FID between CIFAR10's training split and its test split shuffled in
k×k patches, published beside reproduced (docs/method.md §8); no model is involved."""

from __future__ import annotations

import re

from repro.datasets.registry import DATASETS
from repro.tables.compare import finish_table, make_cell
from repro.tables.inputs import TableInputs
from repro.tables.model import Column, Row, Table
from repro.tables.results import Measurement

TABLE_ID = "calibration"
# The command that produces every reproduced cell (the table's "not run" summary names it).
PRODUCER = "repro eval calibration"
_SECTION = "fid_cifar10_train_vs_shuffled_test"
# A published row's key begins with its patch, e.g. "4x4" or "32x32 (unshuffled test set)".
_PATCH = re.compile(r"(\d+)x\1\b")
_SHUFFLING_NOTE = (
    "Shuffling (our reading of the paper, docs/method.md §8): each test image is cut into k×k "
    "patches whose positions are permuted (a patch's content kept), each image with its own "
    "seeded permutation; k = 1 shuffles every pixel and k = the image side leaves it unshuffled."
)


def patch_of(key: str) -> int:
    """The patch side k of a published row's key."""
    match = _PATCH.match(key)
    if match is None:
        raise ValueError(f"published shuffled-FID key {key!r} does not begin with its k×k")
    return int(match.group(1))


def _settings_note(measured: list[Measurement], *, largest: int) -> str | None:
    """What the reproduced FIDs compared: dataset, image side and image counts."""
    if not measured:
        return None
    extras = measured[0].extras
    side, dataset = int(extras["image_size"]), str(extras["dataset"])
    name = DATASETS[dataset].display_name if dataset in DATASETS else dataset
    beyond = "; a larger k cannot be run at this size" if largest > side else ""
    return (
        f"Reproduced: {extras['test_images']:,} {name} test images at {side}×{side} "
        f"(k = {side}: unshuffled{beyond}) against the first {extras['reference_images']:,} "
        "training images; KID beside FID."
    )


def build_calibration(inputs: TableInputs) -> Table:
    """The FID of the shuffled test split at each published k, ours beside the paper's.

    A published k larger than the reproduced images' side cannot be run at that size: its row
    is shown as a reference.

    Raises:
        ResultsError: The calibration result is malformed or belongs elsewhere.
    """
    published = inputs.published.extras.fid_shuffled_test
    measured = {key: inputs.results.calibration_fid(patch_of(key)) for key in published}
    found = [m for m in measured.values() if m is not None]
    side = int(found[0].extras["image_size"]) if found else None
    rows = []
    for key, fid in published.items():
        beyond = side is not None and patch_of(key) > side
        cell = make_cell(
            inputs,
            metric="fid",
            published=fid,
            producer=None if beyond else PRODUCER,
            measurement=measured[key],
        )
        rows.append(Row(labels=(key,), cells=(cell,)))
    notes = [inputs.published.extras.notes[_SECTION] + ".", _SHUFFLING_NOTE]
    notes.append(_settings_note(found, largest=max(map(patch_of, published))))
    return finish_table(
        inputs,
        table_id=TABLE_ID,
        title="FID of the CIFAR10 test set shuffled in k×k patches, against its training set",
        key_headers=("Patches",),
        columns=(Column("fid", "FID"),),
        rows=rows,
        footnotes=[note for note in notes if note],
    )
