"""Budgets and duplicate coalescing end to end, over real sockets: the reflection loop stops
before a model call that could exceed `max_tokens` (the real `openai` client against the fake
OpenAI server, which counts every call); a key's daily budget is shared by two gateways
through a real Redis; 100 identical concurrent requests cause one execution."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ponder.reflection.v1 import reflection_service_pb2 as rpb
from ponder.reflection.v1 import reflection_service_pb2_grpc as reflection_grpc
from ponder.workflow.v1 import workflow_service_pb2 as pb
from ponder.workflow.v1 import workflow_service_pb2_grpc as workflow_grpc
from ponder_devstack.fake_openai import FakeOpenAI, serve_fake_openai
from ponder_gateway.settings import GatewaySettings
from ponder_reflection.budget import DEFAULT_PRICES
from ponder_reflection.openai_provider import prompt_tokens
from ponder_reflection.service import ReflectionModule
from ponder_reflection.settings import ReflectionSettings
from ponder_reflection.types import TokenUsage
from ponder_runtime import ServiceServer, load_settings
from ponder_runtime.attributes import (
    WORKFLOW_COST_USD,
    WORKFLOW_ID,
    WORKFLOW_INPUT_TOKENS,
    WORKFLOW_OUTPUT_TOKENS,
)
from tests.conftest import InProcessStack, start_service
from tests.support.documents import DOCUMENTS
from tests.support.gateways import UnwaitingGateway, gateway, rest_url
from tests.support.keys import bearer, key_line, keys_file
from tests.temporal_stack import TemporalStack


RUN = ("workflows.run", "workflows.read")
MAX_OUTPUT = 100  # PONDER_REFLECTION_MAX_TOKENS of the reflection service under test
TOPIC = "self-reflection in LLM agents"


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    """A fresh fake OpenAI server whose critiques always ask for more work (score 5)."""
    api = serve_fake_openai()
    api.behaviour.update(default_score=5.0)
    yield api
    api.close()


@pytest.fixture
async def reflection(fake: FakeOpenAI) -> AsyncIterator[ServiceServer]:
    """A reflection service on the fake endpoint, model gpt-4o-mini (priced by default)."""
    settings = load_settings(
        ReflectionSettings,
        host="127.0.0.1",
        port=0,
        openai_api_key="sk-test",
        openai_base_url=fake.base_url,
        model="gpt-4o-mini",
        max_tokens=MAX_OUTPUT,
    )
    server = await start_service(settings, ReflectionModule, InMemorySpanExporter())
    yield server
    await server.stop(0)


def _estimate(body: dict[str, Any]) -> int:
    """The loop's estimate of a call the fake received: its prompt counted, plus the most
    output the service allows."""
    messages = [{"content": str(m["content"])} for m in body["messages"]]
    return prompt_tokens(messages) + MAX_OUTPUT


async def test_the_loop_never_starts_a_call_that_could_exceed_max_tokens(fake, reflection):
    """A budget that covers the draft and its critique but not a refine with its critique:
    exactly two model calls, the critiqued draft returned with BUDGET_EXHAUSTED and a warning,
    tokens within the budget and priced at gpt-4o-mini's rates; a budget below the first
    draft is FAILED_PRECONDITION before any call."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{reflection.port}") as channel:
        stub = reflection_grpc.ReflectionServiceStub(channel)
        request = rpb.ReflectRequest(topic=TOPIC, documents=DOCUMENTS, max_iterations=3)
        full = await stub.Reflect(request, timeout=30)
        assert full.stop_reason == rpb.STOP_REASON_MAX_ITERATIONS_REACHED
        assert len(fake.requests) == 6  # draft, critique, then refine + critique twice
        budget = _estimate(fake.requests[0][2]) + _estimate(fake.requests[1][2])
        fake.requests.clear()

        request.max_tokens = budget
        reply = await stub.Reflect(request, timeout=30)
        assert len(fake.requests) == 2
        assert reply.stop_reason == rpb.STOP_REASON_BUDGET_EXHAUSTED
        assert reply.text == full.iterations[0].draft
        assert any(
            w.startswith("Budget reached: the refine of iteration 2") for w in reply.warnings
        )
        assert 0 < reply.usage.total_tokens <= budget
        price = DEFAULT_PRICES["gpt-4o-mini"]
        expected = price.cost(TokenUsage(reply.usage.prompt_tokens, reply.usage.completion_tokens))
        assert reply.usage.cost_usd == pytest.approx(expected)
        fake.requests.clear()

        request.max_tokens = 10
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Reflect(request, timeout=30)
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "first draft" in (caught.value.details() or "")
        assert fake.requests == []


