"""cap and call_timeout (deadline propagation), ChannelFactory and the health client helpers."""

from __future__ import annotations

import socket
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ponder_runtime import ChannelFactory, call_timeout, configure_telemetry
from ponder_runtime.deadlines import cap
from ponder_runtime.health import check_health, wait_until_serving


class TestCallTimeout:
    @pytest.mark.parametrize(
        ("remaining", "default", "expected"),
        [
            (None, 10.0, 10.0),
            (30.0, 10.0, 10.0),
            (5.0, 10.0, 4.95),
            (10.05, 10.0, 10.0),
            (0.05, 10.0, 0.0),
            (0.01, 10.0, 0.0),
            (0.0, 10.0, 0.0),
        ],
        ids=[
            "no-deadline",
            "deadline-far",
            "deadline-near",
            "deadline-equal-after-margin",
            "only-margin-left",
            "less-than-margin",
            "expired",
        ],
    )
    def test_shortened_to_the_callers_deadline(
        self, remaining: float | None, default: float, expected: float
    ) -> None:
        """The default, cut to the caller's remaining time minus a 50 ms margin, never < 0."""
        assert cap(default, remaining) == pytest.approx(expected)

    def test_no_context_means_default(self) -> None:
        """Outside an RPC (no context) the default applies."""
        assert call_timeout(None, 7.5) == 7.5


def _closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class TestHealthClient:
    async def test_wait_times_out_on_a_server_that_never_gets_ready(
        self, start_server, module_of
    ) -> None:
        """wait_until_serving raises TimeoutError naming the last status after the timeout."""
        running = await start_server(
            module_of(["ponder.test.v1.Never"], lambda _: None), ready=False
        )
        started = time.monotonic()
        with pytest.raises(TimeoutError, match=r"not SERVING after 0\.3s: NOT_SERVING"):
            await wait_until_serving(running.channel, timeout=0.3, interval=0.05)
        assert 0.25 <= time.monotonic() - started < 2

    async def test_wait_returns_once_serving(self, start_server, module_of) -> None:
        """wait_until_serving returns as soon as the service reports SERVING."""
        running = await start_server(module_of(["ponder.test.v1.Ready"], lambda _: None))
        await wait_until_serving(running.channel, "ponder.test.v1.Ready", timeout=2, interval=0.05)

    async def test_check_health_names_the_status(self, start_server, module_of) -> None:
        """check_health answers the status name, SERVICE_UNKNOWN for unknown services."""
        running = await start_server(module_of(["ponder.test.v1.Ready"], lambda _: None))
        assert await check_health(running.channel) == "SERVING"
        assert await check_health(running.channel, "ponder.test.v1.Ready") == "SERVING"
        assert await check_health(running.channel, "ponder.test.v1.Other") == "SERVICE_UNKNOWN"

    async def test_unreachable_server(self) -> None:
        """Nothing listening: check_health says UNREACHABLE and waiting times out."""
        async with grpc.aio.insecure_channel(f"127.0.0.1:{_closed_port()}") as channel:
            assert await check_health(channel, timeout=0.2) == "UNREACHABLE"
            with pytest.raises(TimeoutError, match="UNREACHABLE"):
                await wait_until_serving(channel, timeout=0.2, interval=0.05)


class TestChannelFactory:
    async def test_channels_reach_a_server_and_are_closed(self, start_server, module_of) -> None:
        """Factory channels talk to a real server; close() closes every one of them."""
        running = await start_server(module_of(["ponder.test.v1.Ready"], lambda _: None))
        settings = running.server.settings
        factory = ChannelFactory(configure_telemetry(settings), max_message_bytes=1024 * 1024)
        first = factory.channel(f"127.0.0.1:{running.port}")
        second = factory.channel(f"127.0.0.1:{running.port}")
        assert await check_health(first) == "SERVING"
        assert await check_health(second) == "SERVING"
        await factory.close()
        with pytest.raises(grpc.aio.UsageError):
            await health_pb2_grpc.HealthStub(first).Check(
                health_pb2.HealthCheckRequest(), timeout=1
            )
