"""Shared fixtures: a clean environment and a real research server on a free port."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
import pytest

from ponder_research.service import ResearchModule
from ponder_research.settings import ResearchSettings
from ponder_runtime import ServiceServer, configure_telemetry, load_settings


StartResearch = Callable[..., Awaitable[tuple[ServiceServer, grpc.aio.Channel]]]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No PONDER_* or OTEL_* variable of the calling shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith(("PONDER_", "OTEL_")):
            monkeypatch.delenv(name)


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
