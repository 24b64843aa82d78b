"""In-process gRPC servers on free ports, built from a register function."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import grpc

from ponder_runtime import ServiceServer, ServiceSettings, configure_telemetry, load_settings


@dataclass
class RegisteredModule:
    """A ServiceModule from a register function and the names it registers."""

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


@asynccontextmanager
async def serving(
    names: Sequence[str], register: Callable[[grpc.aio.Server], None]
) -> AsyncIterator[ServiceServer]:
    """A ready ServiceServer (the runtime's interceptors included) on 127.0.0.1:0."""
    settings = load_settings(ServiceSettings, host="127.0.0.1", port=0)
    server = ServiceServer(
        settings, RegisteredModule(names, register), configure_telemetry(settings)
    )
    await server.start()
    await server.mark_ready()
    try:
        yield server
    finally:
        await server.stop(0)
