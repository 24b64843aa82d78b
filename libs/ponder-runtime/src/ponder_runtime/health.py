"""Client-side helpers for grpc.health.v1."""

from __future__ import annotations

import asyncio
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


async def check_health(
    channel: grpc.aio.Channel, service: str = "", *, timeout: float = 1.0
) -> str:
    """The health status name of `service` on `channel` ("SERVING", "NOT_SERVING", ...), or
    "UNREACHABLE" when the server cannot be asked."""
    stub = health_pb2_grpc.HealthStub(channel)
    try:
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.NOT_FOUND:
            return "SERVICE_UNKNOWN"
        return "UNREACHABLE"
    name: str = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    return name


async def wait_until_serving(
    channel: grpc.aio.Channel, service: str = "", *, timeout: float = 60.0, interval: float = 0.2
) -> None:
    """Poll until `service` reports SERVING; raise TimeoutError with the last status after
    `timeout` seconds."""
    deadline = time.monotonic() + timeout
    status = "UNREACHABLE"
    while time.monotonic() < deadline:
        status = await check_health(channel, service, timeout=min(1.0, timeout))
        if status == "SERVING":
            return
        await asyncio.sleep(interval)
    raise TimeoutError(f"service {service or '(overall)'} not SERVING after {timeout:g}s: {status}")
