"""Shared fixtures: own fake arXiv/Tavily servers, embedding clients (the in-process stack's
embedding service, or a closed port), and real research servers on free ports."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import grpc
import pytest

from ponder_devstack.fake_apis import Behaviour, FakeApi, serve_fake_arxiv, serve_fake_tavily
from ponder_research.embedder import Matrix
from ponder_research.embedding_client import EmbeddingClient
from ponder_research.service import ResearchModule
from ponder_research.settings import ResearchSettings
from ponder_runtime import ServiceServer, configure_telemetry, load_settings


StartResearch = Callable[..., Awaitable[tuple[ServiceServer, grpc.aio.Channel]]]


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class CountingEmbeddingClient(EmbeddingClient):
    """An EmbeddingClient that records the texts of every embed() and rank() call."""

    def __init__(self, channel: grpc.aio.Channel, *, timeout: float) -> None:
        super().__init__(channel, timeout=timeout)
        self.calls: list[list[str]] = []
        self.rank_calls: list[str] = []

    async def embed(self, texts: Sequence[str]) -> Matrix:
        """Record, then embed through the service."""
        self.calls.append(list(texts))
        return await super().embed(texts)

    async def rank(
        self, query: str, candidates: Sequence[tuple[str, str]]
    ) -> list[tuple[int, float]]:
        """Record, then rank through the service."""
        self.rank_calls.append(query)
        return await super().rank(query, candidates)


@pytest.fixture(scope="session")
def own_fake_arxiv() -> Iterator[FakeApi]:
    """A fake arXiv API for this package only (the session-wide one serves the stack)."""
    api = serve_fake_arxiv()
    yield api
    api.close()


@pytest.fixture(scope="session")
def own_fake_tavily() -> Iterator[FakeApi]:
    """A fake Tavily API for this package only."""
    api = serve_fake_tavily()
    yield api
    api.close()


def _reset(api: FakeApi) -> None:
    api.behaviour = Behaviour()
    api.requests.clear()


@pytest.fixture
def arxiv_api(own_fake_arxiv: FakeApi) -> Iterator[FakeApi]:
    """The package's fake arXiv API with default behaviour and an empty request log; the
    test may change its behaviour freely (reset afterwards)."""
    _reset(own_fake_arxiv)
    yield own_fake_arxiv
    _reset(own_fake_arxiv)


@pytest.fixture
def tavily_api(own_fake_tavily: FakeApi) -> Iterator[FakeApi]:
    """The package's fake Tavily API, reset like `arxiv_api`."""
    _reset(own_fake_tavily)
    yield own_fake_tavily
    _reset(own_fake_tavily)


@pytest.fixture
async def embedding_client(stack: Any) -> AsyncIterator[CountingEmbeddingClient]:
    """A client of the in-process stack's embedding service (real model)."""
    channel = grpc.aio.insecure_channel(stack.address("embedding"))
    yield CountingEmbeddingClient(channel, timeout=10)
    await channel.close()


@pytest.fixture
async def unreachable_embedding() -> AsyncIterator[CountingEmbeddingClient]:
    """A client whose embedding service address is a closed port."""
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{closed_port()}")
    yield CountingEmbeddingClient(channel, timeout=5)
    await channel.close()


@pytest.fixture(scope="session")
def research_index_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Library vectors shared by this package's research servers (embedded once)."""
    return tmp_path_factory.mktemp("research-index") / "library-vectors.sqlite3"


@pytest.fixture
async def start_research(
    stack: Any, arxiv_api: FakeApi, tavily_api: FakeApi, research_index_path: Path
) -> AsyncIterator[StartResearch]:
    """Start research servers (ResearchModule + ServiceServer) on 127.0.0.1:0 pointed at this
    test's fake arXiv/Tavily and the stack's embedding service, with settings overrides; close
    their channels and stop them afterwards."""
    running: list[tuple[ServiceServer, grpc.aio.Channel]] = []

    async def start(
        *, ready: bool = True, indexed: bool = False, **overrides: object
    ) -> tuple[ServiceServer, grpc.aio.Channel]:
        settings_values: dict[str, object] = {
            "arxiv_api_url": f"{arxiv_api.base_url}/api/query",
            "arxiv_min_interval_seconds": 0.0,
            "tavily_api_url": tavily_api.base_url,
            "tavily_api_key": "tvly-test-key",
            "embedding_addr": stack.address("embedding"),
            "index_path": research_index_path,
            **overrides,
        }
        settings = load_settings(ResearchSettings, host="127.0.0.1", port=0, **settings_values)
        telemetry = configure_telemetry(settings)
        server = ServiceServer(settings, ResearchModule(settings, telemetry), telemetry)
        port = await server.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        running.append((server, channel))
        if ready:
            await server.mark_ready()
        if indexed:
            await cast(ResearchModule, server.service).wait_indexed()
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
