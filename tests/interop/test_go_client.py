"""The Go client (clients/go): code generated from the protos with Debian's protoc-gen-go and
protoc-gen-go-grpc, built offline in GOPATH mode, run against the stack of real processes."""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from pathlib import Path

import pytest

from ponder_devstack import Stack


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
    lines = done.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    assert result["run"]["state"] == "WORKFLOW_STATE_SUCCEEDED"
    assert result["run"]["citations"]
    assert all(url.startswith("http") for url in result["run"]["citations"])
    assert len(result["run"]["traceId"]) == 32
    assert result["watched"]["state"] == "WORKFLOW_STATE_SUCCEEDED"
    assert result["watched"]["name"] != result["run"]["name"]
    events = [line.split() for line in lines if line.startswith("  ")]
    assert events[0][0] == "SNAPSHOT"
    if len(events) > 1:  # it was still running when the watch began
        assert events[-1][:2] == ["FINISHED", "SUCCEEDED"]
        steps = " ".join(" ".join(e) for e in events)
        assert re.search(r"research SUCCEEDED \(\d+ documents\)", steps)


def test_the_go_client_reports_an_unreachable_gateway(ponder_go: Path):
    """Nothing listening: exit 1 with the gRPC code UNAVAILABLE (14) on stderr."""
    done = subprocess.run(
        [str(ponder_go), "-address", "127.0.0.1:1", "topic"],
        capture_output=True, text=True, timeout=60, check=False, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.startswith("ponder-go: 14 ")
