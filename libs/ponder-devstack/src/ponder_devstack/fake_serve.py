"""Serve a fake's ASGI app with uvicorn on 127.0.0.1, port 0, from a daemon thread; and `Call`,
one request as the fakes see it (body, client still there, response)."""

from __future__ import annotations

import asyncio
import contextlib
import resource
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import uvicorn

from ponder_runtime.listener import tcp_listener


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

_BACKLOG = 4096
_OPEN_FILES = 8192
_KEEP_ALIVE_SECONDS = 120  # longer than any client pool keeps an idle connection


class Served:
    """An ASGI app served by uvicorn in its own thread and event loop, so synchronous
    fixtures and async tests use it alike; thousands of concurrent slow calls cost one
    coroutine each. Starting one lifts the soft open-files limit to 8192 where the hard limit
    allows (one socket per concurrent call on each side)."""

    def __init__(self, app: App, name: str, host: str = "127.0.0.1") -> None:
        _raise_open_files_limit()
        self._socket = tcp_listener(host, 0, backlog=_BACKLOG)
        self.host = host
        self.port: int = self._socket.getsockname()[1]
        config = uvicorn.Config(
            app,
            loop="none",
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            proxy_headers=False,
            backlog=_BACKLOG,
            timeout_keep_alive=_KEEP_ALIVE_SECONDS,
        )
        self._server = uvicorn.Server(config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._failure: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, daemon=True, name=name)
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"the {name} server failed to start") from (
                    self._failure[0] if self._failure else None
                )
            time.sleep(0.005)

    def close(self) -> None:
        """Stop serving: drop every connection (calls in progress see a disconnect)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._stop)
        self._thread.join(timeout=10)
        self._socket.close()

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:
            self._failure.append(exc)

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self._server.serve(sockets=[self._socket])
        tasks = set(self._server.server_state.tasks)
        if tasks:  # handlers woken by the dropped connections finish; stragglers are cancelled
            _, pending = await asyncio.wait(tasks, timeout=1.0)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    def _stop(self) -> None:
        self._server.should_exit = True
        self._server.force_exit = True
        for connection in list(self._server.server_state.connections):
            transport = getattr(connection, "transport", None)
            if transport is not None:
                transport.abort()


class Call:
    """One HTTP request to a fake: method, path, body, whether the client is still there."""

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        query = scope.get("query_string", b"").decode("latin-1")
        self.target = f"{self.path}?{query}" if query else self.path  # as the client sent it
        self.gone = asyncio.Event()
        self._receive = receive
        self._send = send
        self._watcher: asyncio.Task[None] | None = None

    async def read_body(self) -> bytes:
        """The whole request body; then the client is watched (see `gone`)."""
        chunks: list[bytes] = []
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self.gone.set()
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        self._watcher = asyncio.ensure_future(self._watch())
        return b"".join(chunks)

    async def _watch(self) -> None:
        while (await self._receive())["type"] != "http.disconnect":
            pass
        self.gone.set()

    def stop_watching(self) -> None:
        """The call is over (a finished response also reads as a disconnect)."""
        if self._watcher is not None:
            self._watcher.cancel()

    async def wait_gone(self, seconds: float) -> bool:
        """Sleep `seconds`; True (early) when the client goes away meanwhile."""
        if seconds <= 0:
            await asyncio.sleep(0)  # let a pending disconnect be seen
            return self.gone.is_set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self.gone.wait()
        return self.gone.is_set()

    async def respond(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        """A complete response with a Content-Length body."""
        await self.start(
            status, content_type, {**(headers or {}), "content-length": str(len(body))}
        )
        await self.write(body, more=False)

    async def start(self, status: int, content_type: str, headers: dict[str, str]) -> None:
        """The status line and headers (a body without Content-Length goes out chunked)."""
        pairs = [(b"content-type", content_type.encode())]
        pairs += [(k.lower().encode(), v.encode("latin-1")) for k, v in headers.items()]
        await self._send({"type": "http.response.start", "status": status, "headers": pairs})

    async def write(self, chunk: bytes, *, more: bool = True) -> None:
        """A piece of the body (the last one with more=False)."""
        await self._send({"type": "http.response.body", "body": chunk, "more_body": more})


def _raise_open_files_limit(wanted: int = _OPEN_FILES) -> None:
    """Lift the soft open-files limit towards `wanted` (within the hard limit): a thousand
    concurrent calls need a thousand sockets here, and as many again in a client in-process."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
