"""Forward a request to its method and write the reply: JSON, or a stream as NDJSON or SSE."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, Protocol

import grpc
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.rpc import status_pb2

from ponder_rest.codec import JsonOptions, dumps
from ponder_rest.config import FacadeConfig
from ponder_rest.context import metadata_headers
from ponder_rest.disconnect import until_disconnect
from ponder_rest.encoder import MessageEncoder
from ponder_rest.errors import error, make_status, status_body, status_obj
from ponder_rest.exchange import Exchange, Receive, Send, respond
from ponder_rest.observe import logger
from ponder_rest.routes import Route
from ponder_runtime.local import LocalCallError, LocalContext


_INTEGER_TYPES = (
    FieldDescriptor.CPPTYPE_INT32,
    FieldDescriptor.CPPTYPE_INT64,
    FieldDescriptor.CPPTYPE_UINT32,
    FieldDescriptor.CPPTYPE_UINT64,
)
_HEARTBEAT = object()


class Invoker(Protocol):
    """Runs methods by gRPC path (HandlerRegistry does, in-process)."""

    async def unary(self, method: str, request: Message, context: LocalContext) -> Any:
        """One request, one response."""
        ...

    def stream(self, method: str, request: Message, context: LocalContext) -> AsyncIterator[Any]:
        """One request, a stream of responses."""
        ...


class Forwarder:
    """Calls methods through the Invoker and writes their replies (grpc-gateway's Forward*)."""

    def __init__(self, invoker: Invoker, config: FacadeConfig) -> None:
        self._invoker = invoker
        self._config = config
        self._encoder = MessageEncoder(config.json)

    async def __call__(
        self,
        exchange: Exchange,
        receive: Receive,
        send: Send,
        *,
        route: Route,
        request: Message,
        context: LocalContext,
    ) -> None:
        """Call the route's method: a unary reply answered as JSON (200), a server stream's
        replies written as they come."""
        if route.server_streaming:
            sse = "text/event-stream" in exchange.header(b"accept")
            if sse:
                self._resume(exchange, request)
            replies = self._invoker.stream(route.grpc_path, request, context)
            pump = self._pump(exchange, send, route, replies, context=context, sse=sse)
            await until_disconnect(pump, receive)
            return
        reply = await until_disconnect(
            self._invoker.unary(route.grpc_path, request, context), receive
        )
        headers = [*exchange.response_headers, *metadata_headers(context)]
        body = self._encode(route, reply)
        await respond(exchange, send, 200, body, kind=b"application/json", headers=headers)

    def _encode(self, route: Route, reply: Any) -> bytes:
        """The JSON of a reply, or of its `response_body` field."""
        if isinstance(reply, bytes):  # a raw (proxied) method
            reply = route.response_class().FromString(reply)
        if route.response_body:
            obj = self._encoder.to_obj(reply)
            return dumps(obj.get(_json_key(route, self._config.json), None))
        return self._encoder.to_json(reply)

    async def _pump(
        self,
        exchange: Exchange,
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
            *metadata_headers(context),
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
                        await _more(send, b": keepalive\n\n")
                    else:
                        await self._frame(send, route, reply, sse)
        except LocalCallError as exc:
            exchange.rpc_code = exc.status.code
            await _more(send, _error_frame(exc.status, sse))
        except Exception:
            logger.exception("stream %s failed", route.grpc_path)
            status = make_status(grpc.StatusCode.INTERNAL, "the stream failed")
            exchange.rpc_code = status.code
            await _more(send, _error_frame(status, sse))
        else:
            if sse:  # an explicit end, so a dropped connection never looks like success
                await _more(send, b"event: end\ndata: {}\n\n")
        await send({"type": "http.response.body", "body": b""})

    def _resume(self, exchange: Exchange, request: Message) -> None:
        """Last-Event-ID -> the request's resume field (see FacadeConfig.sse_resume_field)."""
        name = self._config.sse_resume_field
        last = exchange.header(b"last-event-id").strip()
        target = request.DESCRIPTOR.fields_by_name.get(name) if name and last else None
        if target is None or target.cpp_type not in _INTEGER_TYPES or getattr(request, name):
            return
        try:
            value = int(last)
        except ValueError:
            raise error(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Last-Event-ID must be an event id sent by this stream (an integer), not {last!r}",
            ) from None
        try:
            setattr(request, name, value)
        except ValueError:
            raise error(
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
        await _more(send, body)


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


async def _more(send: Send, body: bytes) -> None:
    """A piece of a streamed body (more follows)."""
    await send({"type": "http.response.body", "body": body, "more_body": True})


def _json_key(route: Route, options: JsonOptions) -> str:
    found = route.method.output_type.fields_by_name[route.response_body]
    return str(found.name if options.use_proto_names else found.json_name)


def _stream_type(exchange: Exchange) -> bytes:
    accept = exchange.header(b"accept")
    return b"application/x-ndjson" if "application/x-ndjson" in accept else b"application/json"


def _error_frame(status: status_pb2.Status, sse: bool) -> bytes:
    if sse:
        return b"event: error\ndata: " + status_body(status) + b"\n\n"
    return dumps({"error": status_obj(status)}) + b"\n"
