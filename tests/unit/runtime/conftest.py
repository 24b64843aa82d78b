"""Shared fixtures: real in-process ServiceServers on free ports."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import grpc
import pytest

from ponder_runtime import (
    ServiceModule,
    ServiceServer,
    ServiceSettings,
    configure_telemetry,
    load_settings,
)


class RuntimeTestSettings(ServiceSettings):
    """Settings of the throwaway services these tests start."""


@dataclass
class RunningServer:
    """A started ServiceServer, its port and a client channel to it."""

    server: ServiceServer
    port: int
    channel: grpc.aio.Channel
    stopped: bool = field(default=False)

    async def stop(self, grace: float = 0) -> None:
        """Stop the server (once); the fixture skips servers stopped this way."""
        if not self.stopped:
            self.stopped = True
            await self.server.stop(grace)


StartServer = Callable[..., Awaitable[RunningServer]]


@pytest.fixture
async def start_server() -> AsyncIterator[StartServer]:
    """Start ServiceServers on 127.0.0.1:0; close their channels and stop them afterwards."""
    running: list[RunningServer] = []

    async def start(
        module: ServiceModule, *, ready: bool = True, **overrides: object
    ) -> RunningServer:
        settings = load_settings(RuntimeTestSettings, host="127.0.0.1", port=0, **overrides)
        server = ServiceServer(settings, module, configure_telemetry(settings))
        port = await server.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        started = RunningServer(server, port, channel)
        running.append(started)
        if ready:
            await server.mark_ready()
        return started

    yield start
    for started in reversed(running):
        await started.channel.close()
        await started.stop(0)


@dataclass
class SimpleModule:
    """A ServiceModule built from a register function and the names it registers."""

    names: Sequence[str]
    register_with: Callable[[grpc.aio.Server], None]
    closed: bool = False

    @property
    def service_names(self) -> Sequence[str]:
        """The full names of the registered services."""
        return self.names

    def register(self, server: grpc.aio.Server) -> None:
        """Add the servicers."""
        self.register_with(server)

    async def start(self) -> None:
        """Nothing to get ready."""

    async def close(self) -> None:
        """Remember that the server closed the module."""
        self.closed = True


@pytest.fixture
def module_of() -> Callable[[Sequence[str], Callable[[grpc.aio.Server], None]], SimpleModule]:
    """Builds a SimpleModule (test files share code through fixtures: no package imports)."""
    return SimpleModule
