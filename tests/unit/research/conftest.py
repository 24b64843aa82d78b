"""Shared fixtures: a real research server on a free port."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
import pytest

from ponder_research.service import ResearchModule
from ponder_research.settings import ResearchSettings
from ponder_runtime import ServiceServer, configure_telemetry, load_settings


StartResearch = Callable[..., Awaitable[tuple[ServiceServer, grpc.aio.Channel]]]


@pytest.fixture
async def start_research() -> AsyncIterator[StartResearch]:
    """Start research servers (ResearchModule + ServiceServer) on 127.0.0.1:0, with settings
    overrides; close their channels and stop them afterwards."""
    running: list[tuple[ServiceServer, grpc.aio.Channel]] = []

    async def start(
        *, ready: bool = True, **overrides: object
    ) -> tuple[ServiceServer, grpc.aio.Channel]:
        settings = load_settings(ResearchSettings, host="127.0.0.1", port=0, **overrides)
        telemetry = configure_telemetry(settings)
        server = ServiceServer(settings, ResearchModule(settings, telemetry), telemetry)
        port = await server.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        running.append((server, channel))
        if ready:
            await server.mark_ready()
        return server, channel

    yield start
    for server, channel in reversed(running):
        await channel.close()
        await server.stop(0)


@pytest.fixture
async def research_channel(start_research: StartResearch) -> grpc.aio.Channel:
    """A channel to a ready research server with the shipped sample library."""
    _, channel = await start_research()
    return channel
