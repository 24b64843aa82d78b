"""The house rules are import-linter contracts (`make lint`); each one fails on a planted
violation in a copy of the source tree."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
SOURCES = [
    *ROOT.glob("libs/*/src"),
    *ROOT.glob("services/*/src"),
    ROOT / "clients/python/src",
]

# contract id -> (module file relative to a src dir, line planted at its end)
PLANTED = {
    "layers": ("ponder_runtime/_planted.py", "import ponder_gateway.store"),
    "generic-rest": (
        "ponder_rest/_planted.py",
        "from ponder.workflow.v1 import workflow_service_pb2",
    ),
    "light-gateway": ("ponder_gateway/_planted.py", "import numpy"),
    "grpc-free-domain": ("ponder_research/ranking.py", "import grpc"),
}


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of every package's source and of pyproject.toml (the contracts)."""
    copy = tmp_path_factory.mktemp("tree")
    for source in SOURCES:
        shutil.copytree(
            source,
            copy / source.relative_to(ROOT),
            ignore=shutil.ignore_patterns("__pycache__", "*.binpb"),
        )
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    return copy


def lint_imports(tree: Path, contract: str) -> subprocess.CompletedProcess[str]:
    """lint-imports for one contract over the copied tree (its packages first on the path)."""
    paths = [str(tree / source.relative_to(ROOT)) for source in SOURCES]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(tree / "pyproject.toml"), "--contract", contract,
         "--no-cache"],
        cwd=tree, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("contract", sorted(PLANTED))
def test_each_contract_fails_on_a_planted_violation(tree: Path, contract: str):
    """The contract is kept by the tree as it is, and broken once one import breaks the rule."""
    kept = lint_imports(tree, contract)
    assert kept.returncode == 0, kept.stdout + kept.stderr
    relative, line = PLANTED[contract]
    [target] = [
        path
        for source in SOURCES
        if (path := tree / source.relative_to(ROOT) / relative).parent.is_dir()
    ]
    original = target.read_text() if target.exists() else None
    target.write_text((original or '"""Planted."""\n') + f"\n{line}\n")
    try:
        broken = lint_imports(tree, contract)
    finally:
        if original is None:
            target.unlink()
        else:
            target.write_text(original)
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert "BROKEN" in broken.stdout
    assert line.split()[1] in broken.stdout  # the report names the forbidden import


def test_services_are_independent_of_each_other(tree: Path):
    """One service importing another breaks the layers contract."""
    target = tree / "services/research/src/ponder_research/_planted.py"
    target.write_text('"""Planted."""\n\nimport ponder_reflection.loop\n')
    try:
        broken = lint_imports(tree, "layers")
    finally:
        target.unlink()
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert "ponder_research._planted -> ponder_reflection.loop" in broken.stdout
