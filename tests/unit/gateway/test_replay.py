"""Exact repeats of a synchronous request replayed: bounded in age and size, keyed by the
request's bytes, forgotten when their question's answer is refreshed, counted."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from ponder.workflow.v1 import workflow_service_pb2 as pb
from ponder_gateway.replay import ReplayMemo


def request(
    topic: str, policy: pb.CachePolicy = pb.CACHE_POLICY_UNSPECIFIED
) -> pb.RunReflectionWorkflowRequest:
    """A RunReflectionWorkflow request."""
    return pb.RunReflectionWorkflowRequest(
        topic=topic, parameters=pb.WorkflowParameters(cache_policy=policy)
    )


def reply(name: str) -> pb.RunReflectionWorkflowResponse:
    """A reply naming workflow `name`."""
    return pb.RunReflectionWorkflowResponse(workflow=pb.Workflow(name=name))


async def test_the_same_bytes_of_the_same_type_only():
    memo: ReplayMemo[pb.RunReflectionWorkflowResponse] = ReplayMemo(seconds=30, max_entries=10)
    memo.put(memo.key(request("topic")), reply("workflows/a"), "ns\ntopic")
    found = await memo.get(memo.key(request("topic")))
    assert found is not None
    assert found[0].workflow.name == "workflows/a"
    assert 0 <= found[1] < 1
    assert await memo.get(memo.key(request("topic "))) is None  # other bytes: not an exact repeat
    assert await memo.get(memo.key(request("topic", pb.CACHE_POLICY_USE))) is None
    other_type = pb.RunResearchWorkflowRequest(topic="topic", parameters=pb.WorkflowParameters())
    assert other_type.SerializeToString() == request("topic").SerializeToString()
    assert await memo.get(memo.key(other_type)) is None  # same bytes, another method


async def test_entries_expire_and_say_their_age():
    """A reply is replayed with its age for `seconds`, then no more."""
    now = [1000.0]
    memo: ReplayMemo[pb.RunReflectionWorkflowResponse] = ReplayMemo(
        seconds=30, max_entries=10, clock=lambda: now[0]
    )
    key = memo.key(request("topic"))
    memo.put(key, reply("workflows/a"), "ns\ntopic")
    now[0] += 29.5
    found = await memo.get(key)
    assert found is not None
    assert found[1] == pytest.approx(29.5)
    now[0] += 0.5
    assert await memo.get(key) is None


async def test_the_oldest_goes_first_when_full():
    memo: ReplayMemo[pb.RunReflectionWorkflowResponse] = ReplayMemo(seconds=30, max_entries=2)
    for topic in ("one", "two", "three"):
        memo.put(memo.key(request(topic)), reply(f"workflows/{topic}"), f"ns\n{topic}")
    assert await memo.get(memo.key(request("one"))) is None
    assert await memo.get(memo.key(request("two"))) is not None
    assert await memo.get(memo.key(request("three"))) is not None


async def test_forget_drops_every_request_for_the_question_and_nothing_else():
    memo: ReplayMemo[pb.RunReflectionWorkflowResponse] = ReplayMemo(seconds=30, max_entries=10)
    memo.put(memo.key(request("topic")), reply("workflows/a"), "ns\ntopic")
    memo.put(memo.key(request(" topic")), reply("workflows/b"), "ns\ntopic")
    memo.put(memo.key(request("other")), reply("workflows/c"), "ns\nother")
    memo.forget("ns\ntopic")
    assert await memo.get(memo.key(request("topic"))) is None
    assert await memo.get(memo.key(request(" topic"))) is None
    assert await memo.get(memo.key(request("other"))) is not None


@pytest.mark.parametrize(("seconds", "entries"), [(0, 10), (30, 0)])
async def test_turned_off(seconds: float, entries: int):
    memo: ReplayMemo[pb.RunReflectionWorkflowResponse] = ReplayMemo(
        seconds=seconds, max_entries=entries
    )
    memo.put(memo.key(request("topic")), reply("workflows/a"), "ns\ntopic")
    assert await memo.get(memo.key(request("topic"))) is None


async def test_replays_count_as_cache_lookups():
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("test")
    memo: ReplayMemo[pb.RunReflectionWorkflowResponse] = ReplayMemo(
        seconds=30, max_entries=10, meter=meter
    )
    key = memo.key(request("topic"))
    memo.put(key, reply("workflows/a"), "ns\ntopic")
    assert await memo.get(key) is not None
    assert await memo.get(key) is not None
    assert await memo.get(memo.key(request("missing"))) is None  # not a lookup of the cache
    data = reader.get_metrics_data()
    assert data is not None
    points = [
        (dict(point.attributes or {}), getattr(point, "value", None))
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == "ponder.cache.lookups"
        for point in metric.data.data_points
    ]
    assert points == [({"ponder.cache.result": "replay"}, 2)]


async def test_a_reply_kept_with_a_check_is_replayed_only_while_it_passes():
    """A reply that depends on more than the request (the library) goes when its check fails."""
    valid = [True]
    checks: list[str] = []

    async def still_valid() -> bool:
        checks.append("checked")
        return valid[0]

    memo: ReplayMemo[pb.RunReflectionWorkflowResponse] = ReplayMemo(seconds=30, max_entries=10)
    key = memo.key(request("topic"))
    memo.put(key, reply("workflows/a"), "ns\ntopic", still_valid)
    assert await memo.get(key) is not None
    valid[0] = False
    assert await memo.get(key) is None
    valid[0] = True
    assert await memo.get(key) is None  # dropped, not merely skipped
    assert checks == ["checked", "checked"]
