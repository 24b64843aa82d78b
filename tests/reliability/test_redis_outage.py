"""Redis going away under load and coming back, over real processes and a real redis-server:
records, rate limits and the cache all on Redis; no acknowledged workflow is lost, creations
are refused with UNAVAILABLE while Redis is away, and everything recovers without a restart."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
import redis

from ponder.workflow.v1 import workflow_service_pb2 as pb
from ponder.workflow.v1 import workflow_service_pb2_grpc as workflow_grpc
from ponder_devstack.fake_apis import FakeApi
from ponder_devstack.redis_server import RedisServer
from ponder_gateway.record_codec import decode
from tests.reliability.chaos import eventually, running_chaos, spec, unique


FINAL = (pb.WORKFLOW_STATE_SUCCEEDED, pb.WORKFLOW_STATE_FAILED, pb.WORKFLOW_STATE_CANCELLED)


@dataclass
class Traffic:
    """What the load saw."""

    acknowledged: set[str] = field(default_factory=set)
    created_after_return: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    runs: Counter[str] = field(default_factory=Counter)
    run_warnings: list[str] = field(default_factory=list)
    redis_down: bool = False
    redis_back: bool = False


async def creator(
    stub: workflow_grpc.WorkflowServiceStub, traffic: Traffic, stop: asyncio.Event
) -> None:
    """Create long-running workflows in a loop, keeping the names acknowledged."""
    while not stop.is_set():
        try:
            created = await stub.CreateWorkflow(
                pb.CreateWorkflowRequest(
                    workflow=spec(unique("What is retrieval-augmented generation? outage"))
                ),
                timeout=30,
            )
        except grpc.aio.AioRpcError as exc:
            traffic.refused[f"{exc.code().name} down={traffic.redis_down}"] += 1
            await asyncio.sleep(0.05)
            continue
        traffic.acknowledged.add(created.workflow.name)
        if traffic.redis_back:
            traffic.created_after_return += 1
        await asyncio.sleep(0.3)  # a steady trickle, not a flood that queues the runs


async def runner(
    stub: workflow_grpc.WorkflowServiceStub, traffic: Traffic, stop: asyncio.Event
) -> None:
    """Run synchronous workflows in a loop (each reads and writes records and the cache)."""
    while not stop.is_set():
        during = traffic.redis_down and not traffic.redis_back
        try:
            reply = await stub.RunWorkflow(
                pb.RunWorkflowRequest(
                    workflow=spec(unique("How do language agents use self-reflection? outage"))
                ),
                timeout=60,
            )
        except grpc.aio.AioRpcError as exc:
            traffic.runs[f"{exc.code().name} during={during}"] += 1
            continue
        state = pb.WorkflowState.Name(reply.workflow.state)
        traffic.runs[f"{state} during={during}"] += 1
        if during:
            traffic.run_warnings.extend(reply.workflow.warnings)


async def until(condition: Callable[[], bool], traffic: Traffic, timeout: float = 60.0) -> None:
    """Wait until `condition()` holds (the timeout is a hang guard, not a speed claim)."""
    assert await eventually(condition, timeout), traffic


@pytest.mark.stack
async def test_a_redis_outage_loses_no_acknowledged_workflow(
    tmp_path: Path, fake_arxiv: FakeApi, fake_tavily: FakeApi
) -> None:
    """Redis stops in the middle of mixed traffic (creates and synchronous runs) and starts
    again: creations are refused with UNAVAILABLE while it is away (never an INTERNAL),
    synchronous runs still succeed (the cache skipped, with a warning), rate limits fall back
    to local buckets, and once Redis is back creations succeed again without restarting
    anything; every workflow acknowledged as created is then found, finished, in Redis."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    env = {
        "PONDER_GATEWAY_REDIS_URL": server.url,
        "PONDER_CACHE_REDIS_URL": server.url,
        "PONDER_GATEWAY_RATE_LIMIT_PER_SECOND": "1000",
    }
    try:
        async with (
            running_chaos(tmp_path / "stack", fake_arxiv, fake_tavily, env) as chaos,
            grpc.aio.insecure_channel(chaos.gateway) as channel,
        ):
            stub = workflow_grpc.WorkflowServiceStub(channel)
            traffic, stop = Traffic(), asyncio.Event()
            load = [
                asyncio.create_task(creator(stub, traffic, stop)),
                asyncio.create_task(runner(stub, traffic, stop)),
                asyncio.create_task(runner(stub, traffic, stop)),
            ]
            await until(
                lambda: len(traffic.acknowledged) >= 5 and sum(traffic.runs.values()) >= 2, traffic
            )
            server.stop()
            traffic.redis_down = True
            await until(
                lambda: (
                    traffic.refused["UNAVAILABLE down=True"] >= 3
                    and traffic.runs["WORKFLOW_STATE_SUCCEEDED during=True"] >= 2
                ),
                traffic,
            )
            server.start()
            back = time.monotonic()
            traffic.redis_back = True
            await until(lambda: traffic.created_after_return >= 3, traffic)
            recovered_after = time.monotonic() - back
            stop.set()
            await asyncio.gather(*load)

            for name in traffic.acknowledged:  # each one found, and eventually finished
                async with asyncio.timeout(60):
                    while True:
                        got = await stub.GetWorkflow(pb.GetWorkflowRequest(name=name), timeout=10)
                        if got.workflow.state in FINAL:
                            break
                        await asyncio.sleep(0.1)
        # The gateway has drained: what it acknowledged is in Redis, finished.
        with redis.Redis.from_url(server.url) as client:
            for name in traffic.acknowledged:  # the record's hash (redis_state.py)
                data, codec = client.hmget(f"ponder:gateway:rec:{name}", ["d", "c"])
                assert data is not None, f"{name} was acknowledged but is not in Redis"
                assert decode(data, int(codec), None).state in FINAL, name
        gateway_log = (tmp_path / "stack" / "gateway.log").read_text()
    finally:
        server.stop()

    print(f"creations succeeded again {recovered_after:.2f}s after Redis was back; {traffic}")
    refusals = {reason for reason in traffic.refused if reason.endswith("down=True")}
    assert refusals == {"UNAVAILABLE down=True"}, traffic.refused
    assert not any(r.endswith("down=False") for r in traffic.refused), traffic.refused
    assert all(key.startswith("WORKFLOW_STATE_SUCCEEDED") for key in traffic.runs), traffic.runs
    assert any(w.startswith("cache:") for w in traffic.run_warnings), traffic.run_warnings
    assert "rate limits use this replica's local buckets" in gateway_log
    assert "Redis is back: rate limits are shared again" in gateway_log
