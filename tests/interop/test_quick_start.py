"""The README's quick start, pasted into bash block by block against a stack of real
processes (its addresses and workflow ids swapped for this stack's and fresh ones)."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest

from ponder_devstack import Stack


ROOT = Path(__file__).resolve().parents[2]


def quick_start_blocks() -> dict[str, str]:
    """The quick start's ```sh blocks, by the tool each one shows."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Quick start") :]
    section = section[: section.index("\n## ")]
    blocks = {}
    for chunk in section.split("```sh\n")[1:]:
        block = chunk[: chunk.index("```\n")]
        markers = {"grpcurl": "grpcurl", "node": "node clients/", "ponder": "bin/ponder"}
        tool = next((t for t, marker in markers.items() if marker in block), "curl")
        blocks[tool] = block
    return blocks


def paste(block: str, stack: Stack) -> subprocess.CompletedProcess[str]:
    """Run a block as bash would from the repository root, on this stack."""
    gateway = next(s.address for s in stack.services if s.name == "gateway")
    for default in ("my-research", "my-cli", "my-first"):
        block = block.replace(default, f"qs-{uuid.uuid4().hex[:8]}")
    block = block.replace("127.0.0.1:50051", gateway)
    block = block.replace("127.0.0.1:8080", f"127.0.0.1:{stack.ports.gateway_http}")
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block],
        capture_output=True, text=True, timeout=300, check=False, cwd=ROOT,
        env={**os.environ, "PONDER_ADDRESS": gateway},
    )  # fmt: skip


def test_the_quick_start_shows_each_way_in():
    assert set(quick_start_blocks()) == {"grpcurl", "ponder", "node", "curl"}


def test_grpcurl_block(process_stack: Stack):
    done = paste(quick_start_blocks()["grpcurl"], process_stack)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ponder.workflow.v1.WorkflowService" in done.stdout  # list
    assert '"/v1/workflows/reflection"' in done.stdout  # describe, with the HTTP rule
    assert '"status": "SERVING"' in done.stdout
    assert done.stdout.count('"state": "WORKFLOW_STATE_SUCCEEDED"') >= 3  # run, watch, get, list
    assert '"event_type": "WORKFLOW_EVENT_TYPE_SNAPSHOT"' in done.stdout  # watch


def test_ponder_cli_block(process_stack: Stack):
    done = paste(quick_start_blocks()["ponder"], process_stack)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "(server) SERVING" in done.stdout
    assert done.stdout.count("References") == 4  # run, run --watch, watch, run --max-tokens
    assert "tokens, $0.0000" in done.stdout  # the budgeted run's usage (offline: free)
    assert '"state": "WORKFLOW_STATE_SUCCEEDED"' in done.stdout  # get --json
    assert "CREATED (UTC)" in done.stdout  # list


def test_node_block(process_stack: Stack):
    """The clients block: Node (proto-loader and generated code), Go and Java, each runs and
    watches a workflow to its end."""
    done = paste(quick_start_blocks()["node"], process_stack)
    assert done.returncode == 0, done.stdout + done.stderr
    summaries = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(summaries) == 4  # Node proto-loader, Node generated code, Go, Java
    for summary in summaries:
        assert summary["run"]["state"] == summary["watched"]["state"] == "WORKFLOW_STATE_SUCCEEDED"


@pytest.mark.parametrize("tool", ["curl"])
def test_curl_block(process_stack: Stack, tool: str):
    done = paste(quick_start_blocks()[tool], process_stack)
    assert done.returncode == 0, done.stdout + done.stderr
    assert '"state":"WORKFLOW_STATE_SUCCEEDED"' in done.stdout.replace(" ", "")
    assert "event: " in done.stdout or "data: " in done.stdout  # the watch's server-sent events
