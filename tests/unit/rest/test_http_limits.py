"""The REST server against hostile clients over real sockets: headers trickled (slow-loris),
connections that never send, oversized headers, more connections than allowed; each gets its
status (408, 431, 503) and is closed, while ordinary requests are still answered."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from ponder_rest.server import HttpLimits, HttpServer


LIMITS = HttpLimits(
    header_timeout_seconds=0.5, max_header_bytes=4096, max_connections=20, keep_alive_seconds=5
)


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A tiny ASGI app: 200 with a JSON body for any HTTP request."""
    if scope["type"] != "http":
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": b'{"status":"SERVING"}'})


@pytest.fixture
async def server() -> AsyncIterator[HttpServer]:
    """The server with small limits on a free port."""
    http = HttpServer(_app, "127.0.0.1", 0, grace_seconds=0, limits=LIMITS)
    await http.start()
    yield http
    await http.stop()


async def _open(server: HttpServer) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", server.port)


async def _reply(reader: asyncio.StreamReader) -> tuple[str, dict[str, Any]]:
    """Status line and JSON body of the answer, read until the server closes."""
    raw = await asyncio.wait_for(reader.read(), 30)
    head, _, body = raw.partition(b"\r\n\r\n")
    return head.split(b"\r\n", 1)[0].decode(), json.loads(body) if body else {}


async def _ok(server: HttpServer) -> None:
    async with httpx.AsyncClient() as client:
        reply = await client.get(f"http://127.0.0.1:{server.port}/healthz", timeout=30)
    assert reply.status_code == 200


async def _trickle(writer: asyncio.StreamWriter) -> None:
    """Send one more header line every 20 ms, forever (until cancelled)."""
    while not writer.is_closing():
        writer.write(b"X-a: b\r\n")
        await asyncio.sleep(0.02)


async def test_trickled_headers_get_408_and_the_connection_is_closed(server: HttpServer) -> None:
    """A client sending its headers a few bytes at a time (slow-loris) is answered 408 once
    the header timeout passes, however long it keeps trickling; others are served meanwhile."""
    reader, writer = await _open(server)
    writer.write(b"GET /healthz HTTP/1.1\r\n")
    trickling = asyncio.create_task(_trickle(writer))
    await _ok(server)
    status, body = await _reply(reader)
    trickling.cancel()
    assert status == "HTTP/1.1 408 Request Timeout"
    assert body["code"] == 4
    assert "not sent within 0.5s" in body["message"]
    writer.close()


async def test_a_connection_that_never_sends_is_closed(server: HttpServer) -> None:
    """An idle connection with no request at all is answered 408 and closed."""
    reader, writer = await _open(server)
    status, _ = await _reply(reader)
    assert status == "HTTP/1.1 408 Request Timeout"
    writer.close()


@pytest.mark.parametrize("pieces", [1, 40], ids=["one-write", "in-pieces"])
async def test_oversized_headers_get_431(server: HttpServer, pieces: int) -> None:
    """Headers over max_header_bytes (one 100 KB header, sent at once or in pieces) get 431
    with a google.rpc.Status body; the server keeps serving."""
    reader, writer = await _open(server)
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n"
    step = -(-len(request) // pieces)
    try:
        for start in range(0, len(request), step):
            writer.write(request[start : start + step])
            await writer.drain()
    except ConnectionError:
        pass  # closed by the server while we were still sending
    status, body = await _reply(reader)
    assert status == "HTTP/1.1 431 Request Header Fields Too Large"
    assert body["message"] == "the request headers are over 4096 bytes"
    writer.close()
    await _ok(server)


async def test_headers_just_under_the_limit_are_served(server: HttpServer) -> None:
    """Headers under max_header_bytes are an ordinary request."""
    async with httpx.AsyncClient() as client:
        reply = await client.get(
            f"http://127.0.0.1:{server.port}/healthz", headers={"X-Fill": "a" * 3000}, timeout=30
        )
    assert reply.status_code == 200


async def test_past_max_connections_idle_ones_make_room(server: HttpServer) -> None:
    """Opening more idle connections than max_connections closes the longest-waiting ones
    (503), so the number held stays bounded and an ordinary request is still answered."""
    opened = [await _open(server) for _ in range(LIMITS.max_connections * 2)]
    await _ok(server)
    evicted = 0
    for reader, writer in opened[: LIMITS.max_connections]:
        status, _body = await _reply(reader)
        assert status in ("HTTP/1.1 503 Service Unavailable", "HTTP/1.1 408 Request Timeout")
        evicted += status.endswith("503 Service Unavailable")
        writer.close()
    assert evicted >= LIMITS.max_connections - 1
    for _, writer in opened[LIMITS.max_connections :]:
        writer.close()


async def test_a_keep_alive_connection_cannot_trickle_its_next_request(server: HttpServer) -> None:
    """After one answered request, the next request on the same connection is held to the
    header timeout too."""
    reader, writer = await _open(server)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    first = await asyncio.wait_for(reader.readuntil(b"\r\n0\r\n\r\n"), 30)  # chunked
    assert first.startswith(b"HTTP/1.1 200")
    writer.write(b"GET /healthz HTTP/1.1\r\n")
    trickling = asyncio.create_task(_trickle(writer))
    status, _ = await _reply(reader)
    trickling.cancel()
    assert status == "HTTP/1.1 408 Request Timeout"
    writer.close()
