"""Serve an ASGI app with uvicorn (httptools) inside the running event loop of a service.

The service keeps its own signal handling: uvicorn's is switched off, and `stop(grace)` makes
uvicorn stop accepting, finish in-flight requests and streams within `grace`, then cancel what
is left (see BENCHMARKS.md for why uvicorn with httptools). What a response writes in one
step of the event loop (uvicorn writes the status line and headers, then the body) leaves in
one send: half the system calls and TCP segments for a small answer.

Hostile clients meet `HttpLimits` (uvicorn has no header timeout, and httptools no header
size limit): headers must be complete within `header_timeout_seconds` of a request's first
byte (or of the connection's opening) else 408, at most `max_header_bytes` of them else 431;
past `max_connections`, the connection that has waited longest for its headers is closed to
make room (503 when every connection is busy); an idle keep-alive connection is closed after
`keep_alive_seconds`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, cast

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ponder_runtime.listener import tcp_listener


logger = logging.getLogger(__name__)


class _CoalescingTransport:
    """A transport whose writes within one event-loop step go out as one write (flushed by a
    callback at the end of the step, or before closing); everything else is the socket's."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        """Queue `data`; the first write of a step schedules the flush."""
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(data)

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        if pending and not self._transport.is_closing():
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        """Send what is queued, then close."""
        self._flush()
        self._transport.close()

    def write_eof(self) -> None:
        """Send what is queued, then end the sending side."""
        self._flush()
        self._transport.write_eof()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


# How long a connection answered with an error stays half-closed before it is closed.
_LINGER_SECONDS = 1.0

# httptools refuses URLs longer than this (HttpParserInvalidURLError).
_MAX_URL_BYTES = 65_535


class _HeadersTooLargeError(Exception):
    """Raised from a parser callback to stop parsing an over-long header block."""


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """What one client may hold of the HTTP server (see the module docstring)."""

    header_timeout_seconds: float = 10.0
    max_header_bytes: int = 32 * 1024
    max_connections: int = 2048
    keep_alive_seconds: float = 75.0


