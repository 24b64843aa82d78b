"""One workflow over REST is one trace across the four services: the HTTP span, the workflow
and its steps, the gRPC calls, a span per research source and per LLM call (with GenAI
attributes and its attempts), all under the trace id the client sent and the response returns."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from ponder_devstack.fake_openai import FakeOpenAI, serve_fake_openai
from ponder_gateway.service import GatewayModule
from ponder_gateway.settings import GatewaySettings
from ponder_reflection.service import ReflectionModule
from ponder_reflection.settings import ReflectionSettings
from ponder_runtime import load_settings
from tests.conftest import InProcessStack, start_service


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    """A local OpenAI-compatible server whose first call fails with a 500 (one retry)."""
    api = serve_fake_openai()
    api.behaviour.update(fail_next=1, status_when_failing=500)
    yield api
    api.close()


def _service(span: ReadableSpan) -> str:
    return str(span.resource.attributes.get("service.name", ""))


def _count(value: object) -> int:
    assert isinstance(value, int)
    return value


class Trace:
    """The finished spans of one trace, with their parent links."""

    def __init__(self, spans: list[ReadableSpan]) -> None:
        self.spans = spans
        self._by_id = {s.context.span_id: s for s in spans}
        self.named = {s.name: s for s in spans}

    def parent(self, span: ReadableSpan) -> ReadableSpan | None:
        """The span's parent within the trace (None for a root or a remote parent)."""
        return self._by_id.get(span.parent.span_id) if span.parent is not None else None

    def ancestors(self, span: ReadableSpan) -> list[str]:
        """Names of the span's ancestors, nearest first."""
        chain = []
        current = self.parent(span)
        while current is not None:
            chain.append(current.name)
            current = self.parent(current)
        return chain


async def _run_traced(
    stack: InProcessStack, fake: FakeOpenAI, tmp_path, trace_id: str, spans: InMemorySpanExporter
) -> httpx.Response:
    """One reflection workflow over REST through a gateway and a reflection service on the
    fake model (both exporting to `spans`: stopping them shuts their exporter down, so not
    the stack's), sent with `traceparent`."""
    common = {"host": "127.0.0.1", "port": 0}
    reflection = await start_service(
        load_settings(
            ReflectionSettings,
            **common,
            openai_api_key="sk-test",
            openai_base_url=fake.base_url,
            model="fake-model",
            retry_base_seconds=0.02,
            retry_max_seconds=0.1,
        ),
        ReflectionModule,
        spans,
    )
    gateway = await start_service(
        load_settings(
            GatewaySettings,
            **common,
            http_port=0,
            research_addr=stack.address("research"),
            embedding_addr=stack.address("embedding"),
            reflection_addr=f"127.0.0.1:{reflection.port}",
            store_path=tmp_path / "workflows.sqlite3",
        ),
        GatewayModule,
        spans,
    )
    try:
        module = gateway.service
        assert isinstance(module, GatewayModule)
        assert module.http is not None
        topic = f"How do language agents use self-reflection? ({uuid.uuid4().hex[:8]})"
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{module.http.port}", timeout=60
        ) as http:
            return await http.post(
                "/v1/workflows/reflection",
                json={"topic": topic},
                headers={"traceparent": f"00-{trace_id}-{'ab' * 8}-01"},
            )
    finally:
        await gateway.stop(0)
        await reflection.stop(0)


def _check_gateway(trace: Trace, workflow_id: str) -> None:
    http_span = trace.named["POST /v1/workflows/reflection"]
    assert http_span.kind is SpanKind.SERVER
    assert http_span.parent is not None
    assert http_span.parent.is_remote  # the client's span
    run = trace.named["workflow reflection"]
    assert trace.parent(run) is http_span
    assert run.attributes is not None
    assert run.attributes["ponder.workflow.id"] == workflow_id
    assert run.attributes["ponder.workflow.outcome"] == "SUCCEEDED"
    steps = sorted(
        (s for s in trace.spans if s.name.startswith("step ")), key=lambda s: s.start_time or 0
    )
    assert [(s.attributes or {})["ponder.workflow.step"] for s in steps] == [
        "cache_lookup",
        "research",
        "rank",
        "reflect",
        "cache_store",
    ]
    for step in steps:
        assert trace.parent(step) is run
        assert (step.attributes or {})["ponder.step.state"] == "SUCCEEDED"
    assert (steps[0].attributes or {})["ponder.cache.result"] == "miss"
    lookups = [
        s
        for s in trace.spans
        if s.name == "/ponder.embedding.v1.EmbeddingService/LookupCache"
        and s.kind is SpanKind.SERVER
    ]
    assert len(lookups) == 1
    assert (lookups[0].attributes or {})["ponder.cache.result"] == "miss"
    assert "ponder.cache.similarity" in (lookups[0].attributes or {})


