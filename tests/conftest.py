"""Shared fixtures: the whole stack, in-process (fast) or as real processes (grpcurl, signals)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
import redis
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ponder_devstack import Stack, StackPorts
from ponder_devstack.fake_apis import FakeApi, serve_fake_arxiv, serve_fake_tavily
from ponder_embedding.service import EmbeddingModule
from ponder_embedding.settings import EmbeddingSettings
from ponder_gateway.principals import Scope
from ponder_gateway.service import GatewayModule
from ponder_gateway.settings import GatewaySettings
from ponder_reflection.service import ReflectionModule
from ponder_reflection.settings import ReflectionSettings
from ponder_research.service import ResearchModule
from ponder_research.settings import ResearchSettings
from ponder_runtime import ServiceServer, ServiceSettings, configure_telemetry, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No PONDER_* or OTEL_* variable of the calling shell leaks into a test; gateways started
    by tests take a free HTTP port instead of the fixed 8080."""
    for name in list(os.environ):
        if name.startswith(("PONDER_", "OTEL_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PONDER_GATEWAY_HTTP_PORT", "0")


@dataclass
class InProcessStack:
    """The four services on port 0 in this process, with their spans kept in memory."""

    servers: dict[str, ServiceServer]
    spans: InMemorySpanExporter

    def address(self, name: str) -> str:
        """127.0.0.1:<port> of a service."""
        return f"127.0.0.1:{self.servers[name].port}"

    @property
    def http_url(self) -> str:
        """http://127.0.0.1:<port> of the gateway's REST facade."""
        module = self.servers["gateway"].service
        assert isinstance(module, GatewayModule)
        assert module.http is not None
        return f"http://127.0.0.1:{module.http.port}"


async def start_service(
    settings: ServiceSettings, module_cls: type, spans: InMemorySpanExporter
) -> ServiceServer:
    """Start one service in-process and wait until it is ready."""
    telemetry = configure_telemetry(settings, extra_processors=[SimpleSpanProcessor(spans)])
    server = ServiceServer(settings, module_cls(settings, telemetry), telemetry)
    await server.start()
    await server.mark_ready()
    return server


@pytest.fixture(scope="session")
def fake_arxiv() -> Iterator[FakeApi]:
    """A local server speaking the arXiv API (shared; reset its behaviour after changing it)."""
    api = serve_fake_arxiv()
    yield api
    api.close()


@pytest.fixture(scope="session")
def fake_tavily() -> Iterator[FakeApi]:
    """A local server speaking Tavily's search API (shared)."""
    api = serve_fake_tavily()
    yield api
    api.close()


def research_env(arxiv: FakeApi, tavily: FakeApi, cache_dir: Path) -> dict[str, str]:
    """Environment that points the research service at the fake APIs (nothing leaves
    127.0.0.1) and keeps its files under cache_dir."""
    return {
        "PONDER_RESEARCH_ARXIV_API_URL": f"{arxiv.base_url}/api/query",
        "PONDER_RESEARCH_ARXIV_MIN_INTERVAL_SECONDS": "0",
        "PONDER_RESEARCH_TAVILY_API_URL": tavily.base_url,
        "TAVILY_API_KEY": "tvly-test-key",
        "PONDER_RESEARCH_INDEX_PATH": str(cache_dir / "library-vectors.sqlite3"),
    }


@pytest_asyncio.fixture(scope="session")
async def stack(
    tmp_path_factory: pytest.TempPathFactory, fake_arxiv: FakeApi, fake_tavily: FakeApi
) -> AsyncIterator[InProcessStack]:
    """All four services in-process; the embedding model is loaded once per session."""
    spans = InMemorySpanExporter()
    common = {"host": "127.0.0.1", "port": 0}
    cache_path = tmp_path_factory.mktemp("cache") / "cache.sqlite3"
    embedding = await start_service(
        load_settings(EmbeddingSettings, **common, cache_path=cache_path), EmbeddingModule, spans
    )
    embedding_port = embedding.port
    servers = {
        "embedding": embedding,
        "research": await start_service(
            load_settings(
                ResearchSettings,
                **common,
                arxiv_api_url=f"{fake_arxiv.base_url}/api/query",
                arxiv_min_interval_seconds=0.0,
                tavily_api_url=fake_tavily.base_url,
                tavily_api_key="tvly-test-key",
                embedding_addr=f"127.0.0.1:{embedding_port}",
                index_path=cache_path.parent / "library-vectors.sqlite3",
            ),
            ResearchModule,
            spans,
        ),
        "reflection": await start_service(
            load_settings(ReflectionSettings, **common), ReflectionModule, spans
        ),
    }
    gateway_settings = load_settings(
        GatewaySettings,
        **common,
        research_addr=f"127.0.0.1:{servers['research'].port}",
        embedding_addr=f"127.0.0.1:{servers['embedding'].port}",
        reflection_addr=f"127.0.0.1:{servers['reflection'].port}",
        store_path=cache_path.parent / "workflows.sqlite3",
        http_port=0,
        # The shared stack's gateway forwards the internal services (off by default) and its
        # anonymous callers hold every scope, so tests can drive research, reflection and
        # embedding through one address; tests/integration/test_tenants.py and
        # tests/reliability/test_security.py check the defaults on gateways of their own.
        expose_internal_services=True,
        anonymous_scopes=frozenset(Scope),
    )
    servers["gateway"] = await start_service(gateway_settings, GatewayModule, spans)
    research = servers["research"].service
    assert isinstance(research, ResearchModule)
    await research.wait_indexed()  # library searched by meaning from the first test on
    yield InProcessStack(servers, spans)
    for server in reversed(servers.values()):
        await server.stop(0)


@pytest_asyncio.fixture
async def gateway_channel(stack: InProcessStack) -> AsyncIterator[grpc.aio.Channel]:
    """A channel to the in-process gateway."""
    async with grpc.aio.insecure_channel(stack.address("gateway")) as channel:
        yield channel


@pytest.fixture(scope="session")
def process_stack(
    tmp_path_factory: pytest.TempPathFactory, fake_arxiv: FakeApi, fake_tavily: FakeApi
) -> Iterator[Stack]:
    """The four services as real processes on free ports (as `make run` starts them)."""
    import asyncio

    log_dir: Path = tmp_path_factory.mktemp("stack-logs")
    stack = Stack(
        ports=StackPorts.free(),
        log_dir=log_dir,
        extra_env={
            "PONDER_LOG_LEVEL": "INFO",
            "PONDER_CACHE_PATH": str(log_dir / "cache.sqlite3"),
            "PONDER_GATEWAY_STORE_PATH": str(log_dir / "workflows.sqlite3"),
            **research_env(fake_arxiv, fake_tavily, log_dir),
        },
    )
    stack.start()
    try:
        asyncio.run(stack.wait_ready(timeout=120))
        yield stack
    finally:
        codes = stack.stop()
        assert all(code == 0 for code in codes.values()), (codes, os.listdir(log_dir))


_REDIS_START_TIMEOUT_S = 10.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (right now)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for_ping(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Return once the server at `url` answers PING; fail if it exits or never answers."""
    deadline = time.monotonic() + _REDIS_START_TIMEOUT_S
    with redis.Redis.from_url(url, socket_connect_timeout=1.0) as client:
        while True:
            if process.poll() is not None:
                pytest.fail(
                    f"redis-server exited with {process.returncode}:\n{log.read_text()}",
                    pytrace=False,
                )
            try:
                if client.ping():
                    return
            except redis.ConnectionError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"redis-server did not answer PING within {_REDIS_START_TIMEOUT_S} s:\n"
                    f"{log.read_text()}",
                    pytrace=False,
                )
            time.sleep(0.05)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A redis-server subprocess (no persistence) in a temp dir; yields its redis:// URL."""
    executable = shutil.which("redis-server")
    if executable is None:
        pytest.fail(
            "redis-server is not installed; the Redis cache backend tests need it: run "
            "`make redis` (apt-get install redis-server)",
            pytrace=False,
        )
    workdir = tmp_path_factory.mktemp("redis")
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    log = workdir / "redis.log"
    with log.open("wb") as out:
        options = {
            "--port": str(port),
            "--bind": "127.0.0.1",
            "--save": "",
            "--appendonly": "no",
            "--daemonize": "no",
            "--dir": str(workdir),
        }
        process = subprocess.Popen(
            [executable, *(part for pair in options.items() for part in pair)],
            cwd=workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for_ping(url, process, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def redis_url(redis_server: str) -> str:
    """The shared test redis-server's URL, emptied (FLUSHALL) before the test."""
    with redis.Redis.from_url(redis_server) as client:
        client.flushall()
    return redis_server
