"""The paper's published numbers (``tables/published/*.yaml``), loaded and validated.

The YAML files are hand transcriptions of the paper. A slip there would silently become a wrong
comparison, so every file is checked against a hand-written schema on load, and a violation raises
:class:`PublishedDataError` with one line naming the file and the key path.

Numbers keep the text they were printed with (:class:`PrintedNumber`) because the printed precision
is part of the data: Table 6 prints ``1.10``, and comparing an exact parameter count "at printed
precision" needs those two decimals, which a plain float would lose.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import yaml

from repro.datasets.registry import DATASETS
from repro.errors import ReproError
from repro.published.data import (
    CELL_METRICS,
    FAILS_TO_TRAIN,
    IMAGENET128,
    Extras,
    PrintedNumber,
    Published,
    PublishedCell,
    Table5,
    Table5Group,
    Table5Row,
    Table6,
    Table6Row,
    Table7,
    Table7Row,
)

# repro/published/load.py -> the repository root.
REPO_ROOT = Path(__file__).resolve().parents[2]
PUBLISHED_DIR = REPO_ROOT / "tables" / "published"

_T = TypeVar("_T")


class PublishedDataError(ReproError):
    """A published-data file is missing, unreadable or breaks the schema (one-line message)."""


class _PrintedLoader(yaml.SafeLoader):
    """Safe YAML loader that keeps each number's printed text beside its value."""


for _kind in ("int", "float"):
    _base = getattr(yaml.SafeLoader, f"construct_yaml_{_kind}")
    _PrintedLoader.add_constructor(
        f"tag:yaml.org,2002:{_kind}",
        lambda loader, node, base=_base: PrintedNumber(float(base(loader, node)), node.value),
    )


@dataclass(frozen=True)
class _Node:
    """One YAML value and the key path that reached it, so that any error can name both."""

    value: Any
    file: str
    path: str = ""

    def fail(self, problem: str) -> NoReturn:
        raise PublishedDataError(f"{self.file}: {self.path or '(top level)'} {problem}")

    def path_to(self, key: str | int) -> str:
        if isinstance(key, int):
            return f"{self.path}[{key}]"
        return f"{self.path}.{key}" if self.path else key

    def child(self, key: str | int) -> _Node:
        return _Node(self.value[key], self.file, self.path_to(key))

    def entries(self) -> dict[str, _Node]:
        if not isinstance(self.value, dict) or not self.value:
            self.fail("must be a non-empty mapping")
        for key in self.value:
            if not isinstance(key, str):
                self.fail(f"has key {key}, expected text keys")
        return {key: self.child(key) for key in self.value}

    def mapping(
        self, *, required: Collection[str] = (), optional: Collection[str] = ()
    ) -> dict[str, _Node]:
        fields = self.entries()
        known = (*required, *optional)
        for key, node in fields.items():
            if key not in known:
                node.fail(f"is not a known key (expected one of: {', '.join(known)})")
        for key in required:
            if key not in fields:
                _Node(None, self.file, self.path_to(key)).fail("is missing")
        return fields

    def sequence(self) -> list[_Node]:
        if not isinstance(self.value, list) or not self.value:
            self.fail("must be a non-empty list")
        return [self.child(index) for index in range(len(self.value))]

    def text(self) -> str:
        if not isinstance(self.value, str) or not self.value:
            self.fail(f"is {self.value!r}, expected non-empty text")
        return self.value

    def number(self) -> PrintedNumber:
        if not isinstance(self.value, PrintedNumber):
            self.fail(f"is {self.value!r}, expected a number")
        return self.value

    def integer(self) -> int:
        number = self.number()
        if number.decimals or not number.value.is_integer():
            self.fail(f"is {number.text}, expected a whole number")
        return int(number.value)


def _optional(fields: Mapping[str, _Node], key: str, parse: Callable[[_Node], _T]) -> _T | None:
    """Parse ``fields[key]``; an absent key and an explicit null both mean a blank cell."""
    node = fields.get(key)
    return None if node is None or node.value is None else parse(node)