async def _gateway_on(stack: InProcessStack, tmp_path: Path, reflection: ServiceServer) -> Any:
    """A gateway on the shared research and embedding, with this reflection service."""
    return await gateway(
        stack,
        tmp_path,
        reflection_addr=f"127.0.0.1:{reflection.port}",
        rate_limit_per_second=0,
    )


def _create(topic: str, **parameters: Any) -> pb.CreateWorkflowRequest:
    return pb.CreateWorkflowRequest(
        workflow=pb.Workflow(
            kind=pb.WORKFLOW_KIND_REFLECTION,
            topic=topic,
            parameters=pb.WorkflowParameters(**parameters),
        )
    )


async def _ended(stub: workflow_grpc.WorkflowServiceStub, name: str) -> pb.Workflow:
    """The workflow once its watch has ended."""
    last = pb.Workflow()
    async for event in stub.WatchWorkflow(pb.WatchWorkflowRequest(name=name), timeout=60):
        last = event.workflow
    return last


async def test_a_workflow_budget_ends_with_usage_cost_and_a_warning(
    stack: InProcessStack, tmp_path: Path, fake: FakeOpenAI, reflection: ServiceServer
) -> None:
    """Through the gateway: the budget travels to the reflection, the workflow succeeds with
    the best text so far, its usage and cost (also on its span), stop_reason BUDGET_EXHAUSTED,
    a warning, and a budget-stopped result is not cached."""
    spans = InMemorySpanExporter()
    settings = load_settings(
        GatewaySettings,
        host="127.0.0.1",
        port=0,
        research_addr=stack.address("research"),
        embedding_addr=stack.address("embedding"),
        reflection_addr=f"127.0.0.1:{reflection.port}",
        store_path=tmp_path / "workflows.sqlite3",
    )
    server = await start_service(settings, UnwaitingGateway, spans)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = workflow_grpc.WorkflowServiceStub(channel)
            topic = "retrieval augmented generation reduces hallucinations"
            probe = _create(topic, cache_policy=pb.CACHE_POLICY_BYPASS, max_iterations=3)
            first = (await stub.CreateWorkflow(probe, timeout=30)).workflow
            await _ended(stub, first.name)
            budget = _estimate(fake.requests[0][2]) + _estimate(fake.requests[1][2])
            fake.requests.clear()
            request = _create(topic, max_tokens=budget, max_iterations=3)
            reply = await stub.RunWorkflow(pb.RunWorkflowRequest(workflow=request.workflow))
    finally:
        await server.stop(0)
    workflow = reply.workflow
    assert workflow.state == pb.WORKFLOW_STATE_SUCCEEDED
    assert len(fake.requests) == 2
    assert workflow.result.stop_reason == rpb.STOP_REASON_BUDGET_EXHAUSTED
    assert 0 < workflow.usage.total_tokens <= budget
    assert workflow.usage.cost_usd > 0
    assert any("Budget reached" in warning for warning in workflow.warnings)
    store = next(step for step in workflow.steps if step.name == "cache_store")
    assert store.state == pb.STEP_STATE_SKIPPED
    span = next(
        span
        for span in spans.get_finished_spans()
        if (span.attributes or {}).get(WORKFLOW_ID) == workflow.id
    )
    attributes = span.attributes or {}
    assert attributes[WORKFLOW_INPUT_TOKENS] == workflow.usage.prompt_tokens
    assert attributes[WORKFLOW_OUTPUT_TOKENS] == workflow.usage.completion_tokens
    assert attributes[WORKFLOW_COST_USD] == pytest.approx(workflow.usage.cost_usd)