class _HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol writing through a _CoalescingTransport, with HttpLimits."""

    limits: ClassVar[HttpLimits] = HttpLimits()
    lingering: ClassVar[set[asyncio.BaseTransport]] = set()  # answered, closing soon
    _answered = False
    _awaiting_headers = True
    _header_bytes = 0
    _header_timer: asyncio.TimerHandle | None = None
    _waiting_since = 0.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Wrap the connection's transport; make room past max_connections; start the
        header clock."""
        super().connection_made(cast(asyncio.Transport, _CoalescingTransport(transport, self.loop)))
        self._expect_headers()
        if len(self.connections) > self.limits.max_connections and not self._evict_one():
            self._answer(b"503 Service Unavailable", 14, "too many connections; retry later")

    def _evict_one(self) -> bool:
        """Close the connection that has waited longest for its headers (not this one)."""
        waiting = [
            c
            for c in self.connections
            if isinstance(c, _HttpProtocol) and c is not self and c._awaiting_headers
        ]
        if not waiting:
            return False
        min(waiting, key=lambda c: c._waiting_since)._answer(
            b"503 Service Unavailable", 14, "too many connections; this idle one was closed"
        )
        return True

    def _expect_headers(self) -> None:
        self._awaiting_headers = True
        self._header_bytes = 0
        self._waiting_since = self.loop.time()
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(
                self.limits.header_timeout_seconds, self._headers_too_slow
            )

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self._awaiting_headers:
            seconds = self.limits.header_timeout_seconds
            self._answer(b"408 Request Timeout", 4, f"request headers not sent within {seconds:g}s")

    def _stop_header_clock(self) -> None:
        self._awaiting_headers = False
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the header clock too."""
        self._stop_header_clock()
        self.lingering.discard(self.transport)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Feed the parser; 431 once the headers of a request pass max_header_bytes."""
        if self._answered:
            return
        if self._awaiting_headers and self._header_timer is None:  # a keep-alive's next request
            self._expect_headers()
        super().data_received(data)
        if self._awaiting_headers and not self._answered:  # headers not complete yet
            self._header_bytes += len(data)
            if self._header_bytes > self.limits.max_header_bytes:
                self._headers_too_large()

    def _headers_too_large(self) -> None:
        limit = self.limits.max_header_bytes
        self._answer(
            b"431 Request Header Fields Too Large", 8, f"the request headers are over {limit} bytes"
        )

    def on_header(self, name: bytes, value: bytes) -> None:
        """Count each header as parsed (a whole header block can come in one read)."""
        self._header_bytes += len(name) + len(value) + 4
        if self._header_bytes > self.limits.max_header_bytes:
            self._headers_too_large()
            raise _HeadersTooLargeError  # stops the parser; send_400_response then stays quiet
        super().on_header(name, value)

    def on_message_begin(self) -> None:
        """A request starts: its headers are counted and timed from here."""
        super().on_message_begin()
        if not self._awaiting_headers:
            self._expect_headers()

    def on_headers_complete(self) -> None:
        """The headers are in: the header clock stops."""
        self._stop_header_clock()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        """Ready for the next request on this connection (its headers are timed when its
        first byte comes; until then the keep-alive timeout applies)."""
        self._awaiting_headers = True
        self._header_bytes = 0
        self._waiting_since = self.loop.time()
        super().on_response_complete()

    def _answer(self, status: bytes, code: int, message: str) -> None:
        """Send a google.rpc.Status JSON error and close the connection."""
        self._answered = True
        self._stop_header_clock()
        self.connections.discard(self)  # no longer counts towards max_connections
        # Drop the parser and what it gathered (up to a read's worth of header bytes) now,
        # not when the lingering connection closes.
        self.parser = None  # type: ignore[assignment]
        self.headers = []
        if self.transport.is_closing():
            return
        self.transport.write(self._closing_error(status, code, message))
        # Lingering close: end our side and stop reading (what the client still sends waits
        # in the kernel, and TCP flow control stops a flood), close a moment later (closing at
        # once with unread input sends a reset that can destroy the answer).
        self.transport.write_eof()
        self.transport.pause_reading()
        self.lingering.add(self.transport)
        self.loop.call_later(_LINGER_SECONDS, self.transport.close)

    def _closing_error(self, status: bytes, code: int, message: str) -> bytes:
        """A google.rpc.Status JSON error response that closes the connection."""
        body = json.dumps({"code": code, "message": message, "details": []}).encode()
        head = [b"HTTP/1.1 " + status + b"\r\n"]
        for name, value in self.server_state.default_headers:
            head.append(name + b": " + value + b"\r\n")
        head.append(b"content-type: application/json\r\n")
        head.append(
            b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n"
        )
        return b"".join(head) + body

    def send_400_response(self, msg: str) -> None:
        """A request HTTP itself cannot parse gets a google.rpc.Status JSON body like every
        other error (uvicorn sends text/plain), and 414 when its URL is over the parser's
        limit; the connection is closed."""
        if self._answered:
            return
        too_long = len(getattr(self, "url", b"")) > _MAX_URL_BYTES
        status = b"414 URI Too Long" if too_long else b"400 Bad Request"
        if too_long:
            msg = f"the request URL is over {_MAX_URL_BYTES} bytes"
        self.transport.write(self._closing_error(status, 3, msg))
        self.transport.close()


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its signal handlers (the service process owns SIGTERM/SIGINT)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Leave the process's signal handling alone."""
        yield


class HttpServer:
    """One listening socket, one uvicorn server, started and stopped by the service."""

    def __init__(
        self,
        app: Any,
        host: str,
        port: int,
        *,
        grace_seconds: float,
        limits: HttpLimits | None = None,
    ) -> None:
        limits = limits or HttpLimits()
        self._protocol: type[_HttpProtocol] = type(
            "HttpProtocol", (_HttpProtocol,), {"limits": limits, "lingering": set()}
        )
        self._socket = tcp_listener(host, port, backlog=1024)
        self.port: int = self._socket.getsockname()[1]
        self.host = host
        config = uvicorn.Config(
            app,
            http=self._protocol,
            loop="none",
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            # The facade forwards X-Forwarded-For itself (grpc-gateway's way: the header plus
            # the TCP peer); uvicorn rewriting the peer from it would add that address twice.
            proxy_headers=False,
            timeout_graceful_shutdown=max(1, round(grace_seconds)),
            timeout_keep_alive=max(1, round(limits.keep_alive_seconds)),
        )
        self._server = _EmbeddedServer(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start serving on the bound socket."""
        self._task = asyncio.create_task(self._server.serve(sockets=[self._socket]))
        while not self._server.started:
            if self._task.done():
                await self._task  # raises what broke the start-up
            await asyncio.sleep(0.01)
        logger.info("http listening", extra={"address": f"{self.host}:{self.port}"})

    async def stop(self) -> None:
        """Stop accepting, drain in-flight requests within the grace, then close."""
        if self._task is None:
            self._socket.close()
            return
        self._server.should_exit = True
        await self._task
        for transport in list(self._protocol.lingering):  # answered with an error, lingering
            transport.close()
        self._socket.close()
        logger.info("http stopped")