def _bpd(node: _Node) -> PrintedNumber | str:
    if node.value == FAILS_TO_TRAIN:
        return FAILS_TO_TRAIN
    if not isinstance(node.value, PrintedNumber):
        node.fail(f'is {node.value!r}, expected a number or "{FAILS_TO_TRAIN}"')
    return node.value


def _hours(node: _Node) -> PrintedNumber | str:
    # The paper prints text such as ">=5days" where it has no number of hours.
    return node.text() if isinstance(node.value, str) else node.number()


def _mark(node: _Node, *, marks: Mapping[str, str]) -> str:
    mark = node.text()
    if mark not in marks:
        node.fail(f"is {mark!r}, not one of the marks listed in `marks` ({', '.join(marks)})")
    return mark


def _cell(fields: Mapping[str, _Node], *, marks: Mapping[str, str]) -> PublishedCell:
    return PublishedCell(
        bpd=_optional(fields, "bpd", _bpd),
        params=_optional(fields, "params", _Node.number),
        hours=_optional(fields, "hours", _hours),
        mark=_optional(fields, "mark", partial(_mark, marks=marks)),
    )


def _table5_row(node: _Node, *, datasets: tuple[str, ...], marks: Mapping[str, str]) -> Table5Row:
    fields = node.mapping(required=("model",), optional=("note", *datasets))
    cell_keys = (*CELL_METRICS, "mark")
    cells = {
        dataset: _cell(fields[dataset].mapping(optional=cell_keys), marks=marks)
        for dataset in datasets
        if dataset in fields and fields[dataset].value is not None
    }
    return Table5Row(fields["model"].text(), cells, _optional(fields, "note", _Node.text))


def _imagenet128_row(node: _Node, *, marks: Mapping[str, str]) -> Table5Row:
    # The ImageNet128 table is printed flat: the cell's keys sit on the row itself.
    fields = node.mapping(required=("model",), optional=("note", *CELL_METRICS, "mark"))
    cells = {IMAGENET128: _cell(fields, marks=marks)}
    return Table5Row(fields["model"].text(), cells, _optional(fields, "note", _Node.text))


def _rows(
    node: _Node,
    parse: Callable[[_Node], _T],
    *,
    key: Callable[[_T], object] = lambda row: row.model,
    seen: dict[object, str] | None = None,
) -> tuple[_T, ...]:
    """Parse a list; an entry whose ``key`` repeats an earlier one (or one in ``seen``) fails."""
    seen = {} if seen is None else seen
    rows = []
    for item in node.sequence():
        row = parse(item)
        if key(row) in seen:
            item.fail(f"repeats {seen[key(row)]}")
        seen[key(row)] = item.path
        rows.append(row)
    return tuple(rows)


def _dataset(node: _Node) -> str:
    # Tables print a dataset by its registered display name, so an unregistered key is a slip.
    name = node.text()
    if name not in DATASETS:
        node.fail(f"is {name!r}, not a registered dataset ({', '.join(DATASETS)})")
    return name


def _table5(root: _Node) -> Table5:
    fields = root.mapping(required=("title", "datasets", "marks", "groups", "imagenet128"))
    datasets = tuple(_dataset(node) for node in fields["datasets"].sequence())
    marks = {key: node.text() for key, node in fields["marks"].entries().items()}
    row = partial(_table5_row, datasets=datasets, marks=marks)
    models: dict[object, str] = {}  # a model name is unique across all groups

    def group(node: _Node) -> Table5Group:
        entries = node.mapping(required=("name", "rows"))
        return Table5Group(entries["name"].text(), _rows(entries["rows"], row, seen=models))

    groups = _rows(fields["groups"], group, key=lambda g: g.name)
    imagenet128 = _rows(fields["imagenet128"], partial(_imagenet128_row, marks=marks))
    return Table5(fields["title"].text(), datasets, marks, groups, imagenet128)


def _table6_row(node: _Node) -> Table6Row:
    fields = node.mapping(required=("resolutions", "channels", "blocks", "params"))
    return Table6Row(
        resolutions=fields["resolutions"].integer(),
        channels=fields["channels"].integer(),
        blocks=fields["blocks"].integer(),
        params=fields["params"].number(),
    )


