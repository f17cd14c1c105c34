"""Tables and the figure are written atomically or not at all: the destination is checked before
anything is computed, and a failed write (a full disk) leaves the previous files byte-identical."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from repro.cli import main

REPO = Path(__file__).resolve().parents[1]


def _lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.strip()]


@pytest.fixture
def project(runs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with params.yaml and the published tables, so tables land here."""
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    shutil.copytree(REPO / "tables" / "published", tmp_path / "tables" / "published")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _not_computed(monkeypatch: pytest.MonkeyPatch) -> None:
    def computed(*args: object, **kwargs: object) -> None:
        raise AssertionError("computed before the destination was checked")

    monkeypatch.setattr("repro.tables.build_tables", computed)
    monkeypatch.setattr("repro.tables.inputs.TableInputs.results", property(computed))


def _leftovers(folder: Path) -> list[str]:
    return [path.name for path in folder.rglob("*.tmp")]


def test_table_write_replaces_the_files_and_leaves_no_temporary(project):
    result = CliRunner().invoke(main, ["table", "--id", "6", "--profile", "paper", "--write"])
    assert result.exit_code == 0, result.output
    folder = project / "tables" / "paper"
    assert sorted(p.name for p in folder.iterdir()) == ["table6.csv", "table6.md", "table6.tex"]
    assert oct((folder / "table6.md").stat().st_mode & 0o777) == "0o644"
    assert _leftovers(project) == []


def test_a_directory_where_the_table_goes_is_one_line_before_computing(project, monkeypatch):
    folder = project / "tables" / "paper"
    (folder / "table5.md").mkdir(parents=True)
    (folder / "table5.csv").write_text("previous\n")
    _not_computed(monkeypatch)
    result = CliRunner().invoke(main, ["table", "--id", "5", "--profile", "paper", "--write"])
    assert result.exit_code == 1
    assert _lines(result.output) == [
        "error: tables/paper/table5.md: is a directory; remove it or write elsewhere"
    ]
    assert (folder / "table5.csv").read_text() == "previous\n"


def test_a_file_where_the_tables_folder_goes_is_one_line(project, monkeypatch):
    (project / "tables" / "paper").write_text("not a folder")
    _not_computed(monkeypatch)
    result = CliRunner().invoke(main, ["table", "--id", "6", "--profile", "paper", "--write"])
    assert result.exit_code == 1
    (line,) = _lines(result.output)
    assert line.startswith("error: tables/paper/table6.md: cannot create its folder")


def test_a_folder_without_write_permission_is_one_line(project, monkeypatch):
    folder = project / "tables" / "paper"
    folder.mkdir()
    # As root every folder is writable, so the permission is denied by os.access itself.
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != Path("tables/paper"))
    _not_computed(monkeypatch)
    result = CliRunner().invoke(main, ["table", "--id", "6", "--profile", "paper", "--write"])
    assert result.exit_code == 1
    (line,) = _lines(result.output)
    assert line.startswith("error: tables/paper/table6.md: cannot write it") and "writable" in line


def _no_space(*args: object, **kwargs: object) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_leaves_the_previous_table_byte_identical(project, monkeypatch):
    args = ["table", "--id", "6", "--profile", "paper", "--write"]
    assert CliRunner().invoke(main, args).exit_code == 0
    folder = project / "tables" / "paper"
    previous = {path.name: path.read_bytes() + b"old" for path in folder.iterdir()}
    for name, content in previous.items():
        (folder / name).write_bytes(content)
    monkeypatch.setattr(os, "replace", _no_space)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    (line,) = _lines(result.output)
    assert line.startswith("error: tables/paper/table6.md: ") and "No space left" in line
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == previous
    assert _leftovers(project) == []


def test_a_full_disk_leaves_the_previous_figure_byte_identical(project, monkeypatch):
    figure = project / "tables" / "paper" / "fid_vs_temperature.png"
    figure.parent.mkdir(parents=True)
    figure.write_bytes(b"previous figure")
    monkeypatch.setattr(os, "replace", _no_space)
    result = CliRunner().invoke(main, ["plot", "--profile", "paper"])
    assert result.exit_code == 1
    (line,) = _lines(result.output)
    assert line.startswith(f"error: {figure.relative_to(project)}: ") and "No space left" in line
    assert figure.read_bytes() == b"previous figure"
    assert _leftovers(project) == []


def test_the_figure_is_written_in_the_format_of_its_suffix(project):
    result = CliRunner().invoke(main, ["plot", "--profile", "paper", "--out", "fig.svg"])
    assert result.exit_code == 0, result.output
    assert (project / "fig.svg").read_text().lstrip().startswith("<?xml")
    assert _leftovers(project) == []


@pytest.mark.parametrize(
    ("out", "said"), [("tables", "is a directory"), ("fig.nosuch", "cannot write .nosuch files")]
)
def test_an_unwritable_figure_destination_is_one_line_before_computing(
    project, monkeypatch, out, said
):
    _not_computed(monkeypatch)
    result = CliRunner().invoke(main, ["plot", "--profile", "paper", "--out", out])
    assert result.exit_code == 1
    (line,) = _lines(result.output)
    assert line.startswith(f"error: {out}: ") and said in line


@pytest.mark.parametrize(
    "args",
    [
        ["table", "--id", "5", "--write", "--profile", "nosuch"],
        ["plot", "--profile", "nosuch"],
        ["compare", "--profile", "nosuch"],
    ],
)
def test_an_unknown_profile_writes_nothing(project, args):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    (line,) = _lines(result.output)
    assert "unknown profile 'nosuch'" in line
    assert not (project / "tables" / "nosuch").exists()
    assert sorted(p.name for p in (project / "tables").iterdir()) == ["published"]
