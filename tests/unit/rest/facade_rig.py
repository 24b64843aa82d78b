"""The REST facade test rig: the test-only TranscodingService served in-process or behind a
proxy, its routes and OpenAPI document, and helpers to read REST errors (shared by the facade
and upload tests)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import grpc
import httpx
import pytest
from grpc_health.v1 import health, health_pb2_grpc
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext

from ponder_rest.app import FacadeConfig, RestFacade
from ponder_rest.comments import DescriptorComments
from ponder_rest.openapi import build_openapi
from ponder_rest.routes import build_routes
from ponder_rest.server import HttpServer
from ponder_runtime import ResourceExhaustedError
from ponder_runtime.interceptors import ErrorMappingInterceptor
from ponder_runtime.local import HandlerRegistry
from ponder_runtime.proxy import ServiceProxy
from ponder_testing.transcoding.v1 import transcoding_pb2 as pb
from ponder_testing.transcoding.v1 import transcoding_pb2_grpc as pb_grpc
from tests.unit.rest.echo_servicer import EchoServicer


SERVICE = pb.DESCRIPTOR.services_by_name["TranscodingService"]
ROUTES = build_routes([SERVICE])
COMMENTS = DescriptorComments.from_bytes(
    resources.files("ponder_testing").joinpath("descriptors.binpb").read_bytes()
)
OPENAPI = build_openapi(ROUTES, COMMENTS, title="Transcoding test API", version="v1")
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
CREATE_TIME_JSON = "2023-11-14T22:13:20Z"  # echo_servicer.CREATE_TIME

SPANS = InMemorySpanExporter()
_PROVIDER = TracerProvider()
_PROVIDER.add_span_processor(SimpleSpanProcessor(SPANS))
TRACER = _PROVIDER.get_tracer("test_facade")

Metadata = tuple[tuple[str, str | bytes], ...]


# --- the gRPC side ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Recorded:
    """One call as an interceptor saw it."""

    method: str
    metadata: Metadata
    span: SpanContext

    def value(self, key: str) -> str | bytes | None:
        """The (last) metadata value of `key`."""
        found = [v for k, v in self.metadata if k == key]
        return found[-1] if found else None


class RecordingInterceptor(grpc.aio.ServerInterceptor):
    """Records the invocation metadata and the current span of every call."""

    def __init__(self) -> None:
        self.calls: list[Recorded] = []

    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        """Record, then go on."""
        self.calls.append(
            Recorded(
                details.method,
                tuple(details.invocation_metadata or ()),
                trace.get_current_span().get_span_context(),
            )
        )
        return await continuation(details)

    def last(self, method: str) -> Recorded:
        """The latest call of a TranscodingService method."""
        path = f"/{SERVICE.full_name}/{method}"
        return next(c for c in reversed(self.calls) if c.method == path)


class ScriptedServicer(EchoServicer):
    """The echo servicer with a few scripted Echo names, and its streams tracked."""

    def __init__(self) -> None:
        self.streams_running = 0
        self.stream_outcomes: list[str] = []
        self.slow_outcomes: list[tuple[str, str]] = []  # (message, how the call ended)

    async def Echo(
        self, request: pb.EchoRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.EchoResponse:
        """'exhausted' raises ResourceExhaustedError with a retry delay; 'slow' sleeps
        `message` seconds; 'with-metadata' sets response header and trailer metadata."""
        if request.name == "exhausted":
            raise ResourceExhaustedError("slow down", retry_after_seconds=2.5)
        if request.name == "slow":
            try:
                await asyncio.sleep(float(request.message))
            except asyncio.CancelledError:
                self.slow_outcomes.append((request.message, "cancelled"))
                raise
            self.slow_outcomes.append((request.message, "completed"))
        if request.name == "with-metadata":
            await context.send_initial_metadata((("x-served-by", "echo"),))
            context.set_trailing_metadata((("x-cost", "3"),))
        return await super().Echo(request, context)

    async def StreamEchoes(
        self, request: pb.StreamEchoesRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[pb.StreamEchoesResponse]:
        """The echo stream; records how each stream ended."""
        self.streams_running += 1
        outcome = "completed"
        try:
            async for reply in super().StreamEchoes(request, context):
                yield reply
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        except BaseException as exc:
            outcome = type(exc).__name__
            raise
        finally:
            self.streams_running -= 1
            self.stream_outcomes.append(outcome)


@dataclass
class Backend:
    """The registry the facade calls, the servicer behind it and what was recorded."""

    kind: str
    registry: HandlerRegistry
    servicer: ScriptedServicer
    front: RecordingInterceptor  # the registry's interceptor (the facade's side)
    near: RecordingInterceptor  # the interceptor of the server running the servicer
    health: Any
    closers: list[Callable[[], Awaitable[Any]]] = field(default_factory=list)


def _grpc_server(*interceptors: Any) -> tuple[Any, int]:
    server = grpc.aio.server(interceptors=list(interceptors))
    port = server.add_insecure_port("127.0.0.1:0")
    return server, port


async def start_backend(kind: str) -> Backend:
    """`local`: the servicer on the registry's own server, called in-process. `proxy`: the
    servicer on a second server, reached through a ServiceProxy registered on the registry."""
    servicer = ScriptedServicer()
    front = RecordingInterceptor()
    server, _ = _grpc_server()
    registry = HandlerRegistry(server, interceptors=[ErrorMappingInterceptor(), front])
    closers: list[Callable[[], Awaitable[Any]]] = []
    if kind == "local":
        pb_grpc.add_TranscodingServiceServicer_to_server(servicer, registry)
        near = front
    else:
        near = RecordingInterceptor()
        remote, port = _grpc_server(ErrorMappingInterceptor(), near)
        pb_grpc.add_TranscodingServiceServicer_to_server(servicer, remote)
        await remote.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        registry.add_generic_rpc_handlers([ServiceProxy({SERVICE.full_name: channel})])
        closers += [channel.close, lambda: remote.stop(None)]
    checker = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(checker, registry)
    await server.start()
    closers.insert(0, lambda: server.stop(None))
    return Backend(kind, registry, servicer, front, near, checker, closers)


@contextlib.asynccontextmanager
async def serve(
    backend: Backend, config: FacadeConfig | None = None, *, grace: float = 1.0
) -> AsyncIterator[tuple[httpx.AsyncClient, HttpServer]]:
    """The facade on 127.0.0.1:<free port> and a client for it."""
    app = RestFacade(
        ROUTES, backend.registry, OPENAPI, config=config or FacadeConfig(), tracer=TRACER
    )
    server = HttpServer(app, "127.0.0.1", 0, grace_seconds=grace)
    await server.start()
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{server.port}", timeout=10
        ) as client:
            yield client, server
    finally:
        await server.stop()


@pytest.fixture(scope="module", params=["local", "proxy"], ids=["in-process", "proxied"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    """Both ways the facade reaches a method."""
    started = await start_backend(request.param)
    yield started
    for close in started.closers:
        await close()


@pytest.fixture(scope="module")
async def local() -> AsyncIterator[Backend]:
    """The in-process way only (for facades with their own configuration)."""
    started = await start_backend("local")
    yield started
    for close in started.closers:
        await close()


@pytest.fixture(scope="module")
async def http(backend: Backend) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the facade (default configuration) on `backend`."""
    async with serve(backend) as (client, _):
        yield client


