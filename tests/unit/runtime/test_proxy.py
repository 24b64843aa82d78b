"""ServiceProxy: a front server forwarding whole services to a backend, bytes untouched."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from ponder.reflection.v1 import reflection_service_pb2 as reflection_pb2
from ponder.reflection.v1 import reflection_service_pb2_grpc as reflection_grpc
from ponder.research.v1 import research_service_pb2 as research_pb2
from ponder.research.v1 import research_service_pb2_grpc as research_grpc
from ponder.type.v1 import document_pb2
from ponder_runtime import FieldViolation, InvalidArgumentError, NotFoundError
from ponder_runtime.proxy import ServiceProxy


RESEARCH = "ponder.research.v1.ResearchService"
REFLECTION = "ponder.reflection.v1.ReflectionService"


class Backend:
    """What the backend servicers saw: the invocation metadata and deadlines of each call."""

    def __init__(self) -> None:
        self.metadata: list[dict[str, str | bytes]] = []
        self.time_remaining: list[float | None] = []


class BackendResearch(research_grpc.ResearchServiceServicer):
    """Answers with the query as a title; 'invalid' fails with INVALID_ARGUMENT."""

    def __init__(self, seen: Backend) -> None:
        self._seen = seen

    async def SearchSources(
        self,
        request: research_pb2.SearchSourcesRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> research_pb2.SearchSourcesResponse:
        """Record the call, then answer or fail."""
        self._seen.metadata.append(dict(context.invocation_metadata() or ()))
        self._seen.time_remaining.append(context.time_remaining())
        if request.query == "invalid":
            raise InvalidArgumentError([FieldViolation("query", "must not be 'invalid'")])
        if request.query == "slow":
            await asyncio.sleep(5)
        return research_pb2.SearchSourcesResponse(
            documents=[document_pb2.Document(id="d1", title=request.query)],
            duplicates_removed=request.max_results,
        )


class BackendReflection(reflection_grpc.ReflectionServiceServicer):
    """StreamReflect sends two deltas, then fails with NOT_FOUND when the topic is 'fail'."""

    async def StreamReflect(
        self,
        request: reflection_pb2.StreamReflectRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[reflection_pb2.StreamReflectResponse]:
        """Two deltas, then maybe an error."""
        yield reflection_pb2.StreamReflectResponse(text_delta="one")
        yield reflection_pb2.StreamReflectResponse(text_delta="two")
        if request.topic == "fail":
            raise NotFoundError("no such topic")


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


@pytest.fixture
def backend_seen() -> Backend:
    """What the backend recorded."""
    return Backend()


@pytest.fixture
async def front_channel(start_server, module_of, backend_seen) -> grpc.aio.Channel:
    """A channel to a front server that only proxies Research and Reflection to a backend."""

    def register_backend(server: grpc.aio.Server) -> None:
        research_grpc.add_ResearchServiceServicer_to_server(BackendResearch(backend_seen), server)
        reflection_grpc.add_ReflectionServiceServicer_to_server(BackendReflection(), server)

    backend = await start_server(module_of([RESEARCH, REFLECTION], register_backend))

    def register_front(server: grpc.aio.Server) -> None:
        server.add_generic_rpc_handlers(
            [ServiceProxy({RESEARCH: backend.channel, REFLECTION: backend.channel})]
        )

    front = await start_server(module_of([RESEARCH, REFLECTION], register_front))
    channel: grpc.aio.Channel = front.channel
    return channel


class TestServiceProxy:
    async def test_success_passes_the_reply_through(self, front_channel) -> None:
        """A successful call through the front returns the backend's reply unchanged."""
        reply = await research_grpc.ResearchServiceStub(front_channel).SearchSources(
            research_pb2.SearchSourcesRequest(query="rag", max_results=4), timeout=5
        )
        assert [doc.title for doc in reply.documents] == ["rag"]
        assert reply.duplicates_removed == 4

    async def test_error_keeps_code_message_and_details(self, front_channel) -> None:
        """A backend INVALID_ARGUMENT arrives with the same code, message and BadRequest."""
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await research_grpc.ResearchServiceStub(front_channel).SearchSources(
                research_pb2.SearchSourcesRequest(query="invalid"), timeout=5
            )
        exc = caught.value
        assert exc.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert exc.details() == "invalid request: query: must not be 'invalid'"
        status = rpc_status.from_call(exc)
        assert status is not None
        bad_request = error_details_pb2.BadRequest()
        assert any(detail.Unpack(bad_request) for detail in status.details)
        assert [(v.field, v.description) for v in bad_request.field_violations] == [
            ("query", "must not be 'invalid'")
        ]

    async def test_metadata_reaches_the_backend(self, front_channel, backend_seen) -> None:
        """Caller metadata, text (x-request-id) and binary (-bin), reaches the backend; the
        caller's credentials, checked by the front server, do not."""
        await research_grpc.ResearchServiceStub(front_channel).SearchSources(
            research_pb2.SearchSourcesRequest(query="rag"),
            timeout=5,
            metadata=(
                ("x-request-id", "abc"),
                ("x-trace-bin", b"\x00\x01"),
                ("authorization", "Bearer pk-secret"),
                ("x-api-key", "pk-secret"),
            ),
        )
        (seen,) = backend_seen.metadata
        assert seen["x-request-id"] == "abc"
        assert seen["x-trace-bin"] == b"\x00\x01"
        assert "authorization" not in seen
        assert "x-api-key" not in seen

    async def test_deadline_is_propagated(self, front_channel, backend_seen) -> None:
        """The backend sees (at most) the caller's remaining deadline."""
        await research_grpc.ResearchServiceStub(front_channel).SearchSources(
            research_pb2.SearchSourcesRequest(query="rag"), timeout=3
        )
        (remaining,) = backend_seen.time_remaining
        assert remaining is not None  # without propagation the backend would see no deadline
        assert 0 < remaining < 3.5  # grpc-timeout is rounded up a little on the wire

    async def test_deadline_exceeded_through_the_proxy(self, front_channel) -> None:
        """A backend slower than the caller's deadline fails with DEADLINE_EXCEEDED."""
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await research_grpc.ResearchServiceStub(front_channel).SearchSources(
                research_pb2.SearchSourcesRequest(query="slow"), timeout=0.3
            )
        assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED

    async def test_stream_is_forwarded(self, front_channel) -> None:
        """Server-streaming methods are forwarded message by message."""
        call = reflection_grpc.ReflectionServiceStub(front_channel).StreamReflect(
            reflection_pb2.StreamReflectRequest(topic="ok"), timeout=5
        )
        assert [message.text_delta async for message in call] == ["one", "two"]
        assert await call.code() is grpc.StatusCode.OK

    async def test_stream_error_is_forwarded(self, front_channel) -> None:
        """A backend stream error arrives after the messages with its code and message."""
        call = reflection_grpc.ReflectionServiceStub(front_channel).StreamReflect(
            reflection_pb2.StreamReflectRequest(topic="fail"), timeout=5
        )
        received, exc = await _drain(call)
        assert exc is not None
        assert received == ["one", "two"]
        assert exc.code() is grpc.StatusCode.NOT_FOUND
        assert exc.details() == "no such topic"

    async def test_unproxied_service_is_unimplemented(self, front_channel) -> None:
        """A service the proxy was not given is not answered by it."""
        call = front_channel.unary_unary("/ponder.embedding.v1.EmbeddingService/Embed")
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(b"", timeout=5)
        assert caught.value.code() is grpc.StatusCode.UNIMPLEMENTED

    async def test_unknown_service_name_is_rejected(self) -> None:
        """Proxying a service missing from the descriptor pool fails at construction."""
        async with grpc.aio.insecure_channel("127.0.0.1:1") as channel:
            with pytest.raises(KeyError):
                ServiceProxy({"ponder.nope.v1.Nope": channel})
