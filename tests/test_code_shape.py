"""The shape the code keeps: no function over 80 lines, no file over 400, and the training loop's
function at most 60, so that each reads in one screen."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCES = sorted([*REPO.glob("mrcnf/**/*.py"), *REPO.glob("repro/**/*.py")])
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 80
MAX_TRAINING_LOOP_LINES = 60


def _functions(path: Path) -> dict[str, int]:
    tree = ast.parse(path.read_text())
    return {
        node.name: node.end_lineno - node.lineno + 1
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_files_and_functions_stay_short(path: Path) -> None:
    assert len(path.read_text().splitlines()) <= MAX_FILE_LINES
    long = {name: n for name, n in _functions(path).items() if n > MAX_FUNCTION_LINES}
    assert not long


def test_the_training_loop_reads_in_one_screen() -> None:
    assert _functions(REPO / "repro" / "train.py")["train"] <= MAX_TRAINING_LOOP_LINES
