"""RPC metrics are scrapeable as Prometheus text on PONDER_<SERVICE>_METRICS_PORT, per method
and status."""

from __future__ import annotations

import grpc
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ponder.research.v1 import research_service_pb2 as research_pb2
from ponder.research.v1 import research_service_pb2_grpc as research_grpc
from ponder_research.service import ResearchModule
from ponder_research.settings import ResearchSettings
from ponder_runtime import ServiceServer, configure_telemetry, load_settings


SEARCH = "/ponder.research.v1.ResearchService/SearchSources"


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """(labels, value) of every sample called `name` in a Prometheus text page."""
    return [
        (dict(sample.labels), sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


def value(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels` (0 when none)."""
    return sum(v for found, v in samples(text, name) if labels.items() <= found.items())


async def test_rpc_counts_and_durations_are_scraped_by_method_and_code():
    """With metrics_port=0 a free port serves /metrics; an OK and an INVALID_ARGUMENT call
    each move the request counter under their method and code (health checks are not
    counted), the duration histogram counts both, and stopping the service closes the port."""
    settings = load_settings(ResearchSettings, host="127.0.0.1", port=0, metrics_port=0)
    telemetry = configure_telemetry(settings)
    port = telemetry.metrics_port
    assert port
    server = ServiceServer(settings, ResearchModule(settings, telemetry), telemetry)
    bound = await server.start()
    await server.mark_ready()
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{bound}") as channel:
            stub = research_grpc.ResearchServiceStub(channel)
            await stub.SearchSources(research_pb2.SearchSourcesRequest(query="transformers"))
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.SearchSources(research_pb2.SearchSourcesRequest(query=""))
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        async with httpx.AsyncClient() as client:
            page = await client.get(url)
        assert page.status_code == 200
        text = page.text
    finally:
        await server.stop(0)
    requests = "rpc_server_requests_total"
    assert value(text, requests, rpc_method=SEARCH, rpc_grpc_status_code="0") == 1
    assert value(text, requests, rpc_method=SEARCH, rpc_grpc_status_code="3") == 1
    assert not any("Health" in labels["rpc_method"] for labels, _ in samples(text, requests))
    assert value(text, "rpc_server_duration_milliseconds_count", rpc_method=SEARCH) == 2
    assert value(text, "target_info", service_name="research") == 1
    async with httpx.AsyncClient(timeout=2) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(url)


def test_metrics_endpoint_is_off_by_default_and_registries_are_per_telemetry():
    """Without PONDER_<SERVICE>_METRICS_PORT no port is opened; two Telemetry objects in one process
    each serve only their own instruments (no process-global registry)."""
    assert configure_telemetry(load_settings(ResearchSettings)).metrics_port is None
    first = configure_telemetry(load_settings(ResearchSettings, metrics_port=0))
    second = configure_telemetry(load_settings(ResearchSettings, metrics_port=0))
    try:
        first.meter("test").create_counter("only.first").add(2)
        second.meter("test").create_counter("only.second").add(3)
        one = httpx.get(f"http://127.0.0.1:{first.metrics_port}/metrics", timeout=5).text
        two = httpx.get(f"http://127.0.0.1:{second.metrics_port}/metrics", timeout=5).text
    finally:
        first.shutdown()
        second.shutdown()
    assert value(one, "only_first_total") == 2
    assert value(two, "only_second_total") == 3
    assert "only_second" not in one
    assert "only_first" not in two


def test_each_service_reads_its_own_metrics_port(monkeypatch):
    """PONDER_RESEARCH_METRICS_PORT sets research's port; another service's variable does
    not (the four processes of `make run` share one environment)."""
    from ponder_gateway.settings import GatewaySettings

    monkeypatch.setenv("PONDER_GATEWAY_METRICS_PORT", "9464")
    assert load_settings(ResearchSettings).metrics_port == -1
    monkeypatch.setenv("PONDER_RESEARCH_METRICS_PORT", "9465")
    assert load_settings(ResearchSettings).metrics_port == 9465
    assert load_settings(GatewaySettings).metrics_port == 9464
