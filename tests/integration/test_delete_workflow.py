"""DeleteWorkflow over real sockets (gRPC and REST): a finished workflow goes with its events,
a second delete is NOT_FOUND, a bad name INVALID_ARGUMENT; a cache hit keeps its result when
the workflow it reused is deleted."""

from __future__ import annotations

import uuid

import grpc
import httpx
import pytest

from ponder.workflow.v1 import workflow_service_pb2 as pb
from ponder.workflow.v1 import workflow_service_pb2_grpc as workflow_grpc
from tests.conftest import InProcessStack


def _workflow(topic: str, policy: int = pb.CACHE_POLICY_BYPASS) -> pb.Workflow:
    return pb.Workflow(
        kind=pb.WORKFLOW_KIND_REFLECTION,
        topic=topic,
        parameters=pb.WorkflowParameters(cache_policy=policy),  # type: ignore[arg-type]
    )


async def _code(call) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value.code()


async def test_delete_over_grpc_and_rest(stack: InProcessStack) -> None:
    """gRPC: a finished workflow is deleted (then Get and Delete are NOT_FOUND, its events are
    gone); REST: DELETE /v1/workflows/{id} answers 200 {}, then 404; a bad name is 400."""
    async with grpc.aio.insecure_channel(stack.address("gateway")) as channel:
        stub = workflow_grpc.WorkflowServiceStub(channel)
        tag = uuid.uuid4().hex[:6]
        first = await stub.RunWorkflow(
            pb.RunWorkflowRequest(
                workflow=_workflow(f"How do language agents use self-reflection? {tag}")
            ),
            timeout=60,
        )
        name = first.workflow.name
        await stub.DeleteWorkflow(pb.DeleteWorkflowRequest(name=name), timeout=10)
        assert await _code(stub.GetWorkflow(pb.GetWorkflowRequest(name=name))) == (
            grpc.StatusCode.NOT_FOUND
        )
        assert await _code(stub.DeleteWorkflow(pb.DeleteWorkflowRequest(name=name))) == (
            grpc.StatusCode.NOT_FOUND
        )
        listed = await stub.ListWorkflows(pb.ListWorkflowsRequest(filter=f'topic:"{tag}"'))
        assert listed.workflows == []
        second = await stub.RunWorkflow(
            pb.RunWorkflowRequest(
                workflow=_workflow(f"retrieval-augmented generation for agents {tag}")
            ),
            timeout=60,
        )
    async with httpx.AsyncClient(base_url=stack.http_url, timeout=30) as http:
        path = f"/v1/{second.workflow.name}"
        deleted = await http.delete(path)
        assert deleted.status_code == 200, deleted.text
        assert deleted.json() == {}
        assert (await http.delete(path)).status_code == 404
        assert (await http.get(path)).status_code == 404
        bad = await http.delete("/v1/workflows/NO_SUCH_NAME")
        assert bad.status_code == 400, bad.text


async def test_a_cache_hit_keeps_its_result_when_its_source_is_deleted(
    stack: InProcessStack,
) -> None:
    """A cache hit refers to its source's result; after the source is deleted the hit still
    reads back with the same result text."""
    topic = f"self-critique of language model answers {uuid.uuid4().hex[:6]}"
    async with grpc.aio.insecure_channel(stack.address("gateway")) as channel:
        stub = workflow_grpc.WorkflowServiceStub(channel)
        source = await stub.RunWorkflow(
            pb.RunWorkflowRequest(workflow=_workflow(topic, pb.CACHE_POLICY_REFRESH)), timeout=60
        )
        hit = await stub.RunWorkflow(
            pb.RunWorkflowRequest(workflow=_workflow(topic, pb.CACHE_POLICY_USE)), timeout=60
        )
        assert hit.workflow.cache.hit
        assert hit.workflow.cache.source_workflow == source.workflow.name
        await stub.DeleteWorkflow(pb.DeleteWorkflowRequest(name=source.workflow.name))
        again = await stub.GetWorkflow(pb.GetWorkflowRequest(name=hit.workflow.name))
        assert again.workflow.result.text == source.workflow.result.text
        assert again.workflow.result.text
