"""ServiceServer and ErrorMappingInterceptor over a real in-process server and real sockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from ponder.reflection.v1 import reflection_service_pb2 as reflection_pb2
from ponder.reflection.v1 import reflection_service_pb2_grpc as reflection_grpc
from ponder.research.v1 import research_service_pb2 as research_pb2
from ponder.research.v1 import research_service_pb2_grpc as research_grpc
from ponder.type.v1 import document_pb2
from ponder_runtime import (
    FieldViolation,
    InvalidArgumentError,
    NotFoundError,
    UnavailableError,
)


RESEARCH = "ponder.research.v1.ResearchService"
REFLECTION = "ponder.reflection.v1.ReflectionService"
SEARCH_METHOD = f"/{RESEARCH}/SearchSources"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class FaultyResearch(research_grpc.ResearchServiceServicer):
    """Fails in the way the query names: invalid, unavailable, crash; otherwise echoes it."""

    async def SearchSources(
        self,
        request: research_pb2.SearchSourcesRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> research_pb2.SearchSourcesResponse:
        """Raise or answer, depending on request.query."""
        if request.query == "invalid":
            raise InvalidArgumentError(
                [
                    FieldViolation("query", "must not be 'invalid'"),
                    FieldViolation("max_results", "must be between 1 and 50, got 500"),
                ]
            )
        if request.query == "unavailable":
            raise UnavailableError("the library is still loading", retry_after_seconds=2.5)
        if request.query == "crash":
            raise RuntimeError("secret internal detail")
        return research_pb2.SearchSourcesResponse(
            documents=[document_pb2.Document(id="doc-1", title=request.query)],
            duplicates_removed=request.max_results,
        )


class HalfStream(reflection_grpc.ReflectionServiceServicer):
    """StreamReflect sends one delta, then fails (or finishes when the topic is 'finish').
    Reflect is left to the generated base class (unimplemented)."""

    async def StreamReflect(
        self,
        request: reflection_pb2.StreamReflectRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[reflection_pb2.StreamReflectResponse]:
        """Yield one text delta, then raise NotFoundError unless the topic is 'finish'."""
        yield reflection_pb2.StreamReflectResponse(text_delta=f"about {request.topic}")
        if request.topic == "finish":
            yield reflection_pb2.StreamReflectResponse(text_delta="done")
            return
        if request.topic == "crash":
            raise KeyError("lost")
        raise NotFoundError("no such topic", metadata={"topic": request.topic})


class FaultyModule:
    """Serves FaultyResearch and HalfStream; start() waits for `release` when given one."""

    def __init__(self, release: asyncio.Event | None = None) -> None:
        self.release = release
        self.started = False
        self.closed = False

    @property
    def service_names(self) -> Sequence[str]:
        """Both services."""
        return [RESEARCH, REFLECTION]

    def register(self, server: grpc.aio.Server) -> None:
        """Add both servicers."""
        research_grpc.add_ResearchServiceServicer_to_server(FaultyResearch(), server)
        reflection_grpc.add_ReflectionServiceServicer_to_server(HalfStream(), server)

    async def start(self) -> None:
        """Wait until released (if a release event was given)."""
        if self.release is not None:
            await self.release.wait()
        self.started = True

    async def close(self) -> None:
        """Remember the close."""
        self.closed = True


def _details(exc: grpc.aio.AioRpcError) -> list[Message]:
    """The google.rpc details of a failed call, unpacked."""
    status = rpc_status.from_call(exc)
    assert status is not None, "no grpc-status-details-bin in the trailers"
    assert status.code == exc.code().value[0]
    assert status.message == exc.details()
    unpacked: list[Message] = []
    for detail in status.details:
        for kind in (
            error_details_pb2.ErrorInfo,
            error_details_pb2.BadRequest,
            error_details_pb2.RetryInfo,
        ):
            if detail.Is(kind.DESCRIPTOR):
                message = kind()
                detail.Unpack(message)
                unpacked.append(message)
    return unpacked


async def _drain(
    call: grpc.aio.UnaryStreamCall[Any, Any],
) -> tuple[list[str], grpc.aio.AioRpcError | None]:
    """The text deltas a server stream delivered, and the error that ended it (if any)."""
    received: list[str] = []
    try:
        async for message in call:
            received.append(message.text_delta)
    except grpc.aio.AioRpcError as exc:
        return received, exc
    return received, None


async def _health(channel: grpc.aio.Channel, service: str = "") -> int:
    reply = await health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service=service), timeout=5
    )
    status: int = reply.status
    return status


@pytest.fixture
async def faulty(start_server):
    """A ready server running FaultyModule."""
    return await start_server(FaultyModule())


@pytest.fixture
def research(faulty) -> research_grpc.ResearchServiceStub:
    """A ResearchService stub on the faulty server."""
    return research_grpc.ResearchServiceStub(faulty.channel)


@pytest.fixture
def reflection(faulty) -> reflection_grpc.ReflectionServiceStub:
    """A ReflectionService stub on the faulty server."""
    return reflection_grpc.ReflectionServiceStub(faulty.channel)


class TestErrorMappingUnary:
    async def test_success_passes_through(self, research) -> None:
        """A handler that returns normally answers with its reply."""
        reply = await research.SearchSources(
            research_pb2.SearchSourcesRequest(query="transformers", max_results=3), timeout=5
        )
        assert [doc.title for doc in reply.documents] == ["transformers"]
        assert reply.duplicates_removed == 3

    async def test_invalid_argument_carries_bad_request(self, research) -> None:
        """InvalidArgumentError -> INVALID_ARGUMENT with ErrorInfo and every field violation."""
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await research.SearchSources(
                research_pb2.SearchSourcesRequest(query="invalid"), timeout=5
            )
        exc = caught.value
        assert exc.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert exc.details() == (
            "invalid request: query: must not be 'invalid'; "
            "max_results: must be between 1 and 50, got 500"
        )
        info, bad_request = _details(exc)
        assert isinstance(info, error_details_pb2.ErrorInfo)
        assert (info.domain, info.reason) == ("ponder.dev", "INVALID_ARGUMENT")
        assert isinstance(bad_request, error_details_pb2.BadRequest)
        assert [v.field for v in bad_request.field_violations] == ["query", "max_results"]

    async def test_unavailable_carries_retry_info(self, research) -> None:
        """UnavailableError -> UNAVAILABLE with a RetryInfo of the given delay."""
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await research.SearchSources(
                research_pb2.SearchSourcesRequest(query="unavailable"), timeout=5
            )
        exc = caught.value
        assert exc.code() is grpc.StatusCode.UNAVAILABLE
        assert exc.details() == "the library is still loading"
        info, retry = _details(exc)
        assert isinstance(info, error_details_pb2.ErrorInfo)
        assert info.reason == "UNAVAILABLE"
        assert isinstance(retry, error_details_pb2.RetryInfo)
        assert retry.retry_delay.ToNanoseconds() == 2_500_000_000

    async def test_unexpected_exception_becomes_internal(self, research) -> None:
        """A plain RuntimeError -> INTERNAL naming the method and type, not the message."""
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await research.SearchSources(
                research_pb2.SearchSourcesRequest(query="crash"), timeout=5
            )
        exc = caught.value
        assert exc.code() is grpc.StatusCode.INTERNAL
        assert exc.details() == f"internal error in {SEARCH_METHOD}: RuntimeError"
        assert "secret" not in (exc.details() or "")
        assert rpc_status.from_call(exc) is None

    async def test_unimplemented_base_method(self, reflection) -> None:
        """A method left to the generated base servicer -> UNIMPLEMENTED, not INTERNAL."""
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await reflection.Reflect(reflection_pb2.ReflectRequest(topic="rag"), timeout=5)
        assert caught.value.code() is grpc.StatusCode.UNIMPLEMENTED
        assert caught.value.details() == f"/{REFLECTION}/Reflect is not implemented yet"

    async def test_unknown_method_is_unimplemented(self, faulty) -> None:
        """A method no servicer registered -> UNIMPLEMENTED from gRPC itself."""
        call = faulty.channel.unary_unary(f"/{RESEARCH}/NoSuchMethod")
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(b"", timeout=5)
        assert caught.value.code() is grpc.StatusCode.UNIMPLEMENTED

    async def test_server_survives_errors(self, research) -> None:
        """After every kind of failure the next call still succeeds."""
        for query in ("invalid", "unavailable", "crash"):
            with pytest.raises(grpc.aio.AioRpcError):
                await research.SearchSources(
                    research_pb2.SearchSourcesRequest(query=query), timeout=5
                )
        reply = await research.SearchSources(
            research_pb2.SearchSourcesRequest(query="still here"), timeout=5
        )
        assert reply.documents[0].title == "still here"


class TestErrorMappingStream:
    async def test_messages_before_the_error_arrive(self, reflection) -> None:
        """A stream yields one message, then its PonderError arrives with code and details."""
        call = reflection.StreamReflect(reflection_pb2.StreamReflectRequest(topic="rag"), timeout=5)
        received, exc = await _drain(call)
        assert exc is not None
        assert received == ["about rag"]
        assert exc.code() is grpc.StatusCode.NOT_FOUND
        assert exc.details() == "no such topic"
        (info,) = _details(exc)
        assert isinstance(info, error_details_pb2.ErrorInfo)
        assert info.reason == "NOT_FOUND"
        assert dict(info.metadata) == {"topic": "rag"}

    async def test_unexpected_exception_in_stream_becomes_internal(self, reflection) -> None:
        """A plain exception after the first message -> INTERNAL naming the type."""
        call = reflection.StreamReflect(
            reflection_pb2.StreamReflectRequest(topic="crash"), timeout=5
        )
        received, exc = await _drain(call)
        assert exc is not None
        assert received == ["about crash"]
        assert exc.code() is grpc.StatusCode.INTERNAL
        assert exc.details() == (f"internal error in /{REFLECTION}/StreamReflect: KeyError")

    async def test_stream_that_finishes_is_ok(self, reflection) -> None:
        """A stream that ends normally delivers every message and status OK."""
        call = reflection.StreamReflect(
            reflection_pb2.StreamReflectRequest(topic="finish"), timeout=5
        )
        received = [message.text_delta async for message in call]
        assert received == ["about finish", "done"]
        assert await call.code() is grpc.StatusCode.OK


class TestHealth:
    async def test_not_serving_until_ready(self, start_server) -> None:
        """Health is NOT_SERVING while the module starts and SERVING once start() returned."""
        release = asyncio.Event()
        module = FaultyModule(release)
        running = await start_server(module, ready=False)
        assert running.port > 0
        ready = asyncio.create_task(running.server.mark_ready())
        try:
            for service in ("", RESEARCH, REFLECTION):
                assert await _health(running.channel, service) == NOT_SERVING
            assert not module.started
        finally:
            release.set()
            await ready
        assert module.started
        for service in ("", RESEARCH, REFLECTION):
            assert await _health(running.channel, service) == SERVING

    async def test_unknown_service_is_not_found(self, faulty) -> None:
        """Check for a service the server does not host fails with NOT_FOUND."""
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _health(faulty.channel, "ponder.nope.v1.Nope")
        assert caught.value.code() is grpc.StatusCode.NOT_FOUND

    async def test_watch_sees_not_serving_on_stop(self, start_server) -> None:
        """An open Watch("") sees SERVING, then NOT_SERVING when the server drains."""
        module = FaultyModule()
        running = await start_server(module)
        watch = health_pb2_grpc.HealthStub(running.channel).Watch(
            health_pb2.HealthCheckRequest(service=""), timeout=10
        )
        first = await watch.read()
        assert first.status == SERVING
        stopping = asyncio.create_task(running.stop(0.5))
        second = await asyncio.wait_for(watch.read(), timeout=5)
        assert second.status == NOT_SERVING
        watch.cancel()
        await stopping
        assert module.closed

    async def test_stop_lets_in_flight_call_finish(self, start_server) -> None:
        """stop(grace) lets an RPC that is already running complete."""
        entered, release = asyncio.Event(), asyncio.Event()

        class Slow(research_grpc.ResearchServiceServicer):
            async def SearchSources(self, request, context):
                """Wait for the test, then answer."""
                entered.set()
                await release.wait()
                return research_pb2.SearchSourcesResponse(duplicates_removed=1)

        class SlowModule(FaultyModule):
            def register(self, server: grpc.aio.Server) -> None:
                """Only the slow research servicer."""
                research_grpc.add_ResearchServiceServicer_to_server(Slow(), server)

        running = await start_server(SlowModule())
        call = research_grpc.ResearchServiceStub(running.channel).SearchSources(
            research_pb2.SearchSourcesRequest(query="q"), timeout=10
        )
        await asyncio.wait_for(entered.wait(), timeout=5)
        stopping = asyncio.create_task(running.stop(5))
        await asyncio.sleep(0.05)
        assert not stopping.done()
        release.set()
        reply = await call
        assert reply.duplicates_removed == 1
        await asyncio.wait_for(stopping, timeout=5)

    async def test_bound_to_a_free_port(self, start_server) -> None:
        """Port 0 binds a free port, and two servers get different ones."""
        first = await start_server(FaultyModule())
        second = await start_server(FaultyModule())
        assert first.port > 0
        assert second.port > 0
        assert first.port != second.port
        assert first.server.port == first.port


class TestReflectionSwitch:
    async def test_reflection_can_be_switched_off(self, start_server) -> None:
        """server_reflection=False leaves the reflection service out (UNIMPLEMENTED)."""
        from grpc_reflection.v1alpha import reflection_pb2 as server_reflection_pb2
        from grpc_reflection.v1alpha import reflection_pb2_grpc as server_reflection_grpc

        running = await start_server(FaultyModule(), server_reflection=False)
        stub = server_reflection_grpc.ServerReflectionStub(running.channel)
        call = stub.ServerReflectionInfo(
            iter([server_reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call.read()
        assert caught.value.code() is grpc.StatusCode.UNIMPLEMENTED
