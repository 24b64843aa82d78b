"""The REST/JSON facade end to end on real sockets: httpx -> uvicorn -> RestFacade -> the
handlers of a grpc.aio server, run in-process through its interceptors (HandlerRegistry), or
forwarded over a channel to another server (ServiceProxy, as the gateway serves internal
services). The test-only TranscodingService echoes what it receives, so every test sees the
request a REST call became."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import grpc
import httpx
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext

from ponder_rest.app import FacadeConfig, RestFacade
from ponder_rest.codec import JsonOptions
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


# --- query parameters ------------------------------------------------------------------------

# query string -> the fields of EchoQueryRequest the servicer received (JSON form)
QUERY_CASES = [
    ("stringValue=h%C3%A9llo+w", {"stringValue": "héllo w"}),
    ("string_value=a%26b%3Dc", {"stringValue": "a&b=c"}),
    ("int32Value=-7", {"int32Value": -7}),
    ("int64Value=9223372036854775807", {"int64Value": "9223372036854775807"}),
    ("int64_value=-9223372036854775808", {"int64Value": "-9223372036854775808"}),
    ("uint64Value=18446744073709551615", {"uint64Value": "18446744073709551615"}),
    ("doubleValue=2.5", {"doubleValue": 2.5}),
    ("doubleValue=-1e300", {"doubleValue": -1e300}),
    ("doubleValue=NaN", {"doubleValue": "NaN"}),
    ("doubleValue=Infinity", {"doubleValue": "Infinity"}),
    ("floatValue=0.5", {"floatValue": 0.5}),
    ("boolValue=true", {"boolValue": True}),
    ("bool_value=1", {"boolValue": True}),
    ("boolValue=FALSE", {"boolValue": False}),
    ("bytesValue=aGVsbG8%3D", {"bytesValue": "aGVsbG8="}),  # standard base64, padded
    ("bytesValue=aGVsbG8", {"bytesValue": "aGVsbG8="}),  # padding optional
    ("bytesValue=-_8", {"bytesValue": "+/8="}),  # URL-safe alphabet
    ("color=COLOR_GREEN", {"color": "COLOR_GREEN"}),
    ("color=3", {"color": "COLOR_BLUE"}),
    ("repeatedString=a&repeatedString=b&repeated_string=c", {"repeatedString": ["a", "b", "c"]}),
    ("repeatedInt32=1&repeatedInt32=-2", {"repeatedInt32": [1, -2]}),
    ("repeatedColor=COLOR_RED&repeatedColor=2", {"repeatedColor": ["COLOR_RED", "COLOR_GREEN"]}),
    (
        "nested.innerValue=x&nested.inner_number=4&nested.deeper.inner_value=y",
        {"nested": {"innerValue": "x", "innerNumber": 4, "deeper": {"innerValue": "y"}}},
    ),
    ("timestampValue=2024-05-06T07:08:09.5Z", {"timestampValue": "2024-05-06T07:08:09.500Z"}),
    ("timestamp_value=2024-05-06T09:08:09%2B02:00", {"timestampValue": "2024-05-06T07:08:09Z"}),
    ("durationValue=1.5s", {"durationValue": "1.500s"}),
    ("durationValue=1m30s", {"durationValue": "90s"}),
    ("durationValue=1h0m0.25s", {"durationValue": "3600.250s"}),
    ("durationValue=250ms", {"durationValue": "0.250s"}),
    ("int32Wrapper=5", {"int32Wrapper": 5}),
    ("int32Wrapper=0", {"int32Wrapper": 0}),  # a wrapper has presence: 0 is sent
    ("stringWrapper=", {"stringWrapper": ""}),
    ("boolWrapper=false", {"boolWrapper": False}),
    ("fieldMask=title,book.page_count", {"fieldMask": "title,book.pageCount"}),
    ("fieldMask=title,%20book.pageCount", {"fieldMask": "title,book.pageCount"}),  # JSON names
    ("optionalInt32=0", {"optionalInt32": 0}),  # proto3 optional: 0 differs from unset
]


@pytest.mark.parametrize(("query", "expected"), QUERY_CASES, ids=[q for q, _ in QUERY_CASES])
async def test_query_parameters_set_fields(
    http: httpx.AsyncClient, query: str, expected: dict[str, Any]
):
    reply = await http.get(f"/v1/query?{query}")
    assert reply.status_code == 200, reply.text
    received = reply.json()["request"]
    assert {key: received.get(key) for key in expected} == expected


async def test_unset_fields_are_emitted_with_zero_values(http: httpx.AsyncClient):
    """grpc-gateway v2's default: unpopulated scalars, enums and lists appear; message fields
    and proto3 optional fields (they have presence) do not."""
    reply = await http.get("/v1/query")
    assert reply.status_code == 200
    assert reply.json() == {
        "request": {
            "stringValue": "",
            "int32Value": 0,
            "int64Value": "0",
            "uint64Value": "0",
            "doubleValue": 0.0,
            "floatValue": 0.0,
            "boolValue": False,
            "bytesValue": "",
            "color": "COLOR_UNSPECIFIED",
            "repeatedString": [],
            "repeatedInt32": [],
            "repeatedColor": [],
        }
    }


# query string -> (the field the BadRequest names, words of its description)
QUERY_ERRORS = [
    ("int32Value=abc", "int32Value", "'abc' is not an integer"),
    ("int32Value=1.5", "int32Value", "is not an integer"),
    ("int32Value=2147483648", "int32Value", "out of range"),
    ("uint64Value=-1", "uint64Value", "out of range"),
    ("int64_value=9223372036854775808", "int64_value", "out of range"),
    ("doubleValue=lots", "doubleValue", "is not a number"),
    ("boolValue=yes", "boolValue", "is not a boolean"),
    ("bytesValue=%21%21", "bytesValue", "is not base64"),
    ("color=COLOR_PURPLE", "color", "is not one of COLOR_UNSPECIFIED, COLOR_RED"),
    ("color=9", "color", "9 is not a value of ponder_testing.transcoding.v1.Color"),
    ("repeatedColor=RED", "repeatedColor", "is not one of"),
    ("timestampValue=yesterday", "timestampValue", "is not a valid google.protobuf.Timestamp"),
    ("durationValue=soon", "durationValue", "is not a valid google.protobuf.Duration"),
    ("int32Wrapper=x", "int32Wrapper", "is not an integer"),
    ("nope=1", "nope", "unknown query parameter"),
    ("nested.nope=1", "nested.nope", "unknown query parameter"),
    ("repeatedString.length=1", "repeatedString.length", "unknown query parameter"),
    ("stringValue=a&stringValue=b", "stringValue", "given more than once"),
    ("nested=x", "nested", "set its fields with dotted names"),
    ("=x", "query", "a query parameter without a name"),
]


@pytest.mark.parametrize(
    ("query", "name", "words"), QUERY_ERRORS, ids=[q for q, *_ in QUERY_ERRORS]
)
async def test_bad_query_parameters_are_400_naming_the_parameter(
    http: httpx.AsyncClient, query: str, name: str, words: str
):
    reply = await http.get(f"/v1/query?{query}")
    field_name, description = violation(reply)
    assert field_name == name
    assert words in description
    assert f"invalid request: {name}: " in reply.json()["message"]


async def test_query_that_is_not_utf8_is_400(http: httpx.AsyncClient):
    reply = await http.get("/v1/query?stringValue=%FF%FE")
    assert violation(reply) == ("query", "the query string is not valid UTF-8")


async def test_query_parameter_bound_by_the_path_is_400(http: httpx.AsyncClient):
    reply = await http.get("/v1/echoes/from-path?name=from-query")
    assert violation(reply) == ("name", "set by the URL path")


# --- bodies, paths, verbs --------------------------------------------------------------------


async def test_post_binding_takes_the_whole_request_as_body(http: httpx.AsyncClient):
    """body: "*": JSON and proto names, int64 as a string or a number, enums by name or
    number, well-known types in their JSON forms."""
    reply = await http.post(
        "/v1/query",
        json={
            "stringValue": "s",
            "int64_value": 5,
            "uint64Value": "6",
            "color": 2,
            "repeated_string": ["a", "b"],
            "nested": {"inner_value": "x", "deeper": {"innerValue": "y"}},
            "durationValue": "1.5s",
            "fieldMask": "title,book.pageCount",
            "int32Wrapper": 7,
        },
    )
    assert reply.status_code == 200, reply.text
    received = reply.json()["request"]
    assert received["stringValue"] == "s"
    assert received["int64Value"] == "5"
    assert received["uint64Value"] == "6"
    assert received["color"] == "COLOR_GREEN"
    assert received["repeatedString"] == ["a", "b"]
    assert received["nested"] == {
        "innerValue": "x",
        "innerNumber": 0,
        "deeper": {"innerValue": "y"},
    }
    assert received["durationValue"] == "1.500s"
    assert received["fieldMask"] == "title,book.pageCount"
    assert received["int32Wrapper"] == 7


async def test_post_binding_with_body_star_rejects_query_parameters(http: httpx.AsyncClient):
    reply = await http.post("/v1/query?stringValue=x", json={"int32Value": 1})
    assert violation(reply) == (
        "stringValue",
        "query parameters are not accepted: send fields in the body",
    )


async def test_empty_body_is_an_empty_request(http: httpx.AsyncClient):
    reply = await http.post("/v1/query", content=b"", headers={"content-type": "application/json"})
    assert reply.status_code == 200
    assert reply.json()["request"]["stringValue"] == ""


# body -> words of the description (the violation names "body")
BODY_ERRORS = [
    (b'{"stringValue": }', "malformed JSON at line 1 column 17"),
    (b'{\n  "a": 1,\n  "b" 2\n}', "malformed JSON at line 3 column 7"),
    (b"[1, 2]", "expected a JSON object, got list"),
    (b'{"noSuchField": 1}', "noSuchField"),
    (b'{"int32Value": "abc"}', "int32Value"),
    (b'{"color": "COLOR_PURPLE"}', "COLOR_PURPLE"),
    (b'{"stringValue": "\xff"}', "the body is not UTF-8"),
]


@pytest.mark.parametrize(
    ("body", "words"), BODY_ERRORS, ids=[b.decode("latin-1") for b, _ in BODY_ERRORS]
)
async def test_bad_bodies_are_400_saying_where(http: httpx.AsyncClient, body: bytes, words: str):
    reply = await http.post("/v1/query", content=body, headers={"content-type": "application/json"})
    field_name, description = violation(reply)
    assert field_name == "body"
    assert words in description


async def test_create_book_body_is_the_book_field(http: httpx.AsyncClient):
    reply = await http.post(
        "/v1/shelves/s1/books?bookId=b1",
        json={"title": "T", "page_count": 3, "tags": ["x", "y"]},
    )
    assert reply.status_code == 200, reply.text
    assert reply.json() == {
        "book": {
            "name": "shelves/s1/books/b1",
            "shelfId": "",
            "id": "",
            "title": "T",
            "author": "",
            "pageCount": 3,
            "tags": ["x", "y"],
            "createTime": CREATE_TIME_JSON,
        },
        "parent": "shelves/s1",
        "bookId": "b1",
    }


async def test_query_parameter_inside_the_body_field_is_400(http: httpx.AsyncClient):
    reply = await http.post("/v1/shelves/s1/books?book.title=x", json={"title": "T"})
    assert violation(reply) == ("book.title", "set in the body (book)")


async def test_patch_nested_path_variables_win_over_the_body(http: httpx.AsyncClient):
    """PATCH body "book" with `{book.shelf_id}` and `{book.id}` in the path, the mask a query
    parameter: the values in the URL replace the ones in the body."""
    reply = await http.patch(
        "/v1/shelves/s1/books/b2?updateMask=title,pageCount",
        json={"title": "New", "shelfId": "elsewhere", "id": "other", "pageCount": 9},
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["book"]["shelfId"] == "s1"
    assert body["book"]["id"] == "b2"
    assert body["book"]["title"] == "New"
    assert body["book"]["pageCount"] == 9
    assert body["updateMask"] == "title,pageCount"


async def test_put_binding_takes_the_whole_request_with_nested_path_variables(
    http: httpx.AsyncClient,
):
    reply = await http.put(
        "/v1/shelves/s1/books/b2",
        json={"book": {"title": "New", "shelfId": "x"}, "updateMask": "title,pageCount"},
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert (body["book"]["shelfId"], body["book"]["id"]) == ("s1", "b2")
    assert body["updateMask"] == "title,pageCount"


async def test_response_body_returns_only_the_book(http: httpx.AsyncClient):
    reply = await http.get("/v1/shelves/s1/books/b1")
    assert reply.status_code == 200, reply.text
    assert reply.json() == {
        "name": "shelves/s1/books/b1",
        "shelfId": "s1",
        "id": "b1",
        "title": "Book b1",
        "author": "",
        "pageCount": 0,
        "tags": [],
        "createTime": CREATE_TIME_JSON,
    }  # no "servedBy", no "book" wrapper


async def test_additional_binding_reaches_archived_books(http: httpx.AsyncClient):
    reply = await http.get("/v1/archives/a1/books/b1")
    assert reply.status_code == 200, reply.text
    assert reply.json()["name"] == "archives/a1/books/b1"
    assert reply.json()["shelfId"] == "a1"


async def test_delete_takes_query_parameters(http: httpx.AsyncClient):
    reply = await http.delete("/v1/shelves/s1/books/b1?force=true")
    assert reply.json() == {"name": "shelves/s1/books/b1", "force": True}


async def test_custom_verb_with_body_star_and_path_value_wins(http: httpx.AsyncClient):
    reply = await http.post(
        "/v1/shelves/s1/books/b1:archive", json={"name": "shelves/x/books/y", "reason": "old"}
    )
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"name": "shelves/s1/books/b1", "reason": "old"}


# raw path -> the path the servicer received (http.proto: a multi-segment variable keeps %2F
# encoded, a single-segment one is fully decoded; an escaped slash there is a 404, below)
PATH_CASES = [
    ("/v1/files/a", "GetFile", {"path": "files/a"}),
    ("/v1/files/a/b/c.txt", "GetFile", {"path": "files/a/b/c.txt"}),
    ("/v1/files/a%2Fb/c%20d", "GetFile", {"path": "files/a%2Fb/c d"}),
    ("/v1/files/caf%C3%A9", "GetFile", {"path": "files/café"}),
    ("/v1/files/a/b:stat", "StatFile", {"path": "files/a/b"}),
    ("/v1/files/a%2Fb:stat", "StatFile", {"path": "files/a%2Fb"}),
    ("/v1/shelves/s%201/books/b%2F1", "GetBook", {"name": "shelves/s 1/books/b%2F1"}),
    ("/v1/echoes/a%3Ab%20c", "Echo", {"name": "a:b c"}),
    ("/v1/echoes/a:b", "Echo", {"name": "a:b"}),
]


@pytest.mark.parametrize(
    ("path", "method", "expected"), PATH_CASES, ids=[p for p, *_ in PATH_CASES]
)
async def test_path_variables_are_decoded_per_http_proto(
    http: httpx.AsyncClient, backend: Backend, path: str, method: str, expected: dict[str, str]
):
    reply = await http.get(path)
    assert reply.status_code == 200, reply.text
    assert {key: reply.json()[key] for key in expected} == expected
    assert backend.near.calls[-1].method == f"/{SERVICE.full_name}/{method}"


async def test_escaped_slash_in_one_segment_is_404_and_a_bad_escape_is_400(
    http: httpx.AsyncClient, backend: Backend
):
    """`/v1/echoes/a%2Fb` is two segments (404, as grpc-gateway answers); `%zz` is a 400 whose
    BadRequest names the path; neither reaches the servicer."""
    calls = len(backend.near.calls)
    missing = await http.get("/v1/echoes/a%2Fb")
    assert missing.status_code == 404, missing.text
    bad = await http.get("/v1/echoes/a%zz")
    assert bad.status_code == 400, bad.text
    assert bad.json()["code"] == 3
    [details] = bad.json()["details"]
    [violation] = details["fieldViolations"]
    assert violation["field"] == "path"
    assert "/v1/echoes/a%zz" in violation["description"]
    assert "malformed percent escape '%zz'" in violation["description"]
    assert len(backend.near.calls) == calls


async def test_stat_after_double_wildcard_is_the_custom_verb_route(http: httpx.AsyncClient):
    reply = await http.get("/v1/files/dir/file.txt:stat")
    assert reply.json() == {"path": "files/dir/file.txt", "sizeBytes": "18"}  # int64: a string


async def test_head_custom_pattern_answers_without_a_body(
    http: httpx.AsyncClient, backend: Backend
):
    reply = await http.head("/v1/files/a/b")
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/json"
    assert reply.content == b""
    assert backend.near.calls[-1].method == f"/{SERVICE.full_name}/GetFile"


async def test_get_file_content_is_base64(http: httpx.AsyncClient):
    reply = await http.get("/v1/files/x")
    assert base64.b64decode(reply.json()["content"]) == b"files/x"


async def test_enum_path_variable_by_name_and_by_number(http: httpx.AsyncClient):
    by_name = await http.get("/v1/errors/NOT_FOUND?message=gone")
    by_number = await http.get("/v1/errors/5?message=gone")
    assert error_of(by_name, 404) == {"code": 5, "message": "gone", "details": []}
    assert error_of(by_number, 404) == {"code": 5, "message": "gone", "details": []}
    ok = await http.get("/v1/errors/OK?message=fine")
    assert ok.status_code == 200
    assert ok.json() == {"code": "OK", "message": "fine"}
    bad = await http.get("/v1/errors/NOT_A_CODE")
    field_name, description = violation(bad)
    assert field_name == "code"
    assert "path value 'NOT_A_CODE' is not one of OK, CANCELLED" in description


# --- errors ----------------------------------------------------------------------------------

# gRPC code -> HTTP status (grpc-gateway v2 runtime/errors.go; CANCELLED 499 as in Envoy)
STATUS_TABLE = [
    ("CANCELLED", 499),
    ("UNKNOWN", 500),
    ("INVALID_ARGUMENT", 400),
    ("DEADLINE_EXCEEDED", 504),
    ("NOT_FOUND", 404),
    ("ALREADY_EXISTS", 409),
    ("PERMISSION_DENIED", 403),
    ("RESOURCE_EXHAUSTED", 429),
    ("FAILED_PRECONDITION", 400),
    ("ABORTED", 409),
    ("OUT_OF_RANGE", 400),
    ("UNIMPLEMENTED", 501),
    ("INTERNAL", 500),
    ("UNAVAILABLE", 503),
    ("DATA_LOSS", 500),
    ("UNAUTHENTICATED", 401),
]


@pytest.mark.parametrize(("code", "http_status"), STATUS_TABLE, ids=[c for c, _ in STATUS_TABLE])
async def test_grpc_status_to_http_status(http: httpx.AsyncClient, code: str, http_status: int):
    reply = await http.get(f"/v1/errors/{code}?message=because+{code}")
    body = error_of(reply, http_status)
    assert body == {
        "code": grpc.StatusCode[code].value[0],
        "message": f"because {code}",
        "details": [],
    }
    assert "x-request-id" in reply.headers


async def test_retry_info_becomes_retry_after_on_429(http: httpx.AsyncClient):
    """ResourceExhaustedError(retry_after_seconds=2.5), mapped by the ErrorMappingInterceptor:
    429, Retry-After rounded up to whole seconds, the details in the body."""
    reply = await http.get("/v1/echoes/exhausted")
    body = error_of(reply, 429)
    assert reply.headers["retry-after"] == "3"
    assert body["code"] == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    assert body["message"] == "slow down"
    details = {d.pop("@type"): d for d in body["details"]}
    assert details[RETRY_INFO] == {"retryDelay": "2.500s"}
    assert details[ERROR_INFO] == {
        "reason": "RESOURCE_EXHAUSTED",
        "domain": "ponder.dev",
        "metadata": {},
    }


# --- routing ---------------------------------------------------------------------------------


async def test_unknown_path_is_404(http: httpx.AsyncClient):
    reply = await http.get("/v2/nothing")
    body = error_of(reply, 404)
    assert body["code"] == grpc.StatusCode.NOT_FOUND.value[0]
    assert body["message"] == "no route for /v2/nothing"


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/v1/query", "GET, POST"),
        ("POST", "/v1/files/a/b", "GET, HEAD"),
        ("POST", "/v1/shelves/s1/books/b1", "DELETE, GET, PATCH, PUT"),
        ("PATCH", "/v1/archives/a1/books/b1", "GET"),
        ("POST", "/openapi.json", "GET"),
    ],
)
async def test_known_path_with_another_method_is_405_with_allow(
    http: httpx.AsyncClient, method: str, path: str, allow: str
):
    reply = await http.request(method, path)
    body = error_of(reply, 405)
    assert reply.headers["allow"] == allow
    assert body["code"] == grpc.StatusCode.UNIMPLEMENTED.value[0]


@pytest.mark.parametrize("kind", ["text/plain", "application/x-www-form-urlencoded", "image/png"])
async def test_body_of_another_content_type_is_415(http: httpx.AsyncClient, kind: str):
    reply = await http.post(
        "/v1/query", content=b'{"stringValue": "x"}', headers={"content-type": kind}
    )
    body = error_of(reply, 415)
    assert kind in body["message"]


@pytest.mark.parametrize(
    "kind",
    ["application/json", "application/json; charset=utf-8", "application/merge-patch+json", ""],
)
async def test_json_content_types_are_accepted(http: httpx.AsyncClient, kind: str):
    headers = {"content-type": kind} if kind else {}
    reply = await http.post("/v1/query", content=b'{"stringValue": "x"}', headers=headers)
    assert reply.status_code == 200, reply.text
    assert reply.json()["request"]["stringValue"] == "x"


async def test_body_over_the_limit_is_413(local: Backend):
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b" " * 40

    async with serve(local, FacadeConfig(max_body_bytes=100)) as (client, _):
        fits = await client.post("/v1/query", content=b'{"stringValue": "x"}' + b" " * 80)
        assert fits.status_code == 200, fits.text
        declared = await client.post("/v1/query", content=b"{}" + b" " * 100)
        assert declared.request.headers["content-length"] == "102"
        body = error_of(declared, 413)
        assert body["code"] == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
        assert body["message"] == "the request body is over 100 bytes"
        chunked = await client.post("/v1/query", content=chunks())
        assert "content-length" not in chunked.request.headers
        assert chunked.request.headers["transfer-encoding"] == "chunked"
        assert error_of(chunked, 413)["message"] == "the request body is over 100 bytes"
        assert "retry-after" not in chunked.headers


# --- JSON options ----------------------------------------------------------------------------


async def test_proto_names_without_unpopulated_fields(local: Backend):
    config = FacadeConfig(json=JsonOptions(use_proto_names=True, emit_unpopulated=False))
    async with serve(local, config) as (client, _):
        reply = await client.get("/v1/query?int64Value=3&string_value=s&nested.innerValue=x")
        assert reply.json() == {
            "request": {"string_value": "s", "int64_value": "3", "nested": {"inner_value": "x"}}
        }
        posted = await client.post("/v1/query", json={"int32Value": 1, "repeated_string": ["a"]})
        assert posted.json() == {"request": {"int32_value": 1, "repeated_string": ["a"]}}
        book = await client.get("/v1/shelves/s1/books/b1")  # response_body by its proto name
        assert book.json() == {
            "name": "shelves/s1/books/b1",
            "shelf_id": "s1",
            "id": "b1",
            "title": "Book b1",
            "create_time": CREATE_TIME_JSON,
        }
        empty = await client.get("/v1/echoes:stream?count=1")
        assert [json.loads(line) for line in empty.text.splitlines()] == [{"result": {}}]


async def test_requests_accept_json_and_proto_names_by_default(http: httpx.AsyncClient):
    reply = await http.get("/v1/query?int64Value=3&int32_value=4&nested.inner_value=x")
    received = reply.json()["request"]
    assert (received["int64Value"], received["int32Value"]) == ("3", 4)
    assert received["nested"]["innerValue"] == "x"
    assert "int64_value" not in received


# --- headers ---------------------------------------------------------------------------------


async def test_headers_become_metadata(http: httpx.AsyncClient, backend: Backend):
    """grpc-gateway's mapping, seen by the interceptor of the server running the servicer
    (for the proxied backend: after a trip over the channel, which the caller's credentials,
    checked by the front server, do not take)."""
    secret = b"\x00\x01binary\xff"
    reply = await http.get(
        "/v1/echoes/headers",
        headers={
            "Authorization": "Bearer token-1",
            "Grpc-Metadata-Foo": "bar",
            "Grpc-Metadata-X-Bin": base64.b64encode(secret).decode().rstrip("="),
            "User-Agent": "test-agent/1",
            "X-Forwarded-For": "203.0.113.9",
            "X-Request-Id": "req-42",
            "Cookie": "session=1",
            "X-Custom": "not forwarded",
        },
    )
    assert reply.status_code == 200, reply.text
    assert backend.front.last("Echo").value("authorization") == "Bearer token-1"
    call = backend.near.last("Echo")
    forwarded = "Bearer token-1" if backend.kind == "local" else None
    assert call.value("authorization") == forwarded
    assert call.value("foo") == "bar"
    assert call.value("x-bin") == secret
    assert call.value("grpcgateway-user-agent") == "test-agent/1"
    assert call.value("x-forwarded-for") == "203.0.113.9, 127.0.0.1"
    assert call.value("x-forwarded-host") == f"{http.base_url.host}:{http.base_url.port}"
    assert call.value("x-request-id") == "req-42"
    assert call.value("cookie") is None
    assert call.value("x-custom") is None
    assert reply.headers["x-request-id"] == "req-42"


async def test_binary_metadata_header_that_is_not_base64_is_400(http: httpx.AsyncClient):
    reply = await http.get("/v1/echoes/x", headers={"Grpc-Metadata-X-Bin": "abcde"})
    body = error_of(reply, 400)
    assert body["message"] == "header grpc-metadata-x-bin is not base64"


async def test_request_id_is_echoed_or_generated(http: httpx.AsyncClient):
    given = await http.get("/v2/nothing", headers={"X-Request-Id": "abc.DEF:1-2_3"})
    assert given.status_code == 404
    assert given.headers["x-request-id"] == "abc.DEF:1-2_3"  # on errors too
    first = (await http.get("/v1/echoes/x")).headers["x-request-id"]
    second = (await http.get("/v1/echoes/x")).headers["x-request-id"]
    invalid = await http.get("/v1/echoes/x", headers={"X-Request-Id": "has spaces; and more"})
    replaced = invalid.headers["x-request-id"]
    for generated in (first, second, replaced):
        assert len(generated) == 32
        int(generated, 16)
    assert len({first, second, replaced}) == 3


async def test_traceparent_is_continued(http: httpx.AsyncClient, backend: Backend):
    """The facade's server span is a child of the caller's span, and the method runs inside
    it (seen by the registry's interceptor); X-Trace-Id says which trace it is."""
    trace_id, parent_id = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    reply = await http.get(
        "/v1/echoes/traced", headers={"traceparent": f"00-{trace_id}-{parent_id}-01"}
    )
    assert reply.status_code == 200
    assert reply.headers["x-trace-id"] == trace_id

    def spans() -> list[Any]:
        return [s for s in SPANS.get_finished_spans() if s.context.trace_id == int(trace_id, 16)]

    await eventually(lambda: len(spans()) == 1)
    [span] = spans()
    assert span.parent is not None
    assert span.parent.span_id == int(parent_id, 16)
    assert span.name == "GET /v1/echoes/{name}"
    assert span.kind == trace.SpanKind.SERVER
    assert span.attributes["rpc.method"] == "Echo"
    assert span.attributes["http.response.status_code"] == 200
    seen = backend.front.last("Echo").span
    assert (seen.trace_id, seen.span_id) == (span.context.trace_id, span.context.span_id)

    fresh = await http.get("/v1/echoes/untraced")
    assert len(fresh.headers["x-trace-id"]) == 32
    assert fresh.headers["x-trace-id"] != trace_id


async def test_response_metadata_becomes_headers(http: httpx.AsyncClient):
    """Header and trailer metadata of the method (in-process, or through the ServiceProxy
    from the backend) come back as Grpc-Metadata-* and Grpc-Trailer-* headers."""
    reply = await http.get("/v1/echoes/with-metadata")
    assert reply.status_code == 200
    assert reply.headers["grpc-metadata-x-served-by"] == "echo"
    assert reply.headers["grpc-trailer-x-cost"] == "3"


# --- deadlines -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header", [("Grpc-Timeout", "150m"), ("Grpc-Timeout", "150000u"), ("X-Request-Timeout", "0.15")]
)
async def test_deadline_ends_a_slow_method_with_504(
    http: httpx.AsyncClient, header: tuple[str, str]
):
    loop = asyncio.get_running_loop()
    started = loop.time()
    reply = await http.get("/v1/echoes/slow?message=5", headers=[header])
    body = error_of(reply, 504)
    assert body["code"] == grpc.StatusCode.DEADLINE_EXCEEDED.value[0]
    assert 0.1 <= loop.time() - started < 2