async def test_a_hundred_identical_requests_cause_one_execution(
    stack: InProcessStack, tmp_path: Path, fake: FakeOpenAI, reflection: ServiceServer
) -> None:
    """50 CreateWorkflow and 50 RunWorkflow calls at once, identical but for whitespace and
    case of the topic: every one answers with the same workflow, the model is called for one
    execution only (draft and critique), and the store holds one record."""
    fake.behaviour.update(default_score=9.0, latency=0.3)  # one iteration, slow enough to join
    server = await _gateway_on(stack, tmp_path, reflection)
    topic = f"retrieval augmented generation for language agents {uuid.uuid4().hex[:8]}"
    spellings = [topic, f"  {topic.upper()} ", topic.replace(" ", "   ")]
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = workflow_grpc.WorkflowServiceStub(channel)

            async def create(i: int) -> str:
                request = _create(spellings[i % 3], cache_policy=pb.CACHE_POLICY_BYPASS)
                reply: pb.CreateWorkflowResponse = await stub.CreateWorkflow(request, timeout=60)
                return reply.workflow.name

            async def run(i: int) -> str:
                request = _create(spellings[i % 3], cache_policy=pb.CACHE_POLICY_BYPASS)
                reply: pb.RunWorkflowResponse = await stub.RunWorkflow(
                    pb.RunWorkflowRequest(workflow=request.workflow), timeout=60
                )
                assert reply.workflow.state == pb.WORKFLOW_STATE_SUCCEEDED
                return reply.workflow.name

            names = await asyncio.gather(
                *(create(i) for i in range(50)), *(run(i) for i in range(50))
            )
            final = await _ended(stub, names[0])
            listed = await stub.ListWorkflows(
                pb.ListWorkflowsRequest(filter=f'topic:"{topic[-8:]}"', page_size=100)
            )
    finally:
        await server.stop(0)
    assert len(set(names)) == 1
    assert final.state == pb.WORKFLOW_STATE_SUCCEEDED
    assert len(fake.requests) == 2  # one draft, one critique: a single execution
    assert [w.name for w in listed.workflows] == [names[0]]


@pytest.mark.parametrize("recent_seconds", [30.0, 0.0])
async def test_identical_requests_the_cache_answers_are_each_recorded(
    stack: InProcessStack,
    tmp_path: Path,
    fake: FakeOpenAI,
    reflection: ServiceServer,
    recent_seconds: float,
) -> None:
    """Once a topic's answer is cached, 30 identical concurrent RunWorkflow calls (JOIN, the
    default) are 30 workflows of their own: distinct names, each a cache hit, each recorded
    SUCCEEDED (GetWorkflow), none joined to another, and the model is not called again;
    whether the gateway's first level answers them (30 s) or each looks the cache up (0: a
    twin still looking up is waited for, then this request is answered from the cache too)."""
    fake.behaviour.update(default_score=9.0)
    server = await gateway(
        stack,
        tmp_path,
        reflection_addr=f"127.0.0.1:{reflection.port}",
        rate_limit_per_second=0,
        replay_seconds=0,  # each request is a workflow run
        cache_recent_seconds=recent_seconds,
        # Every lookup asks research for the library's version: each workflow is still
        # RUNNING while that call is out, so its twins would join it if they could.
        cache_library_version_seconds=0,
    )
    topic = f"self-reflection in language agents that repair plans {uuid.uuid4().hex[:8]}"
    request = pb.RunWorkflowRequest(workflow=_create(topic).workflow)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = workflow_grpc.WorkflowServiceStub(channel)
            first: pb.RunWorkflowResponse = await stub.RunWorkflow(request, timeout=60)
            model_calls = len(fake.requests)

            async def run() -> pb.Workflow:
                reply: pb.RunWorkflowResponse = await stub.RunWorkflow(request, timeout=60)
                return reply.workflow

            answers = await asyncio.gather(*(run() for _ in range(30)))
            stored = [
                (await stub.GetWorkflow(pb.GetWorkflowRequest(name=w.name), timeout=10)).workflow
                for w in answers
            ]
    finally:
        await server.stop(0)
    assert not first.workflow.cache.hit
    assert len({w.name for w in answers}) == 30
    assert first.workflow.name not in {w.name for w in answers}
    assert all(w.cache.hit and w.cache.source_workflow == first.workflow.name for w in answers)
    assert [w.state for w in stored] == [pb.WORKFLOW_STATE_SUCCEEDED] * 30
    assert [w.name for w in stored] == [w.name for w in answers]
    assert len(fake.requests) == model_calls


