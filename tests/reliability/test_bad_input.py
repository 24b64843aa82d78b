"""Bad input everywhere: fuzzed messages, corrupt wire bytes and oversized requests, sent over
real sockets to every gRPC method of the four services and to the gateway's REST facade.

Whatever arrives, no call may end with INTERNAL, UNKNOWN or DATA_LOSS (or an HTTP 5xx), and
every INVALID_ARGUMENT must say which field is wrong (a google.rpc.BadRequest whose paths name
fields of the request type). What tests elsewhere already prove is not repeated here:
tests/integration/test_rest_fuzz.py fuzzes the REST routes from the OpenAPI document,
tests/integration/test_rest.py checks malformed JSON, an unknown field, a wrong content type and
a body over the limit with Content-Length, and tests/integration/test_long_running.py's
test_bad_requests checks the violations of hand-written bad long-running requests.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import grpc
import httpx
import pytest
import pytest_asyncio
from google.api import httpbody_pb2
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ponder.embedding.v1 import embedding_service_pb2 as embedding_pb
from ponder.library.v1 import library_service_pb2 as library_pb
from ponder.reflection.v1 import reflection_service_pb2 as reflection_pb
from ponder.research.v1 import research_service_pb2 as research_pb
from ponder.type.v1 import document_pb2
from ponder.workflow.v1 import workflow_service_pb2 as pb
from ponder_gateway.principals import Scope
from ponder_gateway.service import GatewayModule
from ponder_runtime import ServiceServer
from tests.conftest import InProcessStack
from tests.reliability.protofuzz import (
    Method,
    bad_request_paths,
    field_path_exists,
    messages,
    methods_of,
    mutants,
)
from tests.support.gateways import gateway


# Which server answers each service: the public API on a gateway of this module's own (no rate
# limit, so that every fuzzed call reaches the handlers), the internal services on their ports.
SERVICES = {
    "ponder.workflow.v1.WorkflowService": "gateway",
    "ponder.research.v1.ResearchService": "research",
    "ponder.reflection.v1.ReflectionService": "reflection",
    "ponder.embedding.v1.EmbeddingService": "embedding",
    "ponder.library.v1.LibraryService": "gateway",
}
# Methods whose request has fields to fuzz (all of them, since GetLibrary took a tenant).
METHODS = [
    method
    for service in SERVICES
    for method in methods_of(service)
    if method.request.DESCRIPTOR.fields
]
INTERNAL = [method for method in METHODS if SERVICES[method.service] != "gateway"]
NEVER = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS}
CALL_TIMEOUT_S = 20.0
MAX_STREAM_MESSAGES = 200
# 17 methods x 40 examples take ~10 s on two cores, workflows included (600 each found nothing
# more). Derandomized: every run sends the same requests, so a failure reproduces.
FUZZ = settings(
    max_examples=40,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def own_gateway(
    stack: InProcessStack, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ServiceServer]:
    """A gateway on the stack's services with rate limiting off and default body limits,
    forwarding the internal services to anonymous callers holding every scope."""
    server = await gateway(
        stack, tmp_path_factory.mktemp("bad-input"), rate_limit_per_second=0, http_port=0,
        expose_internal_services=True, anonymous_scopes=frozenset(Scope),
    )  # fmt: skip
    yield server
    await server.stop(0)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def channels(
    stack: InProcessStack, own_gateway: ServiceServer
) -> AsyncIterator[dict[str, grpc.aio.Channel]]:
    """One channel per server: "gateway" (this module's) and the three internal services."""
    addresses = {name: stack.address(name) for name in ("research", "reflection", "embedding")}
    addresses["gateway"] = f"127.0.0.1:{own_gateway.port}"
    opened = {name: grpc.aio.insecure_channel(address) for name, address in addresses.items()}
    yield opened
    for channel in opened.values():
        await channel.close()


@pytest.fixture
def rest_url(own_gateway: ServiceServer) -> str:
    """http://127.0.0.1:<port> of this module's gateway's REST facade."""
    module = own_gateway.service
    assert isinstance(module, GatewayModule)
    assert module.http is not None
    return f"http://127.0.0.1:{module.http.port}"


async def call(
    channel: grpc.aio.Channel, method: Method, request: bytes | Message
) -> tuple[grpc.StatusCode, grpc.aio.AioRpcError | None, list[Message | bytes]]:
    """Call `method` with a message (or raw bytes, sent as they are); a stream is read up to
    MAX_STREAM_MESSAGES. Returns the final status code, the error, and the replies."""
    raw = isinstance(request, bytes)
    serialize = None if raw else method.request.SerializeToString
    deserialize = None if raw else method.response.FromString
    replies: list[Message | bytes] = []
    try:
        if method.server_streaming:
            streaming: grpc.aio.UnaryStreamMultiCallable[Any, Any] = channel.unary_stream(
                method.path, request_serializer=serialize, response_deserializer=deserialize
            )
            stream = streaming(request, timeout=CALL_TIMEOUT_S)
            async for reply in stream:
                replies.append(reply)
                if len(replies) >= MAX_STREAM_MESSAGES:
                    stream.cancel()
                    break
        else:
            unary: grpc.aio.UnaryUnaryMultiCallable[Any, Any] = channel.unary_unary(
                method.path, request_serializer=serialize, response_deserializer=deserialize
            )
            replies.append(await unary(request, timeout=CALL_TIMEOUT_S))
    except grpc.aio.AioRpcError as error:
        return error.code(), error, replies
    return grpc.StatusCode.OK, None, replies


async def cancel_created(channel: grpc.aio.Channel, replies: list[Message | bytes]) -> None:
    """Cancel the workflow a CreateWorkflow started (a finished one answers
    FAILED_PRECONDITION, which is fine)."""
    for reply in replies:
        assert isinstance(reply, pb.CreateWorkflowResponse)
        cancel = channel.unary_unary(
            "/ponder.workflow.v1.WorkflowService/CancelWorkflow",
            request_serializer=pb.CancelWorkflowRequest.SerializeToString,
            response_deserializer=pb.CancelWorkflowResponse.FromString,
        )
        code = grpc.StatusCode.OK
        try:
            await cancel(pb.CancelWorkflowRequest(name=reply.workflow.name), timeout=10)
        except grpc.aio.AioRpcError as error:
            code = error.code()
        assert code in {grpc.StatusCode.OK, grpc.StatusCode.FAILED_PRECONDITION}, code


def assert_well_reported(
    method: Method, code: grpc.StatusCode, error: grpc.aio.AioRpcError | None, sent: object
) -> None:
    """No INTERNAL/UNKNOWN/DATA_LOSS; an INVALID_ARGUMENT names fields of the request type."""
    details = error.details() if error is not None else ""
    assert code not in NEVER, f"{method} -> {code.name}: {details}\nrequest: {sent!r}"[:3000]
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        assert error is not None
        paths = bad_request_paths(error)
        assert paths, f"{method}: INVALID_ARGUMENT without a BadRequest: {details}"
        descriptor = method.request.DESCRIPTOR
        unknown = [p for p in paths if not field_path_exists(descriptor, p)]
        assert not unknown, (
            f"{method}: violations name no field of {descriptor.full_name}: {unknown}"
        )


# --- 1. property-based fuzzing of every request message --------------------------------------

TOPIC = "How do language model agents use self-reflection?"
DOCUMENT = document_pb2.Document(id="d1", title="Reflexion", summary="Agents reflect on errors.")
SPEC = pb.Workflow(kind=pb.WORKFLOW_KIND_RESEARCH, topic=TOPIC)
# One valid request per method: the fuzzer also draws copies of it with some fields replaced,
# which get past the first checks (a blank topic, an unknown kind) and reach deeper code.
VALID: dict[str, Message] = {
    "RunReflectionWorkflow": pb.RunReflectionWorkflowRequest(topic=TOPIC),
    "RunResearchWorkflow": pb.RunResearchWorkflowRequest(topic=TOPIC),
    "RunWorkflow": pb.RunWorkflowRequest(workflow=SPEC),
    "CreateWorkflow": pb.CreateWorkflowRequest(workflow=SPEC),
    "GetWorkflow": pb.GetWorkflowRequest(name="workflows/no-such-workflow"),
    "ListWorkflows": pb.ListWorkflowsRequest(page_size=5, filter="state = SUCCEEDED"),
    "CancelWorkflow": pb.CancelWorkflowRequest(name="workflows/no-such-workflow"),
    "DeleteWorkflow": pb.DeleteWorkflowRequest(name="workflows/no-such-workflow"),
    "WatchWorkflow": pb.WatchWorkflowRequest(name="workflows/no-such-workflow"),
    "SearchSources": research_pb.SearchSourcesRequest(query="dense passage retrieval"),
    "GetLibrary": research_pb.GetLibraryRequest(tenant="default"),
    "CreateDocument": library_pb.CreateDocumentRequest(
        parent="libraries/default",
        file=httpbody_pb2.HttpBody(content_type="text/markdown", data=b"# Notes\n\nA line."),
        display_name="notes.md",
    ),
    "GetDocument": library_pb.GetDocumentRequest(name="libraries/default/documents/none"),
    "ListDocuments": library_pb.ListDocumentsRequest(parent="libraries/default", page_size=5),
    "DeleteDocument": library_pb.DeleteDocumentRequest(name="libraries/default/documents/none"),
    "WatchDocument": library_pb.WatchDocumentRequest(name="libraries/default/documents/none"),
    "Reflect": reflection_pb.ReflectRequest(topic=TOPIC, documents=[DOCUMENT]),
    "StreamReflect": reflection_pb.StreamReflectRequest(topic=TOPIC, documents=[DOCUMENT]),
    "EmbedTexts": embedding_pb.EmbedTextsRequest(texts=[TOPIC]),
    "RankDocuments": embedding_pb.RankDocumentsRequest(
        query=TOPIC, candidates=[embedding_pb.RankCandidate(id="a", text="agents reflect")]
    ),
    "LookupCache": embedding_pb.LookupCacheRequest(namespace="fuzz/bad-input", text=TOPIC),
    "StoreCache": embedding_pb.StoreCacheRequest(
        namespace="fuzz/bad-input", text=TOPIC, payload=b"x"
    ),
    "InvalidateCache": embedding_pb.InvalidateCacheRequest(namespace="fuzz/bad-input"),
    "GetCacheStats": embedding_pb.GetCacheStatsRequest(namespace="fuzz/bad-input"),
}


def test_every_method_is_fuzzed() -> None:
    """The fuzzed methods are all methods of every service."""
    every = [m.name for service in SERVICES for m in methods_of(service)]
    assert sorted(every) == sorted(m.name for m in METHODS)


def test_every_method_has_a_valid_request() -> None:
    """The fuzzer's valid starting points cover every method, each of its own request type."""
    assert sorted(VALID) == sorted(method.name for method in METHODS)
    for method in METHODS:
        assert isinstance(VALID[method.name], method.request), method


@pytest.mark.parametrize("method", METHODS, ids=str)
@FUZZ
@given(data=st.data())
async def test_fuzzed_requests_are_answered_with_a_proper_status(
    channels: dict[str, grpc.aio.Channel], method: Method, data: st.DataObject
) -> None:
    """Any message of the request type (edge numbers, unknown enum values, long and non-ASCII
    strings, repeated and nested fields) gets a reply or a status other than INTERNAL, UNKNOWN or
    DATA_LOSS; an INVALID_ARGUMENT carries a BadRequest naming fields of the request."""
    strategy = st.one_of(messages(method.request.DESCRIPTOR), mutants(VALID[method.name]))
    request = data.draw(strategy, label="request")
    channel = channels[SERVICES[method.service]]
    code, error, replies = await call(channel, method, request)
    assert_well_reported(method, code, error, request)
    if code == grpc.StatusCode.OK:
        assert replies, f"{method} succeeded without a reply"
        assert all(isinstance(reply, method.response) for reply in replies)
        if method.name == "CreateWorkflow":
            await cancel_created(channel, replies)


# --- 2. bytes that are no valid message -----------------------------------------------------

CORRUPT = {
    "ff-bytes": b"\xff\xff\xff",  # a tag varint that never ends
    "truncated-varint": b"\x08\x80",  # field 1, varint, continuation bit and then nothing
    "truncated-length": b"\x0a\x05ab",  # field 1 declares 5 bytes, 2 follow
    "missing-length": b"\x0a",  # field 1, length-delimited, no length
    "field-zero": b"\x00",  # field number 0 does not exist in the wire format
    "wire-type-7": b"\x0f",  # field 1 with wire type 7, which does not exist
    "unterminated-group": b"\x0b",  # start of group 1, never ended
}


def _check_corrupt(
    method: Method, payload: str, code: grpc.StatusCode, error: grpc.aio.AioRpcError | None
) -> None:
    """INVALID_ARGUMENT whose one violation names the request type, saying the wire is corrupt."""
    assert code == grpc.StatusCode.INVALID_ARGUMENT, (method, payload, code, error)
    assert error is not None
    paths = bad_request_paths(error)
    # The violation names the request type (nothing finer is known of corrupt bytes).
    assert paths == [method.request.DESCRIPTOR.full_name], paths
    assert "corrupt wire format" in (error.details() or ""), error.details()


@pytest.mark.parametrize("method", METHODS, ids=str)
async def test_corrupt_bytes_are_invalid_argument(
    channels: dict[str, grpc.aio.Channel], method: Method
) -> None:
    """Bytes that do not parse as the request (grpcio alone answers UNKNOWN "Unexpected
    DecodeError") end with INVALID_ARGUMENT and a BadRequest naming the request type, directly
    and, for the internal services, through the gateway's forwarding proxy too."""
    routes = [SERVICES[method.service]]
    if method in INTERNAL:
        routes.append("gateway")  # the proxy forwards the bytes; the service behind decodes
    for route in routes:
        for name, raw in CORRUPT.items():
            code, error, _ = await call(channels[route], method, raw)
            _check_corrupt(method, name, code, error)


# A lead byte of a two-byte UTF-8 sequence followed by no continuation byte: invalid UTF-8.
INVALID_UTF8 = b"\xc3\x28"


def _utf8_payload(method: Method) -> tuple[bytes, str] | None:
    """Wire bytes whose first string field (or a string inside the first message field) holds
    invalid UTF-8, with the path of that field; None when the type has no string to spoil."""
    for field in method.request.DESCRIPTOR.fields:
        tag = (field.number << 3) | 2
        if field.type == field.TYPE_STRING:
            suffix = "[0]" if field.is_repeated else ""
            return bytes([tag, len(INVALID_UTF8)]) + INVALID_UTF8, field.name + suffix
        if field.message_type is not None and not field.message_type.GetOptions().map_entry:
            inner = next((f for f in field.message_type.fields if f.type == f.TYPE_STRING), None)
            if inner is None:
                continue
            value = bytes([(inner.number << 3) | 2, len(INVALID_UTF8)]) + INVALID_UTF8
            suffix = "[0]" if field.is_repeated else ""
            return bytes([tag, len(value)]) + value, f"{field.name}{suffix}.{inner.name}"
    return None


UTF8_METHODS = [method for method in METHODS if _utf8_payload(method) is not None]


def test_every_method_has_a_string_to_spoil() -> None:
    """The invalid-UTF-8 test below reaches every method (a guard against the payload builder
    silently skipping one)."""
    assert len(UTF8_METHODS) == len(METHODS), [str(m) for m in METHODS if m not in UTF8_METHODS]


@pytest.mark.parametrize("method", UTF8_METHODS, ids=str)
async def test_invalid_utf8_in_a_string_field_is_invalid_argument(
    channels: dict[str, grpc.aio.Channel], method: Method
) -> None:
    """A proto3 string holding invalid UTF-8 (hand-encoded, e.g. RunReflectionWorkflowRequest
    field 1 = 0a 02 c3 28) is INVALID_ARGUMENT whose BadRequest names that very field."""
    payload = _utf8_payload(method)
    assert payload is not None
    raw, path = payload
    routes = [SERVICES[method.service], *(["gateway"] if method in INTERNAL else [])]
    for route in routes:
        code, error, _ = await call(channels[route], method, raw)
        assert code == grpc.StatusCode.INVALID_ARGUMENT, (route, code, error)
        assert error is not None
        assert bad_request_paths(error) == [path], error.details()
        assert "invalid UTF-8" in (error.details() or "")


async def test_reflection_workflow_with_invalid_utf8_topic(
    channels: dict[str, grpc.aio.Channel],
) -> None:
    """The brief's own example, spelled out: RunReflectionWorkflow with topic = c3 28."""
    method = next(m for m in METHODS if m.name == "RunReflectionWorkflow")
    code, error, _ = await call(channels["gateway"], method, b"\x0a\x02\xc3\x28")
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert error is not None
    assert bad_request_paths(error) == ["topic"]


@pytest.mark.parametrize("method", METHODS, ids=str)
async def test_a_known_field_with_the_wrong_wire_type_is_an_unknown_field(
    channels: dict[str, grpc.aio.Channel], method: Method
) -> None:
    """Protobuf keeps a known field sent with another wire type as an unknown field: the
    request then means what the empty request means (same status), never INTERNAL/UNKNOWN."""
    field = method.request.DESCRIPTOR.fields[0]
    wrong = 5 if field.type in (field.TYPE_STRING, field.TYPE_MESSAGE) else 2
    raw = bytes([(field.number << 3) | wrong]) + (b"\x00" * 4 if wrong == 5 else b"\x00")
    channel = channels[SERVICES[method.service]]
    code, error, replies = await call(channel, method, raw)
    assert_well_reported(method, code, error, raw)
    empty_code, _, empty_replies = await call(channel, method, b"")
    assert code == empty_code, (code, error)
    for created in (replies, empty_replies):
        if method.name == "CreateWorkflow" and created:
            await cancel_created(
                channel,
                [pb.CreateWorkflowResponse.FromString(r) for r in created if isinstance(r, bytes)],
            )


# --- 3. oversized input ---------------------------------------------------------------------


@pytest.mark.parametrize("server", ["gateway", "research", "reflection", "embedding"])
async def test_a_message_over_the_receive_limit_is_resource_exhausted(
    stack: InProcessStack,
    own_gateway: ServiceServer,
    channels: dict[str, grpc.aio.Channel],
    server: str,
) -> None:
    """A request above the server's max_message_bytes (PONDER_MAX_MESSAGE_BYTES, 8 MiB) is
    refused by the transport with RESOURCE_EXHAUSTED; the server then answers normally."""
    running = own_gateway if server == "gateway" else stack.servers[server]
    limit = running.settings.max_message_bytes
    method = next(m for m in METHODS if SERVICES[m.service] == server)
    text_field = next(f for f in method.request.DESCRIPTOR.fields if f.type == f.TYPE_STRING)
    request = method.request(**{text_field.name: "x" * (limit + 1024)})
    code, error, _ = await call(channels[server], method, request)
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED, (code, error)
    health: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]
    health = channels[server].unary_unary("/grpc.health.v1.Health/Check")
    assert await health(b"", timeout=5) == b"\x08\x01"  # status: SERVING


async def test_a_message_over_the_limit_through_the_gateway_proxy(
    channels: dict[str, grpc.aio.Channel],
) -> None:
    """Forwarded methods obey the gateway's own receive limit: RESOURCE_EXHAUSTED."""
    method = next(m for m in INTERNAL if m.name == "SearchSources")
    code, error, _ = await call(channels["gateway"], method, b"\x0a\x00" + b"\x00" * (9 << 20))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED, (code, error)


async def _chunks(total: int, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    """A JSON object of `total` bytes, sent in chunks (httpx then uses chunked encoding)."""
    yield b'{"topic": "'
    sent = 11
    while sent < total:
        piece = min(size, total - sent)
        yield b"x" * piece
        sent += piece
    yield b'"}'


def _status_body(reply: httpx.Response) -> dict[str, object]:
    assert reply.headers["content-type"].startswith("application/json"), reply.headers
    body = reply.json()
    assert isinstance(body, dict)
    assert isinstance(body.get("code"), int)
    assert isinstance(body.get("message"), str)
    return body


async def test_a_chunked_rest_body_over_the_limit_is_413(
    own_gateway: ServiceServer, rest_url: str
) -> None:
    """A body over http_max_body_bytes sent chunked, with no Content-Length to reject it by,
    is cut off at the limit with 413 and a google.rpc.Status JSON body (RESOURCE_EXHAUSTED);
    the facade serves the next request."""
    settings_ = own_gateway.settings
    limit = getattr(settings_, "http_max_body_bytes", None)
    assert limit == 1024 * 1024
    async with httpx.AsyncClient(base_url=rest_url, timeout=30) as http:
        reply = await http.post(
            "/v1/workflows/reflection",
            content=_chunks(limit + 100_000),
            headers={"content-type": "application/json"},
        )
        assert "content-length" not in reply.request.headers
        assert reply.request.headers["transfer-encoding"] == "chunked"
        assert reply.status_code == 413, reply.text
        body = _status_body(reply)
        assert body["code"] == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
        assert str(limit) in str(body["message"])
        after = await http.get("/v1/workflows", params={"pageSize": 1})
        assert after.status_code == 200, after.text


HUGE_ID = "a" * 100_000


async def raw_http(url: str, head: str, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    """Send one HTTP/1.1 request as written (httpx refuses URLs over 64 KiB) with
    `Connection: close`; return the status, the headers (lower-case names) and the body."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        length = f"Content-Length: {len(body)}\r\n" if body else ""
        writer.write(f"{head}\r\nHost: {host}\r\nConnection: close\r\n{length}\r\n".encode())
        writer.write(body)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 30)
    finally:
        writer.close()
        await writer.wait_closed()
    header_block, _, content = answer.partition(b"\r\n\r\n")
    status_line, *lines = header_block.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, content


@pytest.mark.parametrize(
    "head",
    [
        f"GET /v1/workflows/{HUGE_ID} HTTP/1.1",
        f"GET /v1/workflows/{HUGE_ID}:watch HTTP/1.1",
        f"POST /v1/workflows/{HUGE_ID}:cancel HTTP/1.1",
        f"GET /v1/workflows/{'%C3%A9' * 30_000} HTTP/1.1",
        f"GET /v1/workflows?filter={'state%20%3D%20' * 10_000} HTTP/1.1",
    ],
    ids=["get", "watch", "cancel", "percent-encoded", "query"],
)
async def test_huge_path_parameters_are_a_client_error(rest_url: str, head: str) -> None:
    """A 100,000-character workflow id (plain or percent-encoded, in GET, :watch and :cancel)
    or query value is a 4xx, never a 5xx or a dropped connection, and a normal request
    afterwards is served."""
    body = b"{}" if head.startswith("POST") else b""
    status, headers, content = await raw_http(rest_url, head, body)
    assert status in {400, 404, 414, 431}, (status, content[:500])
    assert headers["content-type"].startswith("application/json"), headers
    error = json.loads(content)
    assert isinstance(error["code"], int)
    assert isinstance(error["message"], str)
    assert len(content) < 10_000  # the id is not echoed back in full
    async with httpx.AsyncClient(base_url=rest_url, timeout=30) as http:
        after = await http.get("/v1/workflows/no-such-workflow")
        assert after.status_code == 404, after.text


BAD_BODIES = {
    "invalid-utf8": b'{"topic": "\xc3\x28"}',
    "latin-1": '{"topic": "caf\u00e9"}'.encode("latin-1"),
    "truncated": b'{"topic": "abc',
    "not-an-object": b'["topic"]',
    "bare-string": b'"topic"',
    "nan": b'{"topic": "x", "parameters": {"maxSources": NaN}}',
    "huge-number": b'{"topic": "x", "parameters": {"maxSources": 1e999999}}',
    "int32-overflow": b'{"topic": "x", "parameters": {"maxSources": 99999999999999999999}}',
    "fraction-for-int": b'{"topic": "x", "parameters": {"maxSources": 1.5}}',
    "string-for-message": b'{"topic": "x", "parameters": "fast"}',
    "unknown-enum": b'{"topic": "x", "parameters": {"cachePolicy": "CACHE_POLICY_NEVER"}}',
    "deep-nesting": b'{"topic": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "deep-objects": b'{"topic": "x", "parameters": ' + b'{"a":' * 50_000 + b"1" + b"}" * 50_001,
    "nul-byte": b'{"topic": "x"}\x00',
    "trailing-garbage": b'{"topic": "x"} {"topic": "y"}',
}


@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=BAD_BODIES.keys())
async def test_malformed_rest_bodies_are_400_naming_the_problem(rest_url: str, body: bytes) -> None:
    """Invalid UTF-8, truncated or non-object JSON, numbers out of range, values of the wrong
    type and absurd nesting are a 400 whose BadRequest names the body or the field (never a
    5xx), and the facade serves the next request."""
    async with httpx.AsyncClient(base_url=rest_url, timeout=30) as http:
        reply = await http.post(
            "/v1/workflows/reflection",
            content=body,
            headers={"content-type": "application/json"},
        )
        assert reply.status_code == 400, (reply.status_code, reply.text[:500])
        status = _status_body(reply)
        assert status["code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
        fields = [
            violation["field"]
            for detail in status.get("details", [])  # type: ignore[attr-defined]
            if str(detail["@type"]).endswith("google.rpc.BadRequest")
            for violation in detail["fieldViolations"]
        ]
        assert fields, json.dumps(status)[:500]
        assert all(f == "body" or f.split(".")[0] in {"topic", "parameters"} for f in fields)
        after = await http.get("/v1/workflows/no-such-workflow")
        assert after.status_code == 404, after.text


async def test_many_bad_requests_at_once_leave_the_servers_serving(
    channels: dict[str, grpc.aio.Channel],
) -> None:
    """200 corrupt requests in parallel across all servers: each is INVALID_ARGUMENT, and each
    server still reports SERVING afterwards."""
    calls = [
        call(channels[SERVICES[method.service]], method, raw)
        for method in METHODS
        for raw in list(CORRUPT.values())[:3]
    ]
    calls = (calls * (200 // len(calls) + 1))[:200]
    outcomes = await asyncio.gather(*calls)
    assert {code for code, _, _ in outcomes} == {grpc.StatusCode.INVALID_ARGUMENT}
    for channel in channels.values():
        health: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]
        health = channel.unary_unary("/grpc.health.v1.Health/Check")
        assert await health(b"", timeout=5) == b"\x08\x01"
