"""The gateway's metrics: REST requests, workflow durations by outcome, cache lookups and
rate-limit rejections, read from an in-memory reader on a dedicated gateway."""

from __future__ import annotations

import uuid

import httpx
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from tests.conftest import InProcessStack
from tests.support.gateways import measured_gateway, rest_url
from tests.support.metrics import points, total


async def test_gateway_metrics_follow_rest_workflows_cache_and_rate_limits(
    stack: InProcessStack, tmp_path
):
    """Two REST runs of one new topic: both count as HTTP requests on the workflow route and as
    SUCCEEDED workflow durations, the first a cache miss and the repeat a hit; in-flight is back
    to zero; a third call is refused by the rate limit, which counts the rejection and a 429."""
    reader = InMemoryMetricReader()
    server = await measured_gateway(stack, tmp_path, reader)
    topic = f"How do agents reflect on their answers? ({uuid.uuid4().hex[:8]})"
    try:
        async with httpx.AsyncClient(base_url=rest_url(server), timeout=30) as http:
            for text in (topic, f" {topic}"):  # other bytes: a cache hit, not a replay
                reply = await http.post("/v1/workflows/reflection", json={"topic": text})
                assert reply.status_code == 200, reply.text
            assert reply.json()["workflow"]["cache"]["hit"] is True
            limited = await http.get("/v1/workflows/nothing-here")
            limited_again = await http.get("/v1/workflows/nothing-here")
            codes = [limited.status_code, limited_again.status_code]
        assert codes == [404, 429]
        route = "/v1/workflows/reflection"
        assert (
            total(
                reader,
                "http.server.request.duration",  # a histogram's count: the requests
                {
                    "http.request.method": "POST",
                    "http.route": route,
                    "http.response.status_code": 200,
                },
            )
            == 2
        )
        assert total(reader, "http.server.request.duration", {"http.route": route}) == 2
        assert (
            total(reader, "http.server.request.duration", {"http.response.status_code": 429}) == 1
        )
        assert points(reader, "ponder.workflow.in_flight")  # it moved, and is back at zero
        durations = points(reader, "ponder.workflow.duration")
        assert {
            (a["ponder.workflow.kind"], a["ponder.workflow.outcome"]) for a, _ in durations
        } == {("REFLECTION", "SUCCEEDED")}
        assert sum(p.count for _, p in durations) == 2
        assert (
            total(reader, "ponder.workflow.in_flight", {"ponder.workflow.kind": "REFLECTION"}) == 0
        )
        assert total(reader, "ponder.cache.lookups", {"ponder.cache.result": "miss"}) == 1
        assert total(reader, "ponder.cache.lookups", {"ponder.cache.result": "hit"}) == 1
        lookups = {
            a["ponder.cache.result"]: p for a, p in points(reader, "ponder.cache.lookup.duration")
        }
        assert {result: p.count for result, p in lookups.items()} == {"miss": 1, "hit": 1}
        assert lookups["miss"].sum > 0
        assert total(reader, "ponder.rate_limit.rejections") == 1
    finally:
        await server.stop(0)


async def test_a_cache_lookup_that_fails_counts_as_an_error_and_the_workflow_succeeds(
    stack: InProcessStack, tmp_path
):
    """With the embedding service unreachable, the lookup is counted (and timed) as an error,
    and the workflow still succeeds, which its duration's outcome says."""
    reader = InMemoryMetricReader()
    server = await measured_gateway(stack, tmp_path, reader, embedding_addr="127.0.0.1:1")
    topic = f"Do critics make agents better writers? ({uuid.uuid4().hex[:8]})"
    try:
        async with httpx.AsyncClient(base_url=rest_url(server), timeout=60) as http:
            reply = await http.post("/v1/workflows/reflection", json={"topic": topic})
        assert reply.status_code == 200, reply.text
        assert any("cache" in w for w in reply.json()["workflow"]["warnings"])
        assert total(reader, "ponder.cache.lookups", {"ponder.cache.result": "error"}) == 1
        assert total(reader, "ponder.cache.lookup.duration", {"ponder.cache.result": "error"}) == 1
        outcomes = {
            a["ponder.workflow.outcome"] for a, _ in points(reader, "ponder.workflow.duration")
        }
        assert outcomes == {"SUCCEEDED"}
    finally:
        await server.stop(0)
