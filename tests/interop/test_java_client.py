"""The Java client (clients/java): code generated with protoc and Debian's grpc-java plugin,
compiled with javac against the jars in /usr/share/java (no Maven), run against the stack of
real processes."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from ponder_devstack import Stack
from tests.interop.client_summary import check_run_and_watch


ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ponder_java() -> Path:
    """clients/java/build.sh: generate into clients/gen/java, compile, write a launcher (once)."""
    done = subprocess.run(
        [str(ROOT / "clients" / "java" / "build.sh")],
        capture_output=True, text=True, timeout=600, check=False, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    generated = ROOT / "clients/gen/java/src/ponder/workflow/v1"
    service = (generated / "WorkflowServiceGrpc.java").read_text()
    for method in ("runWorkflow", "createWorkflow", "getWorkflow", "listWorkflows",
                   "cancelWorkflow", "watchWorkflow"):  # fmt: skip
        assert f"public void {method}(" in service, method
    return Path(done.stdout.strip().splitlines()[-1])


def test_the_java_client_runs_and_watches_workflows(process_stack: Stack, ponder_java: Path):
    """A reflection run to a cited result, then a research workflow followed with WatchWorkflow
    (a blocking server stream) to its FINISHED event."""
    gateway = next(s.address for s in process_stack.services if s.name == "gateway")
    topic = f"tree of thoughts deliberate problem solving ({uuid.uuid4().hex[:8]})"
    done = subprocess.run(
        [str(ponder_java), "--address", gateway, topic],
        capture_output=True, text=True, timeout=180, check=False, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    check_run_and_watch(done.stdout)


def test_the_java_client_reports_an_unreachable_gateway(ponder_java: Path):
    """Nothing listening: exit 1 with the gRPC code UNAVAILABLE (14) on stderr."""
    done = subprocess.run(
        [str(ponder_java), "--address", "127.0.0.1:1", "topic"],
        capture_output=True, text=True, timeout=60, check=False, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.startswith("ponder-java: 14 ")
