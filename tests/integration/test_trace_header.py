"""gRPC responses carry their trace id as `x-trace-id` header metadata, errors included."""

from __future__ import annotations

import grpc
import pytest

from ponder.research.v1 import research_service_pb2 as research_pb2
from ponder.research.v1 import research_service_pb2_grpc as research_grpc
from ponder.workflow.v1 import workflow_service_pb2 as pb
from ponder.workflow.v1 import workflow_service_pb2_grpc as workflow_grpc


def trace_ids(metadata: grpc.aio.Metadata | None) -> list[str]:
    """Every x-trace-id value in header metadata."""
    return [str(v) for k, v in (metadata or ()) if k == "x-trace-id"]


async def test_a_workflow_reply_names_its_trace(gateway_channel):
    stub = workflow_grpc.WorkflowServiceStub(gateway_channel)
    call = stub.RunReflectionWorkflow(
        pb.RunReflectionWorkflowRequest(topic="How do agents use self-reflection?"), timeout=60
    )
    reply = await call
    assert trace_ids(await call.initial_metadata()) == [reply.workflow.trace_id]


async def test_an_error_names_its_trace_too(gateway_channel):
    stub = workflow_grpc.WorkflowServiceStub(gateway_channel)
    call = stub.GetWorkflow(pb.GetWorkflowRequest(name="workflows/not-there"), timeout=10)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    ids = trace_ids(await call.initial_metadata())
    assert len(ids) == 1
    assert len(ids[0]) == 32


async def test_streams_and_proxied_services_send_one_trace_id(gateway_channel):
    """A watch stream, and a call the gateway forwards to research (whose own x-trace-id is
    replaced, not repeated: it is the same trace)."""
    stub = workflow_grpc.WorkflowServiceStub(gateway_channel)
    created = await stub.CreateWorkflow(
        pb.CreateWorkflowRequest(
            workflow=pb.Workflow(kind=pb.WORKFLOW_KIND_REFLECTION, topic="dense retrieval")
        ),
        timeout=10,
    )
    watch = stub.WatchWorkflow(pb.WatchWorkflowRequest(name=created.workflow.name), timeout=60)
    events = [event async for event in watch]
    assert events
    assert len(trace_ids(await watch.initial_metadata())) == 1
    search = research_grpc.ResearchServiceStub(gateway_channel).SearchSources(
        research_pb2.SearchSourcesRequest(query="self-reflection for agents"), timeout=30
    )
    await search
    assert len(trace_ids(await search.initial_metadata())) == 1


async def test_a_caller_with_its_own_traceparent_gets_no_trace_id_header(gateway_channel):
    """The caller's trace goes on (the workflow records the caller's trace id, which the
    caller holds): the header, a separate send before the reply, is left out."""
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    stub = workflow_grpc.WorkflowServiceStub(gateway_channel)
    call = stub.RunReflectionWorkflow(
        pb.RunReflectionWorkflowRequest(topic="How do traced agents critique their drafts?"),
        metadata=(("traceparent", f"00-{trace_id}-b7ad6b7169203331-01"),),
        timeout=60,
    )
    reply = await call
    assert reply.workflow.trace_id == trace_id
    assert trace_ids(await call.initial_metadata()) == []
