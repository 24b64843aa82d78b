"""Serve an ASGI app with uvicorn (httptools) inside the running event loop of a service.

The service keeps its own signal handling: uvicorn's is switched off, and `stop(grace)` makes
uvicorn stop accepting, finish in-flight requests and streams within `grace`, then cancel what
is left (see BENCHMARKS.md for why uvicorn with httptools). What a response writes in one
step of the event loop (uvicorn writes the status line and headers, then the body) leaves in
one send: half the system calls and TCP segments for a small answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import Iterator
from typing import Any, cast

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


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

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


# httptools refuses URLs longer than this (HttpParserInvalidURLError).
_MAX_URL_BYTES = 65_535


class _HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol writing through a _CoalescingTransport."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Wrap the connection's transport."""
        super().connection_made(cast(asyncio.Transport, _CoalescingTransport(transport, self.loop)))

    def send_400_response(self, msg: str) -> None:
        """A request HTTP itself cannot parse gets a google.rpc.Status JSON body like every
        other error (uvicorn sends text/plain), and 414 when its URL is over the parser's
        limit; the connection is closed."""
        too_long = len(getattr(self, "url", b"")) > _MAX_URL_BYTES
        status = b"414 URI Too Long" if too_long else b"400 Bad Request"
        if too_long:
            msg = f"the request URL is over {_MAX_URL_BYTES} bytes"
        body = json.dumps({"code": 3, "message": msg, "details": []}).encode()
        head = [b"HTTP/1.1 " + status + b"\r\n"]
        for name, value in self.server_state.default_headers:
            head.append(name + b": " + value + b"\r\n")
        head.append(b"content-type: application/json\r\n")
        head.append(
            b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n"
        )
        self.transport.write(b"".join(head) + body)
        self.transport.close()


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its signal handlers (the service process owns SIGTERM/SIGINT)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Leave the process's signal handling alone."""
        yield


class HttpServer:
    """One listening socket, one uvicorn server, started and stopped by the service."""

    def __init__(self, app: Any, host: str, port: int, *, grace_seconds: float) -> None:
        self._socket = _bind(host, port)
        self.port: int = self._socket.getsockname()[1]
        self.host = host
        config = uvicorn.Config(
            app,
            http=_HttpProtocol,
            loop="none",
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            # The facade forwards X-Forwarded-For itself (grpc-gateway's way: the header plus
            # the TCP peer); uvicorn rewriting the peer from it would add that address twice.
            proxy_headers=False,
            timeout_graceful_shutdown=max(1, round(grace_seconds)),
            timeout_keep_alive=75,
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
        self._socket.close()
        logger.info("http stopped")


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio turns Nagle off (TCP_NODELAY) only on sockets whose proto
    # says TCP, and accepted sockets inherit it; with Nagle on, every response after the first
    # on a keep-alive connection waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host.strip("[]"), port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock
