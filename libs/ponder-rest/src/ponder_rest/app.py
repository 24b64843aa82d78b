"""The REST/JSON facade as a pure ASGI application.

A request goes: request id -> CORS -> fixed pages (/openapi.json, /docs, /redoc, /healthz) or
the router (404 / 405 with Allow) -> body (413, 415, 400 saying where) -> request message ->
headers to metadata and deadline -> the method, in-process through the server's interceptors
-> JSON, NDJSON or Server-Sent Events. Every failure is a google.rpc.Status JSON body with the
HTTP status grpc-gateway gives its code, and one JSON access-log line per request.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import re
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterator,
    MutableMapping,
    Sequence,
)
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.rpc import status_pb2
from grpc_health.v1 import health_pb2
from opentelemetry import metrics, propagate, trace
from opentelemetry.trace import Span, SpanKind, StatusCode, Tracer

from ponder_rest.codec import (
    JsonOptions,
    bad_request,
    dumps,
    http_status,
    make_status,
    retry_after_seconds,
    status_body,
    status_obj,
)
from ponder_rest.docs import DocsAssets, redoc_html, swagger_html
from ponder_rest.encoder import MessageEncoder
from ponder_rest.routes import BadPathError, MethodNotAllowedError, NoRouteError, Route, Router
from ponder_rest.transcoder import BodyMemo, RequestError, build_request, parse_query
from ponder_runtime.local import LocalCallError, LocalContext
from ponder_runtime.metrics import (
    HTTP_REQUEST_METHOD,
    HTTP_RESPONSE_STATUS_CODE,
    HTTP_ROUTE,
    HTTP_SERVER_REQUEST_DURATION,
)


logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

_HEALTH_CHECK = "/grpc.health.v1.Health/Check"
_TIMEOUT_UNITS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}
_GRPC_TIMEOUT = re.compile(r"(\d{1,8})([HMSmun])")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
_JSON_TYPES = ("application/json", "application/x-ndjson")
_INTEGER_TYPES = (
    FieldDescriptor.CPPTYPE_INT32,
    FieldDescriptor.CPPTYPE_INT64,
    FieldDescriptor.CPPTYPE_UINT32,
    FieldDescriptor.CPPTYPE_UINT64,
)
# Headers a browser may send cross-origin, and the ones it may read back.
_CORS_ALLOW_HEADERS = (
    "authorization, content-type, x-request-id, grpc-timeout, x-request-timeout, "
    "traceparent, tracestate, last-event-id"
)
_CORS_EXPOSE_HEADERS = b"x-request-id, x-trace-id, retry-after, grpc-status, grpc-message"
# Request headers that are not forwarded as metadata (hop-by-hop or handled here).
_PERMANENT_FORWARD = {
    b"user-agent": "grpcgateway-user-agent",
    b"accept-language": "grpcgateway-accept-language",
    b"referer": "grpcgateway-referer",
}


class Invoker(Protocol):
    """Runs methods by gRPC path (HandlerRegistry does, in-process)."""

    async def unary(self, method: str, request: Message, context: LocalContext) -> Any:
        """One request, one response."""
        ...

    def stream(self, method: str, request: Message, context: LocalContext) -> AsyncIterator[Any]:
        """One request, a stream of responses."""
        ...


@dataclass(frozen=True, slots=True)
class FacadeConfig:
    """Behaviour of the facade (the gateway builds it from its settings)."""

    json: JsonOptions = field(default_factory=JsonOptions)
    max_body_bytes: int = 1024 * 1024
    cors_origins: tuple[str, ...] = ()
    cors_allow_credentials: bool = False
    cors_max_age_seconds: int = 600
    default_timeout_seconds: float | None = None  # none: no hidden deadline
    access_log: bool = True
    health_service: str = ""
    sse_keepalive_seconds: float = 15.0  # a comment frame when an SSE stream is idle this long
    # SSE resumption, by naming convention (no annotation needed): a stream reply's integer
    # field called `sse_id_field` becomes each event's `id:` (when not 0), and a reconnecting
    # client's `Last-Event-ID` header fills the request's integer field called
    # `sse_resume_field` (when the method's request has one and the query left it 0).
    sse_id_field: str = ""
    sse_resume_field: str = ""


class HttpError(Exception):
    """An error answered before (or instead of) calling a method."""

    def __init__(
        self, http: int, status: status_pb2.Status, headers: Sequence[tuple[bytes, bytes]] = ()
    ) -> None:
        super().__init__(status.message)
        self.http = http
        self.status = status
        self.headers = list(headers)


def _error(code: grpc.StatusCode, message: str, http: int | None = None) -> HttpError:
    return HttpError(http or http_status(code.value[0]), make_status(code, message))


class ClientGoneError(Exception):
    """The client closed the connection before the response (logged as 499)."""


class _Exchange:
    """One request's state: headers, response headers, timing."""

    __slots__ = (
        "cors",
        "headers",
        "method",
        "request_id",
        "response_headers",
        "route",
        "scope",
        "started",
        "status",
    )

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.method: str = scope["method"]
        self.headers: dict[bytes, bytes] = {}
        for key, value in scope["headers"]:
            self.headers[key] = (
                value if key not in self.headers else self.headers[key] + b"," + value
            )
        given = self.headers.get(b"x-request-id", b"").decode("latin-1")
        self.request_id = given if _REQUEST_ID.fullmatch(given) else os.urandom(16).hex()
        self.response_headers: Headers = [(b"x-request-id", self.request_id.encode())]
        self.started = time.perf_counter()
        self.status = 0
        self.cors = False
        self.route = ""  # the matched path template (or fixed page), for the metrics

    def header(self, name: bytes) -> str:
        return self.headers.get(name, b"").decode("latin-1")


class RestFacade:
    """The ASGI application."""

    def __init__(
        self,
        routes: Sequence[Route],
        invoker: Invoker,
        openapi: dict[str, Any],
        *,
        config: FacadeConfig,
        assets: DocsAssets | None = None,
        tracer: Tracer | None = None,
        meter: metrics.Meter | None = None,
        title: str = "Ponder API",
    ) -> None:
        self._router = Router(list(routes))
        self._invoker = invoker
        self._config = config
        self._encoder = MessageEncoder(config.json)
        self._openapi = dumps(openapi)
        self._assets = assets
        self._tracer = tracer or trace.get_tracer(__name__)
        meter = meter or metrics.NoOpMeter(__name__)
        # Its count is the number of requests (Prometheus: `..._count`): no separate counter.
        self._duration = meter.create_histogram(
            HTTP_SERVER_REQUEST_DURATION,
            unit="s",
            description="Time to answer an HTTP request (its count: requests answered).",
        )
        self._bodies = BodyMemo()
        self._title = title
        self._origins = frozenset(config.cors_origins)
        self._any_origin = "*" in self._origins
        self._pages: dict[str, Callable[[_Exchange, Send], Awaitable[None]]] = {
            "/openapi.json": self._openapi_page,
            "/docs": self._docs_page,
            "/redoc": self._redoc_page,
            "/healthz": self._health_page,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        exchange = _Exchange(scope)
        with self._span(exchange) as span:
            try:
                await self._handle(exchange, receive, send, span)
            except HttpError as exc:
                await self._send_error(exchange, send, exc)
            except ClientGoneError:
                exchange.status = exchange.status or 499
            except Exception:
                logger.exception("unexpected error in the REST facade")
                await self._send_error(
                    exchange, send, _error(grpc.StatusCode.INTERNAL, "internal error")
                )
            finally:
                span.set_attribute("http.response.status_code", exchange.status)
                if exchange.status >= 500:
                    span.set_status(StatusCode.ERROR)
                self._log(exchange)
                self._measure(exchange)

    def _measure(self, exchange: _Exchange) -> None:
        """Count and time the request by method, route template and status."""
        attributes: dict[str, str | int] = {
            HTTP_REQUEST_METHOD: exchange.method,
            HTTP_ROUTE: exchange.route,
            HTTP_RESPONSE_STATUS_CODE: exchange.status,
        }
        self._duration.record(time.perf_counter() - exchange.started, attributes)

    def _log(self, exchange: _Exchange) -> None:
        """The access-log line (inside the request's span, so it carries its trace id)."""
        if self._config.access_log:
            logger.info(
                "http request",
                extra={
                    "http_method": exchange.method,
                    "http_path": exchange.scope.get("path", ""),
                    "http_status": exchange.status,
                    "duration_ms": round((time.perf_counter() - exchange.started) * 1000, 3),
                    "request_id": exchange.request_id,
                },
            )

    async def _handle(self, exchange: _Exchange, receive: Receive, send: Send, span: Span) -> None:
        self._apply_cors(exchange)
        path: str = exchange.scope["path"]
        if exchange.method == "OPTIONS":
            await self._options(exchange, send)
            return
        page = self._pages.get(path)
        if page is not None or path.startswith("/docs/assets/"):
            exchange.route = path if page is not None else "/docs/assets/{asset}"
            if exchange.method not in ("GET", "HEAD"):
                raise self._not_allowed(["GET"])
            await (page or self._asset_page)(exchange, send)
            return
        raw = exchange.scope.get("raw_path") or path.encode()
        try:
            route, bindings = self._router.match(exchange.method, raw.decode("latin-1"))
        except NoRouteError:
            raise _error(grpc.StatusCode.NOT_FOUND, f"no route for {path}") from None
        except BadPathError as exc:
            raise HttpError(400, bad_request("path", f"{raw.decode('latin-1')}: {exc}")) from None
        except MethodNotAllowedError as exc:
            raise self._not_allowed(exc.allowed) from None
        exchange.route = route.template.source
        span.update_name(f"{route.http_method} {route.template.source}")
        span.set_attributes(
            {
                "http.route": route.template.source,
                "rpc.system": "grpc",
                "rpc.method": route.method.name,
                "rpc.service": route.method.containing_service.full_name,
            }
        )
        body = await self._read_body(exchange, receive, route)
        try:
            request = build_request(
                route, bindings, parse_query(exchange.scope["query_string"]), body, self._bodies
            )
        except RequestError as exc:
            raise HttpError(400, exc.status) from None
        context = LocalContext(
            self._metadata(exchange), _peer(exchange.scope), self._deadline(exchange)
        )
        if route.server_streaming:
            await self._stream(
                exchange, receive, send, route=route, request=request, context=context
            )
        else:
            await self._unary(
                exchange, receive, send, route=route, request=request, context=context
            )

    # --- routing helpers -------------------------------------------------------------------

    def _not_allowed(self, allowed: list[str]) -> HttpError:
        allow = ", ".join(allowed)
        error = _error(
            grpc.StatusCode.UNIMPLEMENTED, f"method not allowed; this path accepts {allow}", 405
        )
        error.headers.append((b"allow", allow.encode()))
        return error

    async def _read_body(self, exchange: _Exchange, receive: Receive, route: Route) -> bytes:
        limit = self._config.max_body_bytes
        declared = exchange.header(b"content-length")
        if declared.isdigit() and int(declared) > limit:
            raise self._too_large(limit)
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGoneError
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise self._too_large(limit)
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if body and route.body:
            kind = exchange.header(b"content-type").split(";", 1)[0].strip().lower()
            if kind and kind not in _JSON_TYPES and not kind.endswith("+json"):
                raise _error(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"unsupported Content-Type {kind!r}: send application/json",
                    415,
                )
        return body

    @staticmethod
    def _too_large(limit: int) -> HttpError:
        return _error(
            grpc.StatusCode.RESOURCE_EXHAUSTED, f"the request body is over {limit} bytes", 413
        )

    # --- headers ---------------------------------------------------------------------------

    def _metadata(self, exchange: _Exchange) -> tuple[tuple[str, str | bytes], ...]:
        """grpc-gateway's mapping: Authorization and Grpc-Metadata-* forwarded, a few
        permanent headers as grpcgateway-*, X-Forwarded-For extended with the client."""
        out: list[tuple[str, str | bytes]] = []
        for key, value in exchange.headers.items():
            if key == b"authorization":
                out.append(("authorization", value.decode("latin-1")))
            elif key.startswith(b"grpc-metadata-"):
                name = key[len(b"grpc-metadata-") :].decode("latin-1")
                if name.endswith("-bin"):
                    try:
                        out.append((name, base64.b64decode(value + b"=" * (-len(value) % 4))))
                    except ValueError:
                        raise _error(
                            grpc.StatusCode.INVALID_ARGUMENT, f"header {key.decode()} is not base64"
                        ) from None
                else:
                    out.append((name, value.decode("latin-1")))
            elif key in _PERMANENT_FORWARD:
                out.append((_PERMANENT_FORWARD[key], value.decode("latin-1")))
        client = exchange.scope.get("client")
        if client:
            forwarded = exchange.header(b"x-forwarded-for")
            out.append(("x-forwarded-for", f"{forwarded}, {client[0]}" if forwarded else client[0]))
        host = exchange.header(b"x-forwarded-host") or exchange.header(b"host")
        if host:
            out.append(("x-forwarded-host", host))
        out.append(("x-request-id", exchange.request_id))
        return tuple(out)

    def _deadline(self, exchange: _Exchange) -> float | None:
        """Grpc-Timeout ("30S", "1500m") or X-Request-Timeout (seconds), else the default."""
        seconds = self._config.default_timeout_seconds
        grpc_timeout = exchange.header(b"grpc-timeout")
        simple = exchange.header(b"x-request-timeout")
        if grpc_timeout:
            found = _GRPC_TIMEOUT.fullmatch(grpc_timeout.strip())
            if found is None:
                raise _error(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"Grpc-Timeout {grpc_timeout!r} is not <digits><H|M|S|m|u|n>",
                )
            seconds = int(found.group(1)) * _TIMEOUT_UNITS[found.group(2)]
        elif simple:
            try:
                seconds = float(simple)
            except ValueError:
                seconds = -1.0
            if not 0 < seconds <= 86400:
                raise _error(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"X-Request-Timeout {simple!r} is not a number of seconds in (0, 86400]",
                )
        return None if seconds is None else time.monotonic() + seconds

    def _apply_cors(self, exchange: _Exchange) -> None:
        origin = exchange.header(b"origin")
        if not origin or not (self._any_origin or origin in self._origins):
            return
        exchange.cors = True
        credentials = self._config.cors_allow_credentials and origin in self._origins
        allowed = origin if (credentials or not self._any_origin) else "*"
        exchange.response_headers.append((b"access-control-allow-origin", allowed.encode()))
        exchange.response_headers.append((b"access-control-expose-headers", _CORS_EXPOSE_HEADERS))
        if allowed != "*":
            exchange.response_headers.append((b"vary", b"Origin"))
        if credentials:
            exchange.response_headers.append((b"access-control-allow-credentials", b"true"))

    async def _options(self, exchange: _Exchange, send: Send) -> None:
        """CORS preflight (204 with the allowed methods and headers), or a plain 204 + Allow."""
        path = exchange.scope["path"]
        if path in self._pages or path.startswith("/docs/assets/"):
            allowed = ["GET"]
        else:
            raw = (exchange.scope.get("raw_path") or path.encode()).decode("latin-1")
            allowed = sorted(
                {r.http_method for r in self._router.routes if r.template.match(raw) is not None}
            )
            if not allowed:
                raise _error(grpc.StatusCode.NOT_FOUND, f"no route for {path}")
        requested = exchange.header(b"access-control-request-method")
        headers = [*exchange.response_headers, (b"allow", ", ".join(allowed).encode())]
        if requested:
            if not exchange.cors:
                raise _error(
                    grpc.StatusCode.PERMISSION_DENIED,
                    f"origin {exchange.header(b'origin')!r} is not allowed",
                )
            if requested not in allowed:
                raise self._not_allowed(allowed)
            headers += [
                (b"access-control-allow-methods", ", ".join(allowed).encode()),
                (b"access-control-allow-headers", _allowed_headers(exchange)),
                (b"access-control-max-age", str(self._config.cors_max_age_seconds).encode()),
            ]
        exchange.status = 204
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    # --- calls -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _span(self, exchange: _Exchange) -> Iterator[Span]:
        """The request's SERVER span, continuing a W3C traceparent; named after the route
        once it is known."""
        parent = propagate.extract(
            {
                k.decode("latin-1"): v.decode("latin-1")
                for k, v in exchange.headers.items()
                if k in (b"traceparent", b"tracestate", b"baggage")
            }
        )
        with self._tracer.start_as_current_span(
            f"HTTP {exchange.method}",
            context=parent,
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": exchange.method,
                "url.path": exchange.scope["path"],
            },
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            context = span.get_span_context()
            if context.is_valid:
                exchange.response_headers.append(
                    (b"x-trace-id", format(context.trace_id, "032x").encode())
                )
            yield span

    async def _unary(
        self,
        exchange: _Exchange,
        receive: Receive,
        send: Send,
        *,
        route: Route,
        request: Message,
        context: LocalContext,
    ) -> None:
        call = self._invoker.unary(route.grpc_path, request, context)
        reply = await _until_disconnect(call, receive)
        headers = [*exchange.response_headers, *_metadata_headers(context)]
        body = self._encode(route, reply)
        await self._send(exchange, send, 200, body, kind=b"application/json", headers=headers)

    def _encode(self, route: Route, reply: Any) -> bytes:
        """The JSON of a reply, or of its `response_body` field."""
        if isinstance(reply, bytes):  # a raw (proxied) method
            reply = route.response_class().FromString(reply)
        if route.response_body:
            obj = self._encoder.to_obj(reply)
            return dumps(obj.get(_json_key(route, self._config.json), None))
        return self._encoder.to_json(reply)

    async def _stream(
        self,
        exchange: _Exchange,
        receive: Receive,
        send: Send,
        *,
        route: Route,
        request: Message,
        context: LocalContext,
    ) -> None:
        sse = "text/event-stream" in exchange.header(b"accept")
        if sse:
            self._resume(exchange, request)
        replies = self._invoker.stream(route.grpc_path, request, context)
        pump = self._pump(exchange, send, route, replies, context=context, sse=sse)
        await _until_disconnect(pump, receive)

    async def _pump(
        self,
        exchange: _Exchange,
        send: Send,
        route: Route,
        replies: AsyncIterator[Any],
        *,
        context: LocalContext,
        sse: bool,
    ) -> None:
        # An error before the first message is an ordinary HTTP error (404, 400...).
        try:
            first = await anext(replies)
        except StopAsyncIteration:
            first = None
        kind = b"text/event-stream" if sse else _stream_type(exchange)
        headers = [
            *exchange.response_headers,
            *_metadata_headers(context),
            (b"content-type", kind),
            (b"cache-control", b"no-cache"),
            (b"x-accel-buffering", b"no"),
        ]
        exchange.status = 200
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        try:
            if first is not None:
                await self._frame(send, route, first, sse)
                interval = self._config.sse_keepalive_seconds if sse else None
                async for reply in _with_heartbeats(replies, interval):
                    if reply is _HEARTBEAT:  # an SSE comment keeps idle proxies from closing
                        await send(
                            {
                                "type": "http.response.body",
                                "body": b": keepalive\n\n",
                                "more_body": True,
                            }
                        )
                    else:
                        await self._frame(send, route, reply, sse)
        except LocalCallError as exc:
            await send(
                {
                    "type": "http.response.body",
                    "body": _error_frame(exc.status, sse),
                    "more_body": True,
                }
            )
        except Exception:
            logger.exception("stream %s failed", route.grpc_path)
            status = make_status(grpc.StatusCode.INTERNAL, "the stream failed")
            await send(
                {"type": "http.response.body", "body": _error_frame(status, sse), "more_body": True}
            )
        else:
            if sse:  # an explicit end, so a dropped connection never looks like success
                await send(
                    {
                        "type": "http.response.body",
                        "body": b"event: end\ndata: {}\n\n",
                        "more_body": True,
                    }
                )
        await send({"type": "http.response.body", "body": b""})

    def _resume(self, exchange: _Exchange, request: Message) -> None:
        """Last-Event-ID -> the request's resume field (see FacadeConfig.sse_resume_field)."""
        name = self._config.sse_resume_field
        last = exchange.header(b"last-event-id").strip()
        target = request.DESCRIPTOR.fields_by_name.get(name) if name and last else None
        if target is None or target.cpp_type not in _INTEGER_TYPES or getattr(request, name):
            return
        try:
            value = int(last)
        except ValueError:
            raise _error(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Last-Event-ID must be an event id sent by this stream (an integer), not {last!r}",
            ) from None
        try:
            setattr(request, name, value)
        except ValueError:
            raise _error(
                grpc.StatusCode.INVALID_ARGUMENT, f"Last-Event-ID {last!r} is out of range"
            ) from None

    def _event_id(self, reply: Any) -> bytes:
        """`id: N` for an SSE frame (see FacadeConfig.sse_id_field), or nothing."""
        name = self._config.sse_id_field
        if not name or not isinstance(reply, Message):
            return b""
        source = reply.DESCRIPTOR.fields_by_name.get(name)
        if source is None or source.cpp_type not in _INTEGER_TYPES:
            return b""
        value = getattr(reply, name)
        return b"id: %d\n" % value if value else b""

    async def _frame(self, send: Send, route: Route, reply: Any, sse: bool) -> None:
        text = self._encode(route, reply)
        if sse:
            body = self._event_id(reply) + b"data: " + text + b"\n\n"
        else:
            body = b'{"result":' + text + b"}\n"
        await send({"type": "http.response.body", "body": body, "more_body": True})

    # --- pages -----------------------------------------------------------------------------

    async def _openapi_page(self, exchange: _Exchange, send: Send) -> None:
        await self._send(exchange, send, 200, self._openapi, kind=b"application/json")

    async def _docs_page(self, exchange: _Exchange, send: Send) -> None:
        html = swagger_html("/openapi.json", "/docs/assets", self._title)
        await self._send(exchange, send, 200, html.encode(), kind=b"text/html; charset=utf-8")

    async def _redoc_page(self, exchange: _Exchange, send: Send) -> None:
        html = redoc_html("/openapi.json", "/docs/assets", self._title)
        await self._send(exchange, send, 200, html.encode(), kind=b"text/html; charset=utf-8")

    async def _asset_page(self, exchange: _Exchange, send: Send) -> None:
        name = exchange.scope["path"].removeprefix("/docs/assets/")
        found = self._assets.asset(name) if self._assets is not None else None
        if found is None:
            raise _error(grpc.StatusCode.NOT_FOUND, f"no asset {name!r}")
        content, kind = found
        headers = [*exchange.response_headers, (b"cache-control", b"public, max-age=86400")]
        await self._send(exchange, send, 200, content, kind=kind.encode(), headers=headers)

    async def _health_page(self, exchange: _Exchange, send: Send) -> None:
        """grpc.health.v1 Check: SERVING 200, NOT_SERVING 503, unknown service 404."""
        query = dict(parse_query(exchange.scope["query_string"]))
        service = query.get("service", self._config.health_service)
        context = LocalContext((), _peer(exchange.scope), time.monotonic() + 5.0)
        try:
            reply = await self._invoker.unary(
                _HEALTH_CHECK, health_pb2.HealthCheckRequest(service=service), context
            )
        except LocalCallError as exc:
            raise HttpError(http_status(exc.status.code), exc.status) from None
        if isinstance(reply, bytes):
            reply = health_pb2.HealthCheckResponse.FromString(reply)
        serving = reply.status == health_pb2.HealthCheckResponse.SERVING
        body = dumps({"status": health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)})
        await self._send(exchange, send, 200 if serving else 503, body, kind=b"application/json")

    # --- responses -------------------------------------------------------------------------

    async def _send(
        self,
        exchange: _Exchange,
        send: Send,
        status: int,
        body: bytes,
        *,
        kind: bytes,
        headers: Headers | None = None,
    ) -> None:
        exchange.status = status
        out = [
            *(headers if headers is not None else exchange.response_headers),
            (b"content-type", kind),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send(
            {"type": "http.response.body", "body": b"" if exchange.method == "HEAD" else body}
        )

    async def _send_error(self, exchange: _Exchange, send: Send, error: HttpError) -> None:
        if exchange.status:  # the response already started; nothing more can be said
            return
        headers = [*exchange.response_headers, *error.headers]
        retry = retry_after_seconds(error.status)
        if retry is not None:
            headers.append((b"retry-after", str(retry).encode()))
        await self._send(
            exchange,
            send,
            error.http,
            status_body(error.status),
            kind=b"application/json",
            headers=headers,
        )


async def _until_disconnect(call: Awaitable[Any], receive: Receive) -> Any:
    """Await `call`, cancelling it when the client goes away (as a gRPC cancel would);
    errors of the call become HttpErrors. The client is watched from `_WATCH_AFTER_SECONDS`
    on: most answers are sent before then, and a watcher task per request would cost more
    than the answer itself."""
    task = asyncio.current_task()
    assert task is not None  # called from a request's task
    watch = _Watch(receive, task)
    timer = asyncio.get_running_loop().call_later(_WATCH_AFTER_SECONDS, watch.start)
    try:
        return await call
    except asyncio.CancelledError:
        if not watch.gone:
            raise
        task.uncancel()
        raise ClientGoneError from None
    except LocalCallError as exc:
        raise HttpError(http_status(exc.status.code), exc.status) from None
    finally:
        timer.cancel()
        watch.stop()


_WATCH_AFTER_SECONDS = 0.05


class _Watch:
    """Cancels a request's task when its client disconnects (see _until_disconnect)."""

    def __init__(self, receive: Receive, task: asyncio.Task[Any]) -> None:
        self._receive = receive
        self._task = task
        self._watcher: asyncio.Task[None] | None = None
        self.gone = False

    def start(self) -> None:
        """Begin watching."""
        self._watcher = asyncio.ensure_future(self._watch())

    def stop(self) -> None:
        """Stop watching (the call is over)."""
        if self._watcher is not None:
            self._watcher.cancel()

    async def _watch(self) -> None:
        await _disconnected(self._receive)
        self.gone = True
        self._task.cancel()


_HEARTBEAT = object()


async def _with_heartbeats(
    replies: AsyncIterator[Any], interval: float | None
) -> AsyncIterator[Any]:
    """The replies, with _HEARTBEAT yielded whenever none came for `interval` seconds (the
    wait for the next reply goes on; it is never cancelled by the heartbeat)."""
    if interval is None:
        async for reply in replies:
            yield reply
        return
    pending: asyncio.Future[Any] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(replies))
            done, _ = await asyncio.wait({pending}, timeout=interval)
            if not done:
                yield _HEARTBEAT
                continue
            finished, pending = pending, None
            try:
                reply = finished.result()
            except StopAsyncIteration:
                return
            yield reply
    finally:
        if pending is not None and not pending.done():
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration, Exception):
                await pending


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def _peer(scope: Scope) -> str:
    client = scope.get("client")
    if not client:
        return "unix:"
    host, port = client[0], client[1]
    return f"ipv6:[{host}]:{port}" if ":" in host else f"ipv4:{host}:{port}"


