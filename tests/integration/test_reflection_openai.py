"""ReflectionService on an OpenAI-compatible endpoint: the real `openai` client against a local
server that speaks the API and can stream, rate-limit, fail, hang or send malformed JSON."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ponder.reflection.v1 import reflection_service_pb2 as pb
from ponder.reflection.v1 import reflection_service_pb2_grpc as reflection_grpc
from ponder.type.v1 import document_pb2
from ponder_devstack.fake_openai import FakeOpenAI, serve_fake_openai
from ponder_reflection.service import ReflectionModule
from ponder_reflection.settings import ReflectionSettings
from ponder_runtime import ServiceServer, load_settings
from tests.conftest import start_service
from tests.support.documents import DOCUMENTS
from tests.support.grpc_errors import bad_request_fields


def request(**fields: object) -> pb.ReflectRequest:
    """A reflection request on the two documents."""
    return pb.ReflectRequest(topic="self-reflection in LLM agents", documents=DOCUMENTS, **fields)  # type: ignore[arg-type]


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    """A fresh local OpenAI-compatible server."""
    api = serve_fake_openai()
    yield api
    api.close()


async def _server(fake: FakeOpenAI, **overrides: object) -> ServiceServer:
    settings = load_settings(
        ReflectionSettings,
        host="127.0.0.1",
        port=0,
        openai_api_key="sk-test",
        openai_base_url=fake.base_url,
        model="fake-model",
        retry_base_seconds=0.02,
        retry_max_seconds=0.2,
        **overrides,
    )
    return await start_service(settings, ReflectionModule, InMemorySpanExporter())


@pytest.fixture
async def reflect_stub(fake: FakeOpenAI):
    """A stub to a reflection service on the fake endpoint (defaults otherwise)."""
    server = await _server(fake)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield reflection_grpc.ReflectionServiceStub(channel)
    await server.stop(0)


async def test_stops_when_the_score_reaches_the_threshold(fake, reflect_stub):
    """Scores 6 then 9 against a threshold of 8: two iterations, then stop."""
    fake.behaviour.critique_scores = [6.0, 9.0]
    reply = await reflect_stub.Reflect(request(max_iterations=4, score_threshold=8), timeout=30)
    assert [i.critique.score for i in reply.iterations] == [6.0, 9.0]
    assert reply.stop_reason == pb.STOP_REASON_SCORE_THRESHOLD_REACHED
    assert (reply.provider, reply.model, reply.offline) == ("openai", "fake-model", False)
    assert [s.kind for s in reply.steps] == [
        pb.REFLECTION_STEP_KIND_DRAFT,
        pb.REFLECTION_STEP_KIND_CRITIQUE,
        pb.REFLECTION_STEP_KIND_REFINE,
        pb.REFLECTION_STEP_KIND_CRITIQUE,
    ]
    assert all(s.usage.total_tokens > 0 for s in reply.steps)
    assert reply.usage.total_tokens == sum(s.usage.total_tokens for s in reply.steps)


async def test_stops_at_max_iterations(fake, reflect_stub):
    """Scores that never reach the threshold stop after max_iterations critiques."""
    fake.behaviour.default_score = 5.0
    reply = await reflect_stub.Reflect(request(max_iterations=3, score_threshold=9), timeout=30)
    assert len(reply.iterations) == 3
    assert reply.stop_reason == pb.STOP_REASON_MAX_ITERATIONS_REACHED


async def test_citations_to_nothing_are_removed_and_reported(fake, reflect_stub):
    """A model citing [99] of two documents: the final text drops it and a warning says so;
    the citations point only to supplied document ids."""
    fake.behaviour.cite_missing = True
    reply = await reflect_stub.Reflect(request(max_iterations=1), timeout=30)
    assert "[99]" not in reply.text
    assert any("[99]" in warning for warning in reply.warnings)
    assert reply.citations
    assert {c.document_id for c in reply.citations} <= {d.id for d in DOCUMENTS}


async def test_a_malformed_critique_is_repaired_once(fake, reflect_stub):
    """One malformed JSON critique is repaired by a second request; the reply warns."""
    fake.behaviour.malformed_json_next = 1
    reply = await reflect_stub.Reflect(request(max_iterations=1), timeout=30)
    assert reply.iterations[0].critique.score == 9.0
    assert any("repair" in warning for warning in reply.warnings)


async def test_a_critique_malformed_twice_is_unavailable(fake, reflect_stub):
    """When the repair is malformed too the call fails UNAVAILABLE with a clear message."""
    fake.behaviour.malformed_json_next = 2
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await reflect_stub.Reflect(request(max_iterations=1), timeout=30)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "invalid critique" in (caught.value.details() or "")


async def test_thirty_percent_rate_limited_calls_still_all_succeed(fake):
    """With 30% of calls answered 429 (Retry-After 0.05 s), 20 concurrent reflections all
    succeed within their deadline, thanks to the retries."""
    fake.behaviour.rate_limit_fraction = 0.3
    fake.behaviour.retry_after = "0.05"
    server = await _server(fake, max_attempts=8)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = reflection_grpc.ReflectionServiceStub(channel)
            replies = await asyncio.gather(
                *(
                    stub.Reflect(request(max_iterations=2, score_threshold=10), timeout=30)
                    for _ in range(20)
                )
            )
    finally:
        await server.stop(0)
    assert len(replies) == 20
    assert all(r.text for r in replies)
    assert fake.calls_by_status[429] > 0


async def test_persistent_rate_limits_are_resource_exhausted(fake):
    """When every attempt is rate-limited the call is RESOURCE_EXHAUSTED with RetryInfo."""
    fake.behaviour.rate_limit_fraction = 1.0
    fake.behaviour.retry_after = "0.01"
    server = await _server(fake, max_attempts=2)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await reflection_grpc.ReflectionServiceStub(channel).Reflect(request(), timeout=30)
    finally:
        await server.stop(0)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    status = rpc_status.from_call(caught.value)
    assert status is not None
    assert any(d.Is(error_details_pb2.RetryInfo.DESCRIPTOR) for d in status.details)


async def test_circuit_opens_while_upstream_is_down_then_recovers(fake):
    """After repeated 500s the breaker opens: calls fail fast (no upstream request) with
    UNAVAILABLE; once the upstream is back and the reset time passed, calls succeed."""
    fake.behaviour.status = 500
    server = await _server(fake, max_attempts=2, breaker_failures=3, breaker_reset_seconds=0.5)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = reflection_grpc.ReflectionServiceStub(channel)
            for _ in range(2):
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await stub.Reflect(request(), timeout=30)
                assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
            sent = len(fake.requests)
            started = time.monotonic()
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.Reflect(request(), timeout=30)
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "circuit breaker" in (caught.value.details() or "")
            assert time.monotonic() - started < 0.2
            assert len(fake.requests) == sent
            fake.behaviour.status = 200
            await asyncio.sleep(0.6)
            reply = await stub.Reflect(request(max_iterations=1), timeout=30)
            assert reply.text
    finally:
        await server.stop(0)


async def test_client_cancel_cancels_the_upstream_call(fake, reflect_stub):
    """Cancelling the gRPC call closes the pending model request."""
    fake.behaviour.hang = True
    call = reflect_stub.Reflect(request(), timeout=30)
    for _ in range(100):
        if fake.requests:
            break
        await asyncio.sleep(0.02)
    assert fake.requests, "the model was never called"
    call.cancel()
    for _ in range(100):
        if fake.disconnects:
            break
        await asyncio.sleep(0.02)
    assert fake.disconnects >= 1


async def test_a_short_deadline_bounds_the_model_call(fake, reflect_stub):
    """A 1 s deadline against a 3 s model: DEADLINE_EXCEEDED in about a second, and the
    model request is abandoned rather than left running."""
    fake.behaviour.latency = 3.0
    started = time.monotonic()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await reflect_stub.Reflect(request(), timeout=1.0)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 2.0
    for _ in range(100):
        if fake.disconnects:
            break
        await asyncio.sleep(0.02)
    assert fake.disconnects >= 1


async def test_stream_reflect_emits_events_in_order(fake, reflect_stub):
    """StreamReflect: each step starts before it finishes, the draft's text arrives as deltas
    that add up to it, and `completed` is last."""
    fake.behaviour.critique_scores = [9.5]
    events = [
        event
        async for event in reflect_stub.StreamReflect(
            pb.StreamReflectRequest(
                topic="self-reflection in LLM agents", documents=DOCUMENTS, max_iterations=2
            ),
            timeout=30,
        )
    ]
    kinds = [event.WhichOneof("event") for event in events]
    assert kinds[0] == "step_started"
    assert kinds[-1] == "completed"
    first_finish = kinds.index("step_finished")
    deltas = [e.text_delta for e in events[:first_finish] if e.WhichOneof("event") == "text_delta"]
    assert len(deltas) > 1
    assert "".join(deltas).strip() == events[first_finish].step_finished.text
    assert kinds[first_finish + 1 :].count("step_started") == 1  # the critique
    assert events[-1].completed.score == 9.5


@pytest.mark.parametrize(
    ("fields", "violations"),
    [
        ({"topic": ""}, {"topic"}),
        ({"max_iterations": 6, "score_threshold": 11}, {"max_iterations", "score_threshold"}),
        (
            {"documents": [document_pb2.Document(id="a", summary="x" * 20_001)]},
            {"documents[0].summary"},
        ),
    ],
    ids=["empty-topic", "out-of-range", "oversized-document"],
)
async def test_bad_input(reflect_stub, fields, violations):
    """Bad requests are INVALID_ARGUMENT naming each field, before any model call."""
    message = pb.ReflectRequest(**{"topic": "t", **fields})
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await reflect_stub.Reflect(message, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_fields(caught.value) == violations