async def test_generous_deadline_lets_the_method_finish(http: httpx.AsyncClient):
    reply = await http.get("/v1/echoes/slow?message=0.01", headers={"Grpc-Timeout": "5S"})
    assert reply.json() == {"name": "slow", "message": "0.01"}


async def test_deadline_before_the_first_message_of_a_stream_is_504(http: httpx.AsyncClient):
    reply = await http.get(
        "/v1/echoes:stream?count=2&interval=5s", headers={"Grpc-Timeout": "100m"}
    )
    assert error_of(reply, 504)["code"] == grpc.StatusCode.DEADLINE_EXCEEDED.value[0]


async def test_deadline_during_a_stream_ends_it_with_an_error_line(http: httpx.AsyncClient):
    reply, lines = await ndjson(
        http,
        "/v1/echoes:stream?message=m&count=100&interval=0.05s",
        headers={"X-Request-Timeout": "0.4"},
    )
    assert reply.status_code == 200
    *results, last = lines
    assert len(results) >= 2
    assert results == [{"result": {"index": i, "message": "m"}} for i in range(len(results))]
    assert last["error"]["code"] == grpc.StatusCode.DEADLINE_EXCEEDED.value[0]


@pytest.mark.parametrize(
    "header",
    [
        ("Grpc-Timeout", "10 seconds"),
        ("Grpc-Timeout", "1.5S"),
        ("Grpc-Timeout", "123456789S"),  # at most 8 digits
        ("Grpc-Timeout", "10"),
        ("X-Request-Timeout", "abc"),
        ("X-Request-Timeout", "-1"),
        ("X-Request-Timeout", "0"),
        ("X-Request-Timeout", "86401"),
    ],
)
async def test_malformed_timeouts_are_400(http: httpx.AsyncClient, header: tuple[str, str]):
    reply = await http.get("/v1/echoes/x", headers=[header])
    body = error_of(reply, 400)
    assert body["code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert body["message"].startswith(f"{header[0]} {header[1]!r} is not")


# --- streams ---------------------------------------------------------------------------------


def results(count: int, message: str = "hi") -> list[Any]:
    return [{"result": {"index": i, "message": message}} for i in range(count)]


async def test_stream_as_newline_delimited_json(http: httpx.AsyncClient):
    reply, lines = await ndjson(http, "/v1/echoes:stream?message=hi&count=3")
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/json"
    assert reply.headers["cache-control"] == "no-cache"
    assert lines == results(3)
    ndjson_reply, same = await ndjson(
        http, "/v1/echoes:stream?message=hi&count=3", headers={"Accept": "application/x-ndjson"}
    )
    assert ndjson_reply.headers["content-type"] == "application/x-ndjson"
    assert same == lines


async def test_stream_as_server_sent_events(http: httpx.AsyncClient):
    reply = await http.get(
        "/v1/echoes:stream?message=hi&count=2", headers={"Accept": "text/event-stream"}
    )
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "text/event-stream"
    assert reply.text.startswith("data: {")
    assert reply.text.endswith("\n\nevent: end\ndata: {}\n\n")
    assert sse_frames(reply.text) == [
        ("message", {"index": 0, "message": "hi"}),
        ("message", {"index": 1, "message": "hi"}),
        ("end", {}),
    ]


async def test_empty_stream(http: httpx.AsyncClient):
    reply, lines = await ndjson(http, "/v1/echoes:stream?count=0")
    assert (reply.status_code, lines) == (200, [])
    sse = await http.get("/v1/echoes:stream?count=0", headers={"Accept": "text/event-stream"})
    assert sse_frames(sse.text) == [("end", {})]


async def test_stream_failing_after_messages_ends_with_an_error(http: httpx.AsyncClient):
    url = "/v1/echoes:stream?message=hi&count=5&failCode=NOT_FOUND&failAfter=2"
    error = {"code": 5, "message": "failed after 2 messages as asked", "details": []}
    reply, lines = await ndjson(http, url)
    assert reply.status_code == 200
    assert lines == [*results(2), {"error": error}]
    sse = await http.get(url, headers={"Accept": "text/event-stream"})
    assert sse.status_code == 200
    assert sse_frames(sse.text) == [
        ("message", {"index": 0, "message": "hi"}),
        ("message", {"index": 1, "message": "hi"}),
        ("error", error),
    ]


@pytest.mark.parametrize("accept", ["application/json", "text/event-stream"])
async def test_stream_failing_before_its_first_message_is_an_http_error(
    http: httpx.AsyncClient, accept: str
):
    reply = await http.get(
        "/v1/echoes:stream?count=5&failCode=PERMISSION_DENIED&failAfter=0",
        headers={"Accept": accept},
    )
    assert error_of(reply, 403) == {
        "code": grpc.StatusCode.PERMISSION_DENIED.value[0],
        "message": "failed after 0 messages as asked",
        "details": [],
    }


async def test_client_disconnect_cancels_the_stream(http: httpx.AsyncClient, backend: Backend):
    servicer = backend.servicer
    await eventually(lambda: servicer.streams_running == 0)  # none left from other tests
    before = len(servicer.stream_outcomes)
    received = 0
    async with http.stream("GET", "/v1/echoes:stream?count=1000&interval=0.02s") as reply:
        async for line in reply.aiter_lines():
            received += bool(line)
            if received == 2:
                break
        assert servicer.streams_running == 1
    # Closing a response that is not read to its end closes the connection: the stream,
    # 20 s long if left alone, stops on the server at once.
    await eventually(lambda: servicer.streams_running == 0, timeout=3)
    assert servicer.stream_outcomes[before:] == ["cancelled"]


async def test_client_disconnect_cancels_a_unary_call(
    http: httpx.AsyncClient, backend: Backend, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO, logger="ponder_rest.app")
    with pytest.raises(httpx.ReadTimeout):
        await http.get("/v1/echoes/slow?message=4.5", timeout=0.2)
    outcomes = backend.servicer.slow_outcomes
    await eventually(lambda: ("4.5", "cancelled") in outcomes)
    assert ("4.5", "completed") not in outcomes

    def logged() -> list[Any]:
        return [
            r.__dict__
            for r in caplog.records
            if r.getMessage() == "http request" and r.__dict__["http_path"] == "/v1/echoes/slow"
        ]

    await eventually(lambda: len(logged()) == 1)  # the access log line says the client left
    assert logged()[0]["http_status"] == 499
    assert logged()[0]["http_method"] == "GET"


async def test_configured_default_deadline_and_health_service(local: Backend):
    config = FacadeConfig(default_timeout_seconds=0.1, health_service=SERVICE.full_name)
    async with serve(local, config) as (client, _):
        reply = await client.get("/v1/echoes/slow?message=3")
        assert error_of(reply, 504)["code"] == grpc.StatusCode.DEADLINE_EXCEEDED.value[0]
        header_wins = await client.get(
            "/v1/echoes/slow?message=0.2", headers={"Grpc-Timeout": "2S"}
        )
        assert header_wins.status_code == 200
        await local.health.set(SERVICE.full_name, health_pb2.HealthCheckResponse.SERVING)
        assert (await client.get("/healthz")).json() == {"status": "SERVING"}
        await local.health.set(SERVICE.full_name, health_pb2.HealthCheckResponse.NOT_SERVING)
        assert (await client.get("/healthz")).status_code == 503


# --- CORS ------------------------------------------------------------------------------------

APP = "https://app.example"


async def test_cors_for_a_listed_origin(local: Backend):
    async with serve(local, FacadeConfig(cors_origins=(APP,))) as (client, _):
        simple = await client.get("/v1/echoes/x", headers={"Origin": APP})
        assert simple.status_code == 200
        assert simple.headers["access-control-allow-origin"] == APP
        assert simple.headers["vary"] == "Origin"
        assert "x-request-id" in simple.headers["access-control-expose-headers"]
        assert "access-control-allow-credentials" not in simple.headers
        error = await client.get("/v2/nothing", headers={"Origin": APP})  # readable errors
        assert (error.status_code, error.headers["access-control-allow-origin"]) == (404, APP)

        preflight = await client.options(
            "/v1/query",
            headers={
                "Origin": APP,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "Content-Type, X-Request-Id, "
                "Grpc-Metadata-Tenant, X-Not-Allowed",
            },
        )
        assert preflight.status_code == 204
        assert preflight.content == b""
        assert preflight.headers["access-control-allow-origin"] == APP
        assert preflight.headers["access-control-allow-methods"] == "GET, POST"
        assert (
            preflight.headers["access-control-allow-headers"]
            == "content-type, x-request-id, grpc-metadata-tenant"
        )
        assert preflight.headers["access-control-max-age"] == "600"

        wrong_method = await client.options(
            "/v1/query", headers={"Origin": APP, "Access-Control-Request-Method": "DELETE"}
        )
        assert error_of(wrong_method, 405)["code"] == grpc.StatusCode.UNIMPLEMENTED.value[0]
        assert wrong_method.headers["allow"] == "GET, POST"

        plain = await client.options("/v1/shelves/s1/books/b1")  # no preflight: just Allow
        assert plain.status_code == 204
        assert plain.headers["allow"] == "DELETE, GET, PATCH, PUT"
        assert "access-control-allow-methods" not in plain.headers
        assert (await client.options("/v2/nothing")).status_code == 404


async def test_cors_for_an_origin_not_listed(local: Backend):
    evil = {"Origin": "https://evil.example"}
    async with serve(local, FacadeConfig(cors_origins=(APP,))) as (client, _):
        simple = await client.get("/v1/echoes/x", headers=evil)
        assert simple.status_code == 200  # served; the browser keeps the body from the page
        assert "access-control-allow-origin" not in simple.headers
        preflight = await client.options(
            "/v1/query", headers={**evil, "Access-Control-Request-Method": "POST"}
        )
        body = error_of(preflight, 403)
        assert body["code"] == grpc.StatusCode.PERMISSION_DENIED.value[0]
        assert "access-control-allow-origin" not in preflight.headers
        assert "access-control-allow-methods" not in preflight.headers


async def test_cors_wildcard_never_grants_credentials_to_an_arbitrary_origin(local: Backend):
    anyone = "https://anyone.example"
    preflight = {"Access-Control-Request-Method": "GET"}
    config = FacadeConfig(cors_origins=("*",), cors_allow_credentials=True)
    async with serve(local, config) as (client, _):
        for reply in (
            await client.get("/v1/echoes/x", headers={"Origin": anyone}),
            await client.options("/v1/echoes/x", headers={"Origin": anyone, **preflight}),
        ):
            assert reply.headers["access-control-allow-origin"] == "*"
            assert "access-control-allow-credentials" not in reply.headers
            assert "vary" not in reply.headers
    config = FacadeConfig(cors_origins=("*", APP), cors_allow_credentials=True)
    async with serve(local, config) as (client, _):
        listed = await client.get("/v1/echoes/x", headers={"Origin": APP})
        assert listed.headers["access-control-allow-origin"] == APP
        assert listed.headers["access-control-allow-credentials"] == "true"
        assert listed.headers["vary"] == "Origin"
        other = await client.get("/v1/echoes/x", headers={"Origin": anyone})
        assert other.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in other.headers


# --- pages -----------------------------------------------------------------------------------


async def test_openapi_document_is_served(http: httpx.AsyncClient):
    reply = await http.get("/openapi.json")
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/json"
    document = reply.json()
    assert document == json.loads(json.dumps(OPENAPI))
    assert document["info"] == {"title": "Transcoding test API", "version": "v1"}
    assert set(document["paths"]["/v1/query"]) == {"get", "post"}
    head = await http.head("/openapi.json")
    assert (head.status_code, head.content) == (200, b"")


async def test_docs_pages_point_at_the_document(http: httpx.AsyncClient):
    for page in ("/docs", "/redoc"):
        reply = await http.get(page)
        assert reply.status_code == 200
        assert reply.headers["content-type"] == "text/html; charset=utf-8"
        assert "/openapi.json" in reply.text
    missing = await http.get("/docs/assets/swagger-ui.css")  # no assets given to this facade
    assert error_of(missing, 404)["message"] == "no asset 'swagger-ui.css'"


async def test_healthz_follows_grpc_health(http: httpx.AsyncClient, backend: Backend):
    serving = health_pb2.HealthCheckResponse.SERVING
    not_serving = health_pb2.HealthCheckResponse.NOT_SERVING
    await backend.health.set("", serving)
    await backend.health.set(SERVICE.full_name, not_serving)
    try:
        up = await http.get("/healthz")
        assert (up.status_code, up.json()) == (200, {"status": "SERVING"})
        down = await http.get(f"/healthz?service={SERVICE.full_name}")
        assert (down.status_code, down.json()) == (503, {"status": "NOT_SERVING"})
        unknown = await http.get("/healthz?service=no.such.Service")
        assert error_of(unknown, 404)["code"] == grpc.StatusCode.NOT_FOUND.value[0]
        await backend.health.set("", not_serving)
        assert (await http.get("/healthz")).status_code == 503
    finally:
        await backend.health.set("", serving)


# --- drain -----------------------------------------------------------------------------------


async def _refuses_connections(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except ConnectionRefusedError:
        return True
    except ConnectionResetError:  # queued just as the listener closed: ask again
        return False
    writer.close()
    await writer.wait_closed()
    return False


async def test_stop_drains_in_flight_requests_and_refuses_new_connections(local: Backend):
    async with serve(local, grace=5.0) as (client, server):
        loop = asyncio.get_running_loop()
        calls = len(local.front.calls)
        async with client.stream(
            "GET", "/v1/echoes:stream?message=d&count=4&interval=0.15s"
        ) as stream:
            lines = stream.aiter_lines()
            first = await anext(lines)
            slow = asyncio.create_task(client.get("/v1/echoes/slow?message=0.6"))
            await eventually(lambda: len(local.front.calls) == calls + 2)  # both arrived
            started = loop.time()
            stopping = asyncio.create_task(server.stop())
            async with asyncio.timeout(2):  # uvicorn notices `should_exit` within 0.1 s
                while True:
                    if await _refuses_connections(server.port):
                        break
                    await asyncio.sleep(0.01)
            assert not slow.done()
            assert not stopping.done()
            rest = [line async for line in lines if line]
        assert [json.loads(line) for line in [first, *rest]] == results(4, "d")
        reply = await slow
        assert reply.json() == {"name": "slow", "message": "0.6"}
        await stopping
        assert loop.time() - started < 2  # drained, not cut off at the 5 s grace
        async with httpx.AsyncClient() as fresh:
            with pytest.raises(httpx.ConnectError):
                await fresh.get(f"http://127.0.0.1:{server.port}/v1/echoes/x")


async def test_idle_sse_streams_get_keepalive_comments(local: Backend):
    """An SSE stream that is quiet longer than the keep-alive interval gets `: keepalive`
    comment frames between the events (so idle-timeout proxies keep it open); every event
    still arrives, in order."""
    url = "/v1/echoes:stream?message=m&count=3&interval=0.2s"
    sse = {"Accept": "text/event-stream"}
    async with (
        serve(local, FacadeConfig(sse_keepalive_seconds=0.05)) as (client, _),
        client.stream("GET", url, headers=sse) as reply,
    ):
        text = "".join([chunk async for chunk in reply.aiter_text()])
    blocks = [b for b in text.split("\n\n") if b]
    assert blocks.count(": keepalive") >= 3
    data = [json.loads(b.removeprefix("data: ")) for b in blocks if b.startswith("data: ")]
    assert [d["index"] for d in data] == [0, 1, 2]
    assert blocks[-1] == "event: end\ndata: {}"