def _json_key(route: Route, options: JsonOptions) -> str:
    found = route.method.output_type.fields_by_name[route.response_body]
    return str(found.name if options.use_proto_names else found.json_name)


def _metadata_headers(context: LocalContext) -> Headers:
    headers: Headers = []
    for key, value in context.initial:
        if isinstance(value, str):
            headers.append((f"grpc-metadata-{key}".encode(), value.encode("latin-1", "replace")))
    for key, value in context.trailing_metadata():
        if isinstance(value, str) and not key.startswith("grpc-"):
            headers.append((f"grpc-trailer-{key}".encode(), value.encode("latin-1", "replace")))
    return headers


def _stream_type(exchange: _Exchange) -> bytes:
    accept = exchange.header(b"accept")
    return b"application/x-ndjson" if "application/x-ndjson" in accept else b"application/json"


def _error_frame(status: status_pb2.Status, sse: bool) -> bytes:
    if sse:
        return b"event: error\ndata: " + status_body(status) + b"\n\n"
    return dumps({"error": status_obj(status)}) + b"\n"


def _allowed_headers(exchange: _Exchange) -> bytes:
    requested = exchange.header(b"access-control-request-headers")
    allowed = {h.strip() for h in _CORS_ALLOW_HEADERS.split(",")}
    granted = [
        h.strip()
        for h in requested.lower().split(",")
        if h.strip() in allowed or h.strip().startswith("grpc-metadata-")
    ]
    return ", ".join(granted or sorted(allowed)).encode()
