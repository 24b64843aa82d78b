"""Test files share helpers through tests/support/ (and conftest fixtures), never by importing
another test file."""

from __future__ import annotations

import ast
from pathlib import Path


TESTS = Path(__file__).resolve().parents[1]


def imported_test_files(path: Path) -> list[str]:
    """The test modules (`test_*`) that the file at `path` imports."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = []
        if isinstance(node, ast.ImportFrom) and (node.module or node.level):
            module = "." * node.level + (node.module or "")
            names = [module, *(f"{module}.{a.name}" for a in node.names)]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        found += [n for n in names if n.split(".")[-1].startswith("test_")]
    return found


def test_no_test_file_imports_another():
    """Every file under tests/ is checked; a planted import of a test module is found."""
    offenders = {
        str(path.relative_to(TESTS)): imported_test_files(path)
        for path in sorted(TESTS.rglob("*.py"))
        if "generated" not in path.parts and imported_test_files(path)
    }
    assert offenders == {}


def test_a_planted_import_is_found(tmp_path: Path):
    """The check sees every import form, relative ones too."""
    planted = tmp_path / "test_planted.py"
    planted.write_text(
        "from tests.integration.test_access import KEY\nimport tests.unit.test_other\n"
        "from .test_sibling import helper\n"
    )
    found = imported_test_files(planted)
    assert found == ["tests.integration.test_access", "tests.unit.test_other", ".test_sibling"]
