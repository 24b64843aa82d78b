"""The Node.js example client (clients/node, @grpc/grpc-js + @grpc/proto-loader, installed by
`npm ci`) against the running stack: a workflow run to completion and a long-running one
followed with WatchWorkflow to its end."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path

from ponder_devstack import Stack


ROOT = Path(__file__).resolve().parents[2]


def test_the_node_client_runs_and_watches_workflows(process_stack: Stack):
    gateway = next(s.address for s in process_stack.services if s.name == "gateway")
    node = shutil.which("node")
    assert node is not None, "Node.js is needed (npm installs the client's packages)"
    topic = f"retrieval-augmented generation with self-critique ({uuid.uuid4().hex[:8]})"
    done = subprocess.run(
        [node, str(ROOT / "clients" / "node" / "ponder-client.mjs"), "--address", gateway, topic],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    assert result["run"]["state"] == "WORKFLOW_STATE_SUCCEEDED"
    assert result["run"]["citations"]
    assert all(url.startswith("http") for url in result["run"]["citations"])
    assert len(result["run"]["traceId"]) == 32
    assert result["watched"]["state"] == "WORKFLOW_STATE_SUCCEEDED"
    assert result["watched"]["name"] != result["run"]["name"]
    events = [line for line in lines if line.startswith("  WORKFLOW_EVENT_TYPE_")]
    assert events[0].startswith("  WORKFLOW_EVENT_TYPE_SNAPSHOT")
    if len(events) > 1:  # still running when the watch began (else: the final snapshot only)
        assert events[-1].startswith("  WORKFLOW_EVENT_TYPE_FINISHED")
        assert all(" WORKFLOW_STATE_" in line for line in events)


def test_the_node_client_reports_an_unreachable_gateway():
    node = shutil.which("node")
    assert node is not None
    done = subprocess.run(
        [node, str(ROOT / "clients" / "node" / "ponder-client.mjs"), "--address", "127.0.0.1:1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 1
    assert "ponder-client: 14" in done.stderr  # UNAVAILABLE
