"""The temporal engine: a workflow is a Temporal workflow (same id) run by a worker
process against the real dev server; the gateway serves the same API."""

from __future__ import annotations

import grpc

from ponder.workflow.v1 import workflow_service_pb2 as pb
from ponder.workflow.v1 import workflow_service_pb2_grpc as workflow_grpc
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