async def test_identical_requests_to_two_gateways_join_through_redis(
    stack: InProcessStack,
    tmp_path: Path,
    fake: FakeOpenAI,
    reflection: ServiceServer,
    redis_url: str,
) -> None:
    """Two replicas sharing Redis: 20 identical creates spread over both start one workflow
    (one draft and one critique at the model), which both replicas serve."""
    fake.behaviour.update(default_score=9.0, latency=0.3)
    shared = {"reflection_addr": f"127.0.0.1:{reflection.port}", "rate_limit_per_second": 0}
    one = await gateway(stack, tmp_path / "a", redis_url=redis_url, **shared)
    two = await gateway(stack, tmp_path / "b", redis_url=redis_url, **shared)
    topic = (
        f"retrieval-augmented generation for language agents across replicas {uuid.uuid4().hex[:8]}"
    )
    request = _create(topic, cache_policy=pb.CACHE_POLICY_BYPASS)
    try:
        async with (
            grpc.aio.insecure_channel(f"127.0.0.1:{one.port}") as a,
            grpc.aio.insecure_channel(f"127.0.0.1:{two.port}") as b,
        ):
            stubs = [workflow_grpc.WorkflowServiceStub(a), workflow_grpc.WorkflowServiceStub(b)]
            replies = await asyncio.gather(
                *(stubs[i % 2].CreateWorkflow(request, timeout=30) for i in range(20))
            )
            names = {reply.workflow.name for reply in replies}
            assert len(names) == 1
            final = await _ended(stubs[1], names.pop())
    finally:
        await one.stop(0)
        await two.stop(0)
    assert final.state == pb.WORKFLOW_STATE_SUCCEEDED
    assert len(fake.requests) == 2


async def test_reject_and_enqueue(
    stack: InProcessStack, tmp_path: Path, fake: FakeOpenAI, reflection: ServiceServer
) -> None:
    """While a workflow runs, an identical REJECT create is ALREADY_EXISTS naming it; an
    ENQUEUE create waits PENDING, starts after it ends and is answered from the cache it
    filled (no second model call)."""
    fake.behaviour.update(default_score=9.0, latency=0.3)
    server = await _gateway_on(stack, tmp_path, reflection)
    topic = f"self-reflection in retrieval augmented agents {uuid.uuid4().hex[:8]}"
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = workflow_grpc.WorkflowServiceStub(channel)
            leader = (await stub.CreateWorkflow(_create(topic), timeout=30)).workflow
            strategy = pb.MULTITASK_STRATEGY_REJECT
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.CreateWorkflow(_create(topic, multitask_strategy=strategy))
            queued = (
                await stub.CreateWorkflow(
                    _create(topic, multitask_strategy=pb.MULTITASK_STRATEGY_ENQUEUE)
                )
            ).workflow
            first = await _ended(stub, leader.name)
            second = await _ended(stub, queued.name)
    finally:
        await server.stop(0)
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    status = rpc_status.from_call(caught.value)
    assert status is not None
    info = error_details_pb2.ErrorInfo()
    assert any(d.Unpack(info) for d in status.details)
    assert info.metadata["running"] == leader.name
    assert queued.name != leader.name
    assert queued.state == pb.WORKFLOW_STATE_PENDING
    assert first.state == second.state == pb.WORKFLOW_STATE_SUCCEEDED
    assert not first.cache.hit
    assert second.cache.hit
    assert second.steps[0].start_time.ToNanoseconds() >= first.end_time.ToNanoseconds()
    assert len(fake.requests) == 2
    assert second.usage.total_tokens == 0  # a cache hit spends nothing


