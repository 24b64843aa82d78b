"""The Go client (clients/go): code generated from the protos with Debian's protoc-gen-go and
protoc-gen-go-grpc, built offline in GOPATH mode, run against the stack of real processes."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from ponder_devstack import Stack
from tests.interop.client_summary import check_run_and_watch


ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ponder_go() -> Path:
    """clients/go/build.sh: generate into clients/gen/go and build the command (once)."""
    done = subprocess.run(
        [str(ROOT / "clients" / "go" / "build.sh")],
        capture_output=True, text=True, timeout=600, check=False, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    binary = Path(done.stdout.strip().splitlines()[-1])
    generated = ROOT / "clients/gen/go/src/example.com/ponder/clients/gen/go/ponder/workflow/v1"
    service = (generated / "workflow_service_grpc.pb.go").read_text()
    for method in ("RunWorkflow", "CreateWorkflow", "GetWorkflow", "ListWorkflows",
                   "CancelWorkflow", "WatchWorkflow"):  # fmt: skip
        assert f"\t{method}(ctx context.Context" in service, method
    return binary


def test_the_go_client_runs_and_watches_workflows(process_stack: Stack, ponder_go: Path):
    """A reflection run to a cited result, then a research workflow followed with WatchWorkflow
    to its FINISHED event, with the steps' structured progress."""
    gateway = next(s.address for s in process_stack.services if s.name == "gateway")
    topic = f"chain-of-thought prompting and self-consistency ({uuid.uuid4().hex[:8]})"
    done = subprocess.run(
        [str(ponder_go), "-address", gateway, topic],
        capture_output=True, text=True, timeout=180, check=False, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert not done.stderr
    check_run_and_watch(done.stdout)


def test_the_go_client_reports_an_unreachable_gateway(ponder_go: Path):
    """Nothing listening: exit 1 with the gRPC code UNAVAILABLE (14) on stderr."""
    done = subprocess.run(
        [str(ponder_go), "-address", "127.0.0.1:1", "topic"],
        capture_output=True, text=True, timeout=60, check=False, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.startswith("ponder-go: 14 ")
