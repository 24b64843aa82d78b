"""Gateways on the shared in-process stack, with settings of their own."""

from __future__ import annotations

from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ponder_gateway.service import GatewayModule
from ponder_gateway.settings import GatewaySettings
from ponder_runtime import ServiceServer, configure_telemetry, load_settings
from tests.conftest import InProcessStack, start_service


class UnwaitingGateway(GatewayModule):
    """The gateway without its wait for downstream readiness (embedding never comes up)."""

    async def start(self) -> None:
        """Skip waiting: this test runs with the embedding service down."""


def gateway_settings(stack: InProcessStack, tmp_path, **overrides: object) -> GatewaySettings:
    """Settings of a gateway on the in-process stack's services, its records in `tmp_path`."""
    return load_settings(
        GatewaySettings,
        **{
            "host": "127.0.0.1",
            "port": 0,
            "research_addr": stack.address("research"),
            "embedding_addr": stack.address("embedding"),
            "reflection_addr": stack.address("reflection"),
            "store_path": tmp_path / "workflows.sqlite3",
            **overrides,
        },
    )


async def gateway(stack: InProcessStack, tmp_path, **overrides: object) -> ServiceServer:
    """A gateway on the in-process stack's services with its own access settings."""
    settings = gateway_settings(stack, tmp_path, **overrides)
    return await start_service(settings, UnwaitingGateway, InMemorySpanExporter())


def rest_url(server: ServiceServer) -> str:
    """The REST facade of a gateway started by `gateway()`."""
    module = server.service
    assert isinstance(module, UnwaitingGateway)
    assert module.http is not None
    return f"http://127.0.0.1:{module.http.port}"


async def measured_gateway(
    stack: InProcessStack, tmp_path, reader: InMemoryMetricReader, **overrides: object
) -> ServiceServer:
    """A gateway on the stack's services whose metrics go to `reader`; a burst of 3 requests
    with almost no refill, so the fourth call from one caller is rate limited."""
    settings = load_settings(
        GatewaySettings,
        **{
            "host": "127.0.0.1",
            "port": 0,
            "http_port": 0,
            "research_addr": stack.address("research"),
            "embedding_addr": stack.address("embedding"),
            "reflection_addr": stack.address("reflection"),
            "store_path": tmp_path / "workflows.sqlite3",
            "rate_limit_per_second": 0.001,
            "rate_limit_burst": 3,
            **overrides,
        },
    )
    telemetry = configure_telemetry(
        settings,
        extra_processors=[SimpleSpanProcessor(InMemorySpanExporter())],
        extra_metric_readers=[reader],
    )
    server = ServiceServer(settings, UnwaitingGateway(settings, telemetry), telemetry)
    await server.start()
    await server.mark_ready()
    return server
