"""The temporal engine: a workflow is a Temporal workflow (same id) run by a worker
process against the real dev server; the gateway serves the same API."""

from __future__ import annotations

import grpc

from ponder.workflow.v1 import workflow_service_pb2 as pb
from ponder.workflow.v1 import workflow_service_pb2_grpc as workflow_grpc
from tests.conftest import InProcessStack
from tests.temporal_stack import TemporalStack


async def test_a_run_goes_through_temporal(temporal_stack: TemporalStack):
    """RunReflectionWorkflow on the temporal engine answers like the local one: every step
    recorded, a cited result."""
    async with grpc.aio.insecure_channel(temporal_stack.address) as channel:
        stub = workflow_grpc.WorkflowServiceStub(channel)
        reply = await stub.RunReflectionWorkflow(
            pb.RunReflectionWorkflowRequest(
                topic="retrieval augmented generation on temporal",
                parameters=pb.WorkflowParameters(cache_policy=pb.CACHE_POLICY_REFRESH),
            ),
            timeout=60,
        )
    workflow = reply.workflow
    assert workflow.state == pb.WORKFLOW_STATE_SUCCEEDED
    assert [s.name for s in workflow.steps] == [
        "cache_lookup", "research", "rank", "reflect", "cache_store",
    ]  # fmt: skip
    assert workflow.result.citations


async def test_a_watch_resumes_on_the_temporal_engine(temporal_stack: TemporalStack):
    """A watcher that hangs up after two events and resumes with the last sequence gets the
    rest, numbered on without a gap, to FINISHED (events written by the worker)."""
    async with grpc.aio.insecure_channel(temporal_stack.address) as channel:
        stub = workflow_grpc.WorkflowServiceStub(channel)
        created = await stub.CreateWorkflow(
            pb.CreateWorkflowRequest(
                workflow=pb.Workflow(
                    kind=pb.WORKFLOW_KIND_REFLECTION,
                    topic="language agents with verbal self-reflection",
                    parameters=pb.WorkflowParameters(cache_policy=pb.CACHE_POLICY_BYPASS),
                )
            ),
            timeout=10,
        )
        name = created.workflow.name
        call = stub.WatchWorkflow(pb.WatchWorkflowRequest(name=name), timeout=60)
        seen = [await call.read(), await call.read()]
        call.cancel()
        resumed = [
            event
            async for event in stub.WatchWorkflow(
                pb.WatchWorkflowRequest(name=name, after_sequence=seen[-1].sequence), timeout=60
            )
        ]
    numbers = [e.sequence for e in seen[1:] + resumed]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
    assert resumed[-1].event_type == pb.WORKFLOW_EVENT_TYPE_FINISHED
    assert resumed[-1].workflow.state == pb.WORKFLOW_STATE_SUCCEEDED


async def test_the_tenant_and_the_cache_verdict_survive_the_worker(temporal_stack: TemporalStack):
    """On the temporal engine the worker's records keep the creator's tenant (so the creator
    still owns the finished workflow) and the cache step says why it missed."""
    async with grpc.aio.insecure_channel(temporal_stack.address) as channel:
        stub = workflow_grpc.WorkflowServiceStub(channel)
        created = await stub.CreateWorkflow(
            pb.CreateWorkflowRequest(
                workflow=pb.Workflow(
                    kind=pb.WORKFLOW_KIND_REFLECTION,
                    topic="tenant-owned temporal workflow about speculative decoding",
                )
            ),
            timeout=10,
        )
        assert created.workflow.tenant
        events = [
            event
            async for event in stub.WatchWorkflow(
                pb.WatchWorkflowRequest(name=created.workflow.name), timeout=60
            )
        ]
        final = (
            await stub.GetWorkflow(pb.GetWorkflowRequest(name=created.workflow.name), timeout=10)
        ).workflow
    assert events[-1].event_type == pb.WORKFLOW_EVENT_TYPE_FINISHED
    assert final.state == pb.WORKFLOW_STATE_SUCCEEDED
    assert final.tenant == created.workflow.tenant
    lookup = next(s for s in final.steps if s.name == "cache_lookup")
    assert lookup.message.startswith("miss ("), lookup.message
    assert final.cache.verdict != pb.CACHE_VERDICT_UNSPECIFIED


async def test_the_requests_trace_goes_on_in_the_worker(
    stack: InProcessStack, temporal_stack: TemporalStack
):
    """A workflow run on Temporal carries the trace id of the request that started it, and
    the worker's calls to the research service are spans of that same trace (the trace
    context travels in the Temporal headers to the worker process)."""
    async with grpc.aio.insecure_channel(temporal_stack.address) as channel:
        reply = await workflow_grpc.WorkflowServiceStub(channel).RunWorkflow(
            pb.RunWorkflowRequest(
                workflow=pb.Workflow(
                    kind=pb.WORKFLOW_KIND_RESEARCH, topic="tracing temporal workflows end to end"
                )
            ),
            timeout=60,
        )
    trace_id = reply.workflow.trace_id
    assert len(trace_id) == 32
    assert int(trace_id, 16) != 0
    research = [
        span
        for span in stack.spans.get_finished_spans()
        if span.name.startswith("/ponder.research.v1.ResearchService/")
    ]
    assert trace_id in {format(span.context.trace_id, "032x") for span in research}