async def test_a_daily_key_budget_is_shared_by_two_gateways_through_redis(
    stack: InProcessStack, tmp_path: Path, redis_url: str
) -> None:
    """A key with a daily budget of 1 token: its first workflow (on gateway A) spends its
    tokens; the next one, on gateway B, is RESOURCE_EXHAUSTED with a QuotaFailure naming the
    key (HTTP 429 over REST); another key of the same tenant is not affected."""
    keys = keys_file(
        tmp_path / "daily.keys",
        json.dumps(
            {**json.loads(key_line("pk-capped", key_id="capped", scopes=RUN)), "daily_tokens": 1}
        ),
        key_line("pk-free", key_id="free", scopes=RUN),
    )
    settings: dict[str, Any] = {
        "allow_anonymous": False,
        "api_keys_file": keys,
        "redis_url": redis_url,
        "http_port": 0,
    }
    one = await gateway(stack, tmp_path / "a", **settings)
    two = await gateway(stack, tmp_path / "b", **settings)
    request = pb.RunWorkflowRequest(
        workflow=_create(
            "retrieval augmented generation", cache_policy=pb.CACHE_POLICY_BYPASS
        ).workflow
    )
    try:
        async with (
            grpc.aio.insecure_channel(f"127.0.0.1:{one.port}") as a,
            grpc.aio.insecure_channel(f"127.0.0.1:{two.port}") as b,
        ):
            spent = await workflow_grpc.WorkflowServiceStub(a).RunWorkflow(
                request, metadata=bearer("pk-capped"), timeout=60
            )
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await workflow_grpc.WorkflowServiceStub(b).RunWorkflow(
                    request, metadata=bearer("pk-capped"), timeout=60
                )
            other = await workflow_grpc.WorkflowServiceStub(b).CreateWorkflow(
                _create("retrieval augmented generation"), metadata=bearer("pk-free")
            )
            async with httpx.AsyncClient(base_url=rest_url(two), timeout=10) as http:
                rest = await http.post(
                    "/v1/workflows:run",
                    json={"kind": "WORKFLOW_KIND_REFLECTION", "topic": "anything at all"},
                    headers={"authorization": "Bearer pk-capped"},
                )
    finally:
        await one.stop(0)
        await two.stop(0)
    assert spent.workflow.usage.total_tokens > 0  # the offline provider counts words
    assert spent.workflow.usage.cost_usd == 0  # and costs nothing
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    status = rpc_status.from_call(caught.value)
    assert status is not None
    failure = error_details_pb2.QuotaFailure()
    assert any(d.Unpack(failure) for d in status.details)
    assert failure.violations[0].subject == "key:capped"
    assert "daily token budget spent" in failure.violations[0].description
    assert other.workflow.state == pb.WORKFLOW_STATE_PENDING
    assert rest.status_code == 429
    assert any(
        d.get("@type", "").endswith("google.rpc.QuotaFailure") for d in rest.json()["details"]
    )


async def test_identical_creates_join_on_the_temporal_engine(temporal_stack: TemporalStack):
    """On the Temporal engine too, 20 identical creates at once start one workflow."""
    topic = f"retrieval augmented generation on temporal {uuid.uuid4().hex[:8]}"
    async with grpc.aio.insecure_channel(temporal_stack.address) as channel:
        stub = workflow_grpc.WorkflowServiceStub(channel)
        request = _create(topic, cache_policy=pb.CACHE_POLICY_BYPASS)
        replies = await asyncio.gather(
            *(stub.CreateWorkflow(request, timeout=30) for _ in range(20))
        )
        names = {reply.workflow.name for reply in replies}
        assert len(names) == 1
        final = await _ended(stub, names.pop())
        listed = await stub.ListWorkflows(
            pb.ListWorkflowsRequest(filter=f'topic:"{topic[-8:]}"', page_size=100)
        )
    assert final.state == pb.WORKFLOW_STATE_SUCCEEDED
    assert len(listed.workflows) == 1


async def test_an_enqueued_create_runs_after_its_twin_on_the_temporal_engine(
    temporal_stack: TemporalStack,
):
    """ENQUEUE on the Temporal engine: a second workflow that starts only once the first
    has ended (the worker's wait activity), then succeeds."""
    topic = f"retrieval augmented generation enqueued {uuid.uuid4().hex[:8]}"
    async with grpc.aio.insecure_channel(temporal_stack.address) as channel:
        stub = workflow_grpc.WorkflowServiceStub(channel)
        first = (await stub.CreateWorkflow(_create(topic), timeout=30)).workflow
        queued = _create(topic, multitask_strategy=pb.MULTITASK_STRATEGY_ENQUEUE)
        second = (await stub.CreateWorkflow(queued, timeout=30)).workflow
        done = await _ended(stub, first.name)
        after = await _ended(stub, second.name)
    assert second.name != first.name
    assert done.state == after.state == pb.WORKFLOW_STATE_SUCCEEDED
    assert after.steps[0].start_time.ToNanoseconds() >= done.end_time.ToNanoseconds()


async def test_the_openapi_document_has_the_new_fields(stack: InProcessStack) -> None:
    """The REST facade documents the budget and coalescing fields and the usage."""
    async with httpx.AsyncClient(base_url=stack.http_url, timeout=10) as http:
        document = (await http.get("/openapi.json")).json()
    text = json.dumps(document)
    for name in ("maxTokens", "maxCostUsd", "multitaskStrategy", "MULTITASK_STRATEGY_ENQUEUE"):
        assert name in text, name
    assert "costUsd" in text
    assert "STOP_REASON_BUDGET_EXHAUSTED" in text