@pytest.fixture(scope="module")
async def local_http(local: Backend) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the facade (default configuration) on the in-process backend."""
    async with serve(local) as (client, _):
        yield client


# --- helpers ---------------------------------------------------------------------------------


def error_of(reply: httpx.Response, http_status: int) -> dict[str, Any]:
    """The google.rpc.Status body of an error reply, checked for its shape."""
    assert reply.status_code == http_status, reply.text
    assert reply.headers["content-type"] == "application/json"
    body: dict[str, Any] = reply.json()
    assert set(body) == {"code", "message", "details"}, body
    return body


def violation(reply: httpx.Response) -> tuple[str, str]:
    """The one BadRequest field violation of a 400 reply."""
    body = error_of(reply, 400)
    assert body["code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    [detail] = body["details"]
    assert detail["@type"] == BAD_REQUEST
    [found] = detail["fieldViolations"]
    return found["field"], found["description"]


async def ndjson(
    client: httpx.AsyncClient, url: str, **kwargs: Any
) -> tuple[httpx.Response, list[Any]]:
    """A streamed reply and its JSON lines."""
    async with client.stream("GET", url, **kwargs) as reply:
        lines = [json.loads(line) async for line in reply.aiter_lines() if line]
    return reply, lines


def sse_frames(text: str) -> list[tuple[str, Any]]:
    """(event, data) of each Server-Sent Events frame ("message" when no event is named)."""
    frames = []
    for block in text.split("\n\n"):
        if not block:
            continue
        event, data = "message", None
        for line in block.split("\n"):
            key, _, value = line.partition(": ")
            if key == "event":
                event = value
            elif key == "data":
                data = json.loads(value)
        frames.append((event, data))
    return frames


async def eventually(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    """Wait until `condition()` holds (polling), failing after `timeout` seconds."""
    async with asyncio.timeout(timeout):
        while True:
            if condition():
                return
            await asyncio.sleep(0.01)
