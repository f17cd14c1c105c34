"""docs/method.md: the repository's own account of the method, cited as "docs/method.md §N".

References to it must name sections that exist, and nothing may point at reference material that
lives outside the repository.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "method.md"
# What users see: code, configuration, published tables, documentation.
SCANNED = (
    "mrcnf",
    "repro",
    "tests",
    "docs",
    "tables/published",
    "params.yaml",
    "dvc.yaml",
    "README.md",
)
TEXT_SUFFIXES = {".py", ".md", ".yaml", ".yml", ".json", ".toml", ".txt", ".sh", ".cfg"}
# References to material outside the repository (spelled in pieces: this file is not scanned,
# but a plain search of the repository for the old name should find nothing here either).
_OLD = "method".upper()
FORBIDDEN = (f"{_OLD}.md", f"{_OLD} §", "shared/paper", "published.yaml")
# "docs/method.md §1", "docs/method.md §1, §2, §5", "docs/method.md §1 and §3".
REFERENCE = re.compile(r"docs/method\.md((?:\s*(?:,|and)?\s*§\d+)+)")
HEADING = re.compile(r"^## (\d+)\. (.+)$", re.MULTILINE)


def scanned_files() -> list[Path]:
    files = []
    for name in SCANNED:
        path = ROOT / name
        candidates = sorted(path.rglob("*")) if path.is_dir() else [path]
        files += [
            p
            for p in candidates
            if p.is_file()
            and p.suffix in TEXT_SUFFIXES
            and "__pycache__" not in p.parts
            and p.resolve() != Path(__file__).resolve()
        ]
    return files


def sections() -> dict[int, str]:
    return {int(n): title for n, title in HEADING.findall(DOC.read_text(encoding="utf-8"))}


def test_nothing_points_outside_the_repository():
    files = scanned_files()
    assert DOC in files and ROOT / "params.yaml" in files
    found = [
        f"{path.relative_to(ROOT)}: {text!r}"
        for path in files
        for text in FORBIDDEN
        if text in path.read_text(encoding="utf-8", errors="replace")
    ]
    assert not found, "references to material outside the repository:\n" + "\n".join(found)


def test_method_sections_are_numbered_in_order():
    numbers = list(sections())
    assert numbers == list(range(1, len(numbers) + 1)), numbers
    assert len(numbers) >= 8


def test_every_reference_names_an_existing_section():
    existing = sections()
    references, broken = 0, []
    for path in scanned_files():
        for match in REFERENCE.finditer(path.read_text(encoding="utf-8", errors="replace")):
            for number in map(int, re.findall(r"§(\d+)", match.group(1))):
                references += 1
                if number not in existing:
                    broken.append(f"{path.relative_to(ROOT)}: {match.group(0)!r}")
    assert references >= 10, "the code's references to docs/method.md were not found"
    assert not broken, "references to sections docs/method.md does not have:\n" + "\n".join(broken)


def test_method_has_a_known_differences_section():
    titles = [title for title in sections().values() if title.startswith("Known differences")]
    assert titles, "docs/method.md needs a '## N. Known differences ...' section"
    text = DOC.read_text(encoding="utf-8")
    body = text.split(f". {titles[0]}", 1)[1].split("\n## ", 1)[0]
    assert len(re.findall(r"^\d+\. \*\*", body, re.MULTILINE)) >= 5, "too few differences listed"
