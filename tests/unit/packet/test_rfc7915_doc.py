"""docs/rfc7915.md names real tests: every `path::name` in it is a test function in that file."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "rfc7915.md"
REFERENCE = re.compile(r"(tests/[\w/]+\.py)::(\w+)")


def _test_functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
    }


def test_every_referenced_test_exists() -> None:
    references = REFERENCE.findall(DOC.read_text())
    assert len(references) > 100  # the table is there and points at tests
    known: dict[str, set[str]] = {}
    missing = []
    for path, name in references:
        if path not in known:
            assert (ROOT / path).is_file(), f"{path} named in {DOC.name} does not exist"
            known[path] = _test_functions(ROOT / path)
        if name not in known[path]:
            missing.append(f"{path}::{name}")
    assert not missing, f"{DOC.name} names tests that do not exist: {missing}"


def test_every_row_has_a_test_or_a_reason() -> None:
    rows = [
        line
        for line in DOC.read_text().splitlines()
        if line.startswith("| ") and not line.startswith("| #") and "---" not in line
    ]
    assert rows
    for row in rows:
        last = row.rstrip(" |").rsplit("|", 1)[-1].strip().lower()
        explained = last.startswith(("not applicable", "not implemented"))
        assert "::" in last or explained, f"row without a test or a reason: {row}"
