"""Resumable watch: every event has a sequence number; a watcher that reconnects with the
last one it saw, to the same or another gateway replica, over gRPC or SSE, gets exactly the
events it missed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import grpc
import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ponder.workflow.v1 import workflow_service_pb2 as pb
from ponder.workflow.v1 import workflow_service_pb2_grpc as workflow_grpc
from ponder_gateway.service import GatewayModule
from ponder_runtime import ServiceServer
from tests.conftest import InProcessStack, start_service
from tests.support.sse import sse_fields


def spec(topic: str) -> pb.Workflow:
    """A two-iteration reflection workflow, cache bypassed (many progress events)."""
    return pb.Workflow(
        kind=pb.WORKFLOW_KIND_REFLECTION,
        topic=topic,
        parameters=pb.WorkflowParameters(
            cache_policy=pb.CACHE_POLICY_BYPASS, max_iterations=2, score_threshold=10
        ),
    )


@pytest.fixture
async def replica(stack: InProcessStack) -> AsyncIterator[ServiceServer]:
    """A second gateway replica on the same records (the SQLite file), its own ports."""
    settings = stack.servers["gateway"].settings.model_copy(update={"port": 0, "http_port": 0})
    server = await start_service(settings, GatewayModule, InMemorySpanExporter())
    yield server
    await server.stop(0)


async def watch(
    stub: workflow_grpc.WorkflowServiceStub, name: str, after: int = 0, limit: int = 0
) -> list[pb.WatchWorkflowResponse]:
    """The events of one watch: all of them, or the first `limit` (then it hangs up)."""
    call = stub.WatchWorkflow(pb.WatchWorkflowRequest(name=name, after_sequence=after), timeout=60)
    events = []
    async for event in call:
        events.append(event)
        if len(events) == limit:
            call.cancel()
            break
    return events


async def test_a_reconnect_to_another_replica_gets_exactly_the_missed_events(
    stack: InProcessStack, replica: ServiceServer
):
    """Watch three events on one replica, hang up, resume on the other with the last
    sequence: the events continue without a gap or a repeat, to FINISHED, and are the ones
    a watcher replaying the whole history gets."""
    async with (
        grpc.aio.insecure_channel(stack.address("gateway")) as first_channel,
        grpc.aio.insecure_channel(f"127.0.0.1:{replica.port}") as second_channel,
    ):
        first = workflow_grpc.WorkflowServiceStub(first_channel)
        second = workflow_grpc.WorkflowServiceStub(second_channel)
        created = await first.CreateWorkflow(
            pb.CreateWorkflowRequest(workflow=spec("self-consistency sampling resume")),
            timeout=10,
        )
        name = created.workflow.name
        seen = await watch(first, name, limit=3)
        assert seen[0].event_type == pb.WORKFLOW_EVENT_TYPE_SNAPSHOT
        resumed = await watch(second, name, after=seen[-1].sequence)
        history = await watch(second, name, after=seen[0].sequence)
    numbers = [e.sequence for e in seen[1:] + resumed]
    assert numbers == list(range(seen[0].sequence + 1, numbers[-1] + 1))
    assert resumed[-1].event_type == pb.WORKFLOW_EVENT_TYPE_FINISHED
    assert pb.WORKFLOW_EVENT_TYPE_SNAPSHOT not in [e.event_type for e in resumed]
    assert seen[1:] + resumed == history
    assert resumed[-1].workflow.state == pb.WORKFLOW_STATE_SUCCEEDED


async def test_sse_sends_ids_and_honours_last_event_id(stack: InProcessStack):
    """The SSE stream's `id:` is the event's sequence; a reconnect with Last-Event-ID gets
    only the later events; a Last-Event-ID that is not a number is a 400."""
    async with httpx.AsyncClient(base_url=stack.http_url, timeout=60) as http:
        created = await http.post(
            "/v1/workflows",
            json={
                "kind": "WORKFLOW_KIND_REFLECTION",
                "topic": "chain of verification resume over sse",
                "parameters": {"cachePolicy": "CACHE_POLICY_BYPASS"},
            },
        )
        name = created.json()["workflow"]["name"]
        sse = {"accept": "text/event-stream"}
        full = (await http.get(f"/v1/{name}:watch", headers=sse)).text
        events = [sse_fields(f) for f in full.split("\n\n") if f and "event: end" not in f]
        replay_from = events[1]["id"]
        again = await http.get(f"/v1/{name}:watch", headers={**sse, "last-event-id": replay_from})
        bad = await http.get(f"/v1/{name}:watch", headers={**sse, "last-event-id": "x"})
    later = [sse_fields(f) for f in again.text.split("\n\n") if f and "event: end" not in f]
    assert [e["id"] for e in later] == [e["id"] for e in events[2:]]
    assert json.loads(later[-1]["data"])["eventType"] == "WORKFLOW_EVENT_TYPE_FINISHED"
    assert bad.status_code == 400
    assert "Last-Event-ID" in bad.json()["message"]


async def test_a_negative_after_sequence_is_invalid(stack: InProcessStack):
    """after_sequence below 0 is INVALID_ARGUMENT naming the field."""
    async with grpc.aio.insecure_channel(stack.address("gateway")) as channel:
        stub = workflow_grpc.WorkflowServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await watch(stub, "workflows/any-workflow", after=-1)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