def _table6(root: _Node) -> Table6:
    fields = root.mapping(required=("title", "rows"), optional=("note",))
    rows = _rows(fields["rows"], _table6_row, key=lambda r: (r.resolutions, r.channels, r.blocks))
    return Table6(fields["title"].text(), _optional(fields, "note", _Node.text) or "", rows)


def _per_column_values(node: _Node, *, expected: int, per: str) -> tuple[PrintedNumber, ...]:
    values = node.sequence()
    if len(values) != expected:
        node.fail(f"has {len(values)} values, expected {expected} (one per {per})")
    return tuple(value.number() for value in values)


def _table7(root: _Node) -> Table7:
    fields = root.mapping(required=("title", "temperatures", "rows"), optional=("note",))
    # Reproduced FIDs are filed under the temperature with two decimals (``T0.50.json``).
    temperatures = _rows(
        fields["temperatures"], lambda node: node.number().value, key=lambda t: f"{t:.2f}"
    )

    def row(node: _Node) -> Table7Row:
        entries = node.mapping(required=("model", "fid"))
        fid = _per_column_values(entries["fid"], expected=len(temperatures), per="temperature")
        return Table7Row(entries["model"].text(), fid)

    rows = _rows(fields["rows"], row)
    note = _optional(fields, "note", _Node.text) or ""
    return Table7(fields["title"].text(), note, temperatures, rows)


_EXTRAS_SECTIONS = {
    "fid_cifar10_train_vs_shuffled_test": ("note", "values"),
    "ood_auroc_cifar10_trained": ("note", "columns", "rows"),
    "ablation_transform": ("note", "rows"),
}


def _extras(root: _Node, *, table5: Table5) -> Extras:
    fields = root.mapping(required=tuple(_EXTRAS_SECTIONS))
    sections = {
        name: fields[name].mapping(required=keys) for name, keys in _EXTRAS_SECTIONS.items()
    }
    shuffled, ood, ablation = sections.values()
    columns = tuple(node.text() for node in ood["columns"].sequence())

    def score_row(node: _Node) -> tuple[str, dict[str, PrintedNumber]]:
        entries = node.mapping(required=("model", "values"))
        scores = _per_column_values(entries["values"], expected=len(columns), per="column")
        return entries["model"].text(), dict(zip(columns, scores, strict=True))

    ablation_row = partial(_table5_row, datasets=table5.datasets, marks=table5.marks)
    return Extras(
        notes={name: section["note"].text() for name, section in sections.items()},
        fid_shuffled_test={k: node.number() for k, node in shuffled["values"].entries().items()},
        ood_auroc=dict(_rows(ood["rows"], score_row, key=lambda row: row[0])),
        ablation_transform=_rows(ablation["rows"], ablation_row),
    )


def _display(path: Path) -> str:
    """Name ``path`` relative to the repository when it lies inside it, as users know it."""
    resolved = path.resolve()
    return str(resolved.relative_to(REPO_ROOT)) if resolved.is_relative_to(REPO_ROOT) else str(path)


def _read(path: Path) -> _Node:
    name = _display(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise PublishedDataError(f"{name}: cannot be read ({error.strerror})") from None
    try:
        data = yaml.load(text, Loader=_PrintedLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise PublishedDataError(f"{name}: is not valid YAML{where}") from None
    return _Node(data, name)


def load_published(directory: Path = PUBLISHED_DIR) -> Published:
    """Load and validate the published tables.

    Args:
        directory: folder holding ``table5.yaml``, ``table6.yaml``, ``table7.yaml`` and
            ``extras.yaml`` (default: the repository's ``tables/published``).

    Returns:
        The published numbers as frozen dataclasses.

    Raises:
        PublishedDataError: a file is missing, is not YAML, or breaks the schema; the one-line
            message names the file and the key path.
    """
    table5 = _table5(_read(directory / "table5.yaml"))
    return Published(
        table5=table5,
        table6=_table6(_read(directory / "table6.yaml")),
        table7=_table7(_read(directory / "table7.yaml")),
        extras=_extras(_read(directory / "extras.yaml"), table5=table5),
    )
