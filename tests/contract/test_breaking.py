"""The breaking-change guard (`make breaking`, part of `make lint`): `buf breaking` against
release/protos.binpb, the last release's image. Today's protos pass; a copy with a field
renumbered, a field removed, a method renamed or a field's type changed fails, naming it."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[2]
BUF = ROOT / "node_modules" / ".bin" / "buf"
WORKFLOW = Path("protos/ponder/workflow/v1/workflow_service.proto")


def breaking(workspace: Path) -> subprocess.CompletedProcess[str]:
    """`buf breaking` of workspace/protos against the released image."""
    return subprocess.run(
        [str(BUF), "breaking", "protos", "--against", str(ROOT / "release" / "protos.binpb")],
        cwd=workspace,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A copy of the buf workspace (buf.yaml, protos/, third_party/)."""
    shutil.copy(ROOT / "buf.yaml", tmp_path / "buf.yaml")
    for directory in ("protos", "third_party"):
        shutil.copytree(ROOT / directory, tmp_path / directory)
    return tmp_path


def test_the_current_protos_break_nothing_released(workspace: Path):
    done = breaking(workspace)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (  # Workflow.topic renumbered
            (r"string topic = 4 \[", "string topic = 44 ["),
            'Previously present field "4" with name "topic" on message "Workflow" was deleted',
        ),
        (  # Workflow.trace_id removed
            (r"\n  string trace_id = 15 \[[^\n]*\n", "\n"),
            'Previously present field "15" with name "trace_id" on message "Workflow"',
        ),
        (  # a method renamed
            (r"rpc GetWorkflow\(", "rpc FetchWorkflow("),
            'Previously present RPC "GetWorkflow" on service "WorkflowService" was deleted',
        ),
        (  # a field's type changed
            (r"string topic = 4 \[", "bytes topic = 4 ["),
            'changed type from "string" to "bytes"',
        ),
    ],
)
def test_a_breaking_change_fails_and_says_what(
    workspace: Path, change: tuple[str, str], expected: str
):
    path = workspace / WORKFLOW
    text = path.read_text()
    broken, count = re.subn(change[0], change[1], text, count=1)
    assert count == 1, f"the test's edit no longer applies: {change[0]}"
    path.write_text(broken)
    done = breaking(workspace)
    assert done.returncode != 0
    assert expected in done.stdout, done.stdout + done.stderr