def _check_research(trace: Trace) -> None:
    served = [
        s
        for s in trace.spans
        if s.name == "/ponder.research.v1.ResearchService/SearchSources"
        and s.kind is SpanKind.SERVER
    ]
    assert len(served) == 1
    assert _service(served[0]) == "research"
    assert "step research" in trace.ancestors(served[0])
    library = trace.named["source library"]
    assert _service(library) == "research"
    assert library.attributes is not None
    assert library.attributes["ponder.source.state"] == "ok"
    assert _count(library.attributes["ponder.source.results"]) > 0
    assert trace.ancestors(library)[0] == served[0].name


def _check_llm_calls(trace: Trace) -> None:
    chats = sorted(
        (s for s in trace.spans if s.name == "chat fake-model"), key=lambda s: s.start_time or 0
    )
    assert len(chats) >= 2  # draft and critique at least
    for chat in chats:
        attributes = chat.attributes or {}
        assert chat.kind is SpanKind.CLIENT
        assert _service(chat) == "reflection"
        assert "step reflect" in trace.ancestors(chat)
        assert attributes["gen_ai.operation.name"] == "chat"
        assert attributes["gen_ai.provider.name"] == "openai"
        assert attributes["gen_ai.request.model"] == "fake-model"
        assert _count(attributes["gen_ai.usage.input_tokens"]) > 0
        assert _count(attributes["gen_ai.usage.output_tokens"]) > 0
        assert chat.status.status_code is not StatusCode.ERROR
    http_calls = [s for s in trace.spans if trace.parent(s) in chats]
    assert len(http_calls) == len(chats) + 1  # one HTTP request per attempt: the 500 too
    assert all(s.kind is SpanKind.CLIENT for s in http_calls)
    codes = {  # the instrumentation's default (older) HTTP conventions, or the stable ones
        (s.attributes or {}).get(
            "http.status_code", (s.attributes or {}).get("http.response.status_code")
        )
        for s in http_calls
    }
    assert codes == {200, 500}
    attempts = [(c.attributes or {})["ponder.llm.attempts"] for c in chats]
    assert attempts == [2] + [1] * (len(chats) - 1)  # the 500, then the answer


async def test_a_rest_workflow_is_one_trace_across_all_services(
    stack: InProcessStack, fake: FakeOpenAI, tmp_path
):
    trace_id = uuid.uuid4().hex
    own = InMemorySpanExporter()
    reply = await _run_traced(stack, fake, tmp_path, trace_id, own)
    assert reply.status_code == 200, reply.text
    workflow = reply.json()["workflow"]
    assert reply.headers["x-trace-id"] == workflow["traceId"] == trace_id
    trace = Trace(
        [
            s
            for s in [*stack.spans.get_finished_spans(), *own.get_finished_spans()]
            if f"{s.context.trace_id:032x}" == trace_id
        ]
    )
    assert {_service(s) for s in trace.spans} == {
        "gateway",
        "research",
        "embedding",
        "reflection",
    }
    assert any(_service(s) == "embedding" and s.kind is SpanKind.SERVER for s in trace.spans)
    _check_gateway(trace, workflow["id"])
    _check_research(trace)
    _check_llm_calls(trace)


async def test_a_long_running_workflow_continues_the_trace_of_its_create_call(
    stack: InProcessStack,
):
    """CreateWorkflow returns at once; the workflow then runs in the background, and its
    workflow and step spans still belong to the trace of the create request."""
    topic = f"What limits self-correction in language models? ({uuid.uuid4().hex[:8]})"
    async with httpx.AsyncClient(base_url=stack.http_url, timeout=60) as http:
        created = await http.post(
            "/v1/workflows", json={"kind": "WORKFLOW_KIND_REFLECTION", "topic": topic}
        )
        assert created.status_code == 200, created.text
        name = created.json()["workflow"]["name"]
        watched = await http.get(f"/v1/{name}:watch")  # NDJSON until the workflow ends
    assert watched.status_code == 200
    last = json.loads(watched.text.strip().splitlines()[-1])["result"]
    assert last["workflow"]["state"] == "WORKFLOW_STATE_SUCCEEDED"
    trace_id = created.headers["x-trace-id"]
    assert last["workflow"]["traceId"] == trace_id
    trace = Trace(
        [s for s in stack.spans.get_finished_spans() if f"{s.context.trace_id:032x}" == trace_id]
    )
    run = trace.named["workflow reflection"]
    assert trace.ancestors(run)[-1] == "POST /v1/workflows"
    steps = {s.name for s in trace.spans if trace.parent(s) is run}
    assert {"step research", "step reflect"} <= steps
