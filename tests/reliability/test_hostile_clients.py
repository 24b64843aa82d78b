"""Hostile clients against the gateway as configured by its settings (real sockets): oversized
HTTP headers get 431 and oversized gRPC metadata RESOURCE_EXHAUSTED; slow and idle REST
connections are closed with 408; the gateway keeps answering ordinary calls throughout. The
timing claim (health p99 during an attack) is measured in bench/bench_hostile.py."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlsplit

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ponder_gateway.settings import GatewaySettings
from ponder_runtime import ServiceSettings
from tests.conftest import InProcessStack


async def _health(stack: InProcessStack) -> None:
    async with grpc.aio.insecure_channel(stack.address("gateway")) as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=10
        )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"{stack.http_url}/healthz", timeout=10)).status_code == 200


async def test_oversized_grpc_metadata_is_resource_exhausted(stack: InProcessStack) -> None:
    """Metadata over PONDER_MAX_METADATA_BYTES (sent by a client whose own limit is higher)
    is refused with RESOURCE_EXHAUSTED; metadata under it is served."""
    limit = ServiceSettings.model_fields["max_metadata_bytes"].default
    options = [("grpc.max_metadata_size", 4 << 20), ("grpc.absolute_max_metadata_size", 4 << 20)]
    async with grpc.aio.insecure_channel(stack.address("gateway"), options=options) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        ok = await stub.Check(
            health_pb2.HealthCheckRequest(), metadata=[("x-fill", "a" * (limit // 2))], timeout=10
        )
        assert ok.status == health_pb2.HealthCheckResponse.SERVING
        for size in (limit + 1, 1 << 20):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.Check(
                    health_pb2.HealthCheckRequest(), metadata=[("x-big", "a" * size)], timeout=10
                )
            assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, refused.value
    await _health(stack)


async def test_oversized_rest_headers_are_431(stack: InProcessStack) -> None:
    """Headers over PONDER_GATEWAY_HTTP_MAX_HEADER_BYTES get 431 with a JSON google.rpc.Status
    from the gateway's REST port; the gateway keeps serving."""
    limit = GatewaySettings.model_fields["http_max_header_bytes"].default
    url = urlsplit(stack.http_url)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (limit + 1) + b"\r\n\r\n")
    raw = await asyncio.wait_for(reader.read(), 30)
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431 Request Header Fields Too Large")
    assert json.loads(body)["message"] == f"the request headers are over {limit} bytes"
    await _health(stack)


async def test_many_idle_and_trickling_rest_connections_are_closed(stack: InProcessStack) -> None:
    """Two hundred connections that send nothing or trickle headers are each answered 408
    and closed after the header timeout (memory is not held by them); health answers
    meanwhile."""
    url = urlsplit(stack.http_url)
    connections = [await asyncio.open_connection(url.hostname, url.port) for _ in range(200)]
    for _, writer in connections[::2]:
        writer.write(b"GET /healthz HTTP/1.1\r\nX-a: ")  # never finished
    await _health(stack)
    async with asyncio.timeout(120):  # the default header timeout is 10 s: a hang guard
        replies = await asyncio.gather(*(reader.read() for reader, _ in connections))
    for _, writer in connections:
        writer.close()
        await writer.wait_closed()
    assert all(r.startswith(b"HTTP/1.1 408 Request Timeout") for r in replies)
    await _health(stack)


async def test_silent_grpc_connections_are_closed(stack: InProcessStack) -> None:
    """Fifty TCP connections to the gRPC port that never send the HTTP/2 preface are closed
    by the server (PONDER_GRPC_HANDSHAKE_TIMEOUT_SECONDS), not held; health answers meanwhile."""
    host, port = stack.address("gateway").split(":")
    connections = [await asyncio.open_connection(host, int(port)) for _ in range(50)]
    await _health(stack)
    async with asyncio.timeout(120):  # the default timeout is 10 s: a hang guard
        await asyncio.gather(*(reader.read() for reader, _ in connections))
    assert all(reader.at_eof() for reader, _ in connections)
    for _, writer in connections:
        writer.close()
        await writer.wait_closed()
    await _health(stack)
