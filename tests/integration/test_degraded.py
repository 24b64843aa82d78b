"""A failing dependency degrades a workflow instead of failing it (own stack: it stops one)."""

from __future__ import annotations

import grpc
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ponder.workflow.v1 import workflow_service_pb2 as workflow_pb2
from ponder.workflow.v1 import workflow_service_pb2_grpc as workflow_grpc
from ponder_gateway.settings import GatewaySettings
from ponder_reflection.service import ReflectionModule
from ponder_reflection.settings import ReflectionSettings
from ponder_research.service import ResearchModule
from ponder_research.settings import ResearchSettings
from ponder_runtime import ServiceServer, load_settings
from tests.conftest import start_service
from tests.support.gateways import UnwaitingGateway


async def test_embedding_down_keeps_research_order_and_says_so(tmp_path):
    """With the embedding service unreachable the workflow still succeeds (cache skipped), the
    rank step is FAILED with the reason, and warnings tell the caller."""
    spans = InMemorySpanExporter()
    common = {"host": "127.0.0.1", "port": 0}
    nowhere = "127.0.0.1:1"  # nothing listens there (not the default port: `make run` may)
    research = await start_service(
        load_settings(ResearchSettings, **common, embedding_addr=nowhere), ResearchModule, spans
    )
    reflection = await start_service(
        load_settings(ReflectionSettings, **common), ReflectionModule, spans
    )
    settings = load_settings(
        GatewaySettings,
        **common,
        research_addr=f"127.0.0.1:{research.port}",
        reflection_addr=f"127.0.0.1:{reflection.port}",
        embedding_addr=nowhere,
        rank_timeout_seconds=2.0,
        store_path=tmp_path / "workflows.sqlite3",
    )
    gateway: ServiceServer = await start_service(settings, UnwaitingGateway, spans)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
            stub = workflow_grpc.WorkflowServiceStub(channel)
            reply = await stub.RunReflectionWorkflow(
                workflow_pb2.RunReflectionWorkflowRequest(topic="retrieval-augmented generation"),
                timeout=30,
            )
    finally:
        for server in (gateway, reflection, research):
            await server.stop(0)
    workflow = reply.workflow
    assert workflow.state == workflow_pb2.WORKFLOW_STATE_SUCCEEDED
    rank = next(step for step in workflow.steps if step.name == "rank")
    assert rank.state == workflow_pb2.STEP_STATE_FAILED
    assert "UNAVAILABLE" in rank.message or "DEADLINE" in rank.message
    assert any(warning.startswith("rank:") for warning in workflow.warnings)
    assert any(warning.startswith("cache:") for warning in workflow.warnings)  # cache skipped
    lookup = next(step for step in workflow.steps if step.name == "cache_lookup")
    assert lookup.state == workflow_pb2.STEP_STATE_FAILED
    assert workflow.result.citations


@pytest.mark.parametrize("missing", ["research", "reflection"])
async def test_a_missing_essential_service_fails_with_unavailable(missing, tmp_path):
    """Without research or reflection there is no result: UNAVAILABLE naming the step."""
    spans = InMemorySpanExporter()
    common = {"host": "127.0.0.1", "port": 0}
    research = await start_service(load_settings(ResearchSettings, **common), ResearchModule, spans)
    reflection = await start_service(
        load_settings(ReflectionSettings, **common), ReflectionModule, spans
    )
    addresses = {
        "research_addr": f"127.0.0.1:{research.port}",
        "reflection_addr": f"127.0.0.1:{reflection.port}",
        f"{missing}_addr": "127.0.0.1:1",
    }
    settings = load_settings(
        GatewaySettings,
        **common,
        **addresses,
        embedding_addr="127.0.0.1:1",
        rank_timeout_seconds=1.0,
        research_timeout_seconds=2.0,
        reflection_timeout_seconds=2.0,
        store_path=tmp_path / "workflows.sqlite3",
    )
    gateway = await start_service(settings, UnwaitingGateway, spans)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
            stub = workflow_grpc.WorkflowServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.RunReflectionWorkflow(
                    workflow_pb2.RunReflectionWorkflowRequest(topic="retrieval"), timeout=30
                )
    finally:
        for server in (gateway, reflection, research):
            await server.stop(0)
    assert caught.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    assert missing in (caught.value.details() or "")
