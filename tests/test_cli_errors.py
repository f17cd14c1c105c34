"""The command line: an anticipated failure is one line and exit status 1; a bug keeps its
traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from repro.cli import main

REPO = Path(__file__).resolve().parents[1]


def _lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.strip()]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["train", "cifar11", "--profile", "smoke"], "unknown experiment 'cifar11'"),
        (["train", "cifar10-1res", "--profile", "huge"], "unknown profile 'huge'"),
        (["train", "cifar10-1res", "--params", "missing.yaml"], "missing.yaml not found"),
        (["sample", "cifar10-1res", "--profile", "smoke"], "no checkpoint at"),
    ],
)
def test_anticipated_failure_is_one_line(
    args: list[str], expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MRCNF_RUNS", str(tmp_path))
    monkeypatch.chdir(REPO)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    lines = _lines(result.output)
    assert len(lines) == 1 and expected in lines[0], result.output


def test_an_os_error_with_a_path_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    def unwritable(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", "runs/smoke/cifar10-1res/config.json")

    monkeypatch.setattr("repro.train.train", unwritable)
    result = CliRunner().invoke(main, ["train", "cifar10-1res", "--profile", "smoke"])
    assert result.exit_code == 1
    assert _lines(result.output) == [
        "error: runs/smoke/cifar10-1res/config.json: Permission denied"
    ]


def test_a_bare_value_error_is_a_bug_and_keeps_its_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def buggy(*args: object, **kwargs: object) -> None:
        raise ValueError("an internal inconsistency")

    monkeypatch.setattr("repro.train.train", buggy)
    runner = CliRunner()
    with pytest.raises(ValueError, match="internal inconsistency"):
        runner.invoke(main, ["train", "cifar10-1res", "--profile", "smoke"], catch_exceptions=False)
