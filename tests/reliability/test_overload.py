"""Overload on the stack of real processes: beyond the workflow capacity callers are told to
come back later (gRPC and REST alike) while admitted work keeps its latency, and clients that
open many watches and vanish leave no tasks or memory behind in the gateway."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import httpx
import pytest
import pytest_asyncio
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from ponder.workflow.v1 import workflow_service_pb2 as pb
from ponder.workflow.v1 import workflow_service_pb2_grpc as workflow_grpc
from ponder_devstack.fake_apis import FakeApi
from tests.conftest import free_port
from tests.reliability.chaos import (
    Chaos,
    Outcome,
    describe,
    healing_stub,
    run,
    running_chaos,
    spec,
    unique,
)


RUNNING, QUEUED = 2, 2
MiB = 1024 * 1024


@pytest_asyncio.fixture(scope="module")
async def small(
    tmp_path_factory: pytest.TempPathFactory, fake_arxiv: FakeApi, fake_tavily: FakeApi
) -> AsyncIterator[Chaos]:
    """A stack whose gateway runs 2 workflows and queues 2, with /metrics, and no rate limit
    in the way."""
    log_dir: Path = tmp_path_factory.mktemp("overload")
    env = {
        "PONDER_GATEWAY_MAX_RUNNING_WORKFLOWS": str(RUNNING),
        "PONDER_GATEWAY_MAX_QUEUED_WORKFLOWS": str(QUEUED),
        "PONDER_GATEWAY_RATE_LIMIT_PER_SECOND": "0",
    }
    async with running_chaos(log_dir, fake_arxiv, fake_tavily, env, free_port()) as started:
        yield started


@pytest_asyncio.fixture
async def stub(small: Chaos) -> AsyncIterator[workflow_grpc.WorkflowServiceStub]:
    """A stub to the gateway; afterwards the stack is healed."""
    async with healing_stub(small) as gateway:
        yield gateway


async def rest_run(client: httpx.AsyncClient, topic: str) -> httpx.Response:
    """POST /v1/workflows:run."""
    return await client.post(
        "/v1/workflows:run",
        json={
            "kind": "WORKFLOW_KIND_REFLECTION",
            "topic": topic,
            "parameters": {"cachePolicy": "CACHE_POLICY_BYPASS"},  # every one really runs
        },
        timeout=60,
    )


def retry_delay(error: grpc.aio.AioRpcError) -> float:
    """The RetryInfo delay of a failed call, in seconds."""
    status = rpc_status.from_call(error)
    assert status is not None, error
    info = error_details_pb2.RetryInfo()
    assert any(d.Unpack(info) for d in status.details if d.Is(info.DESCRIPTOR)), status
    delay: float = info.retry_delay.ToTimedelta().total_seconds()
    return delay


async def test_beyond_capacity_callers_are_told_when_to_retry(small: Chaos, stub):
    """Twelve workflows at once (six over gRPC, six over REST) on a gateway that runs two and
    queues two: four are admitted and succeed with at most one queue wait of extra latency;
    the other eight get RESOURCE_EXHAUSTED with RetryInfo or 429 with Retry-After; five such
    waves leave the gateway's memory where the first left it."""
    small.model.behaviour.update(latency=0.4)
    solo = await run(
        stub,
        spec(unique("How do language agents use self-reflection?"), cache=pb.CACHE_POLICY_BYPASS),
    )
    assert solo.succeeded, describe([solo])

    async with httpx.AsyncClient(base_url=small.http) as client:

        async def both() -> tuple[list[Outcome], list[httpx.Response]]:
            results = await asyncio.gather(wave_grpc(), wave_rest())
            return results[0], results[1]

        async def wave_grpc() -> list[Outcome]:
            topics = [unique(f"How do language agents use self-reflection? {i}") for i in range(6)]
            calls = [run(stub, spec(topic, cache=pb.CACHE_POLICY_BYPASS)) for topic in topics]
            return list(await asyncio.gather(*calls))

        async def wave_rest() -> list[httpx.Response]:
            topics = [unique(f"How do language agents use self-reflection? {i}") for i in range(6)]
            calls = [rest_run(client, topic) for topic in topics]
            return list(await asyncio.gather(*calls))

        outcomes, responses = await both()
        admitted = [o for o in outcomes if o.succeeded]
        refused = [o for o in outcomes if o.error is not None]
        ok = [r for r in responses if r.status_code == 200]
        limited = [r for r in responses if r.status_code == 429]
        assert len(admitted) + len(ok) == RUNNING + QUEUED, (
            describe(outcomes),
            [(r.status_code, r.text[:200]) for r in responses],
        )
        assert len(refused) + len(limited) == 12 - RUNNING - QUEUED
        for outcome in refused:
            assert outcome.error is not None
            assert outcome.error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert retry_delay(outcome.error) > 0
            assert outcome.seconds < 2, "a refusal must be immediate"
        for response in limited:
            assert int(response.headers["retry-after"]) >= 1
            assert response.json()["code"] == 8  # RESOURCE_EXHAUSTED, google.rpc.Status JSON
        # Whichever path got the slots (gRPC or REST: the arrival order decides).
        slowest = max([o.seconds for o in admitted] + [r.elapsed.total_seconds() for r in ok])
        assert slowest < 2.5 * solo.seconds + 1, (slowest, solo.seconds)

        memory_after_first = small.rss("gateway")
        for _ in range(4):
            outcomes, responses = await both()
            assert (
                sum(o.succeeded for o in outcomes) + sum(r.status_code == 200 for r in responses)
                == RUNNING + QUEUED
            )
        grown = small.rss("gateway") - memory_after_first
        assert grown < 25 * MiB, f"gateway grew {grown / MiB:.1f} MiB over four overload waves"


def gauge(metrics: str, name: str) -> float:
    """The value of an unlabelled Prometheus gauge in a /metrics text."""
    match = re.search(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+]+)$", metrics, re.MULTILINE)
    assert match is not None, f"{name} not in /metrics"
    return float(match.group(1))


async def test_abandoned_watch_streams_leave_no_tasks_or_memory(small: Chaos, stub):
    """A client opens 200 watches on a running workflow and is killed (no goodbye): the
    gateway's task count, seen rising by 200 while they are open, returns to where it was,
    and its memory does not keep what the streams used."""
    small.model.behaviour.update(latency=8.0)  # the workflow stays RUNNING throughout
    created = await stub.CreateWorkflow(
        pb.CreateWorkflowRequest(workflow=spec(unique("retrieval-augmented generation, watched"))),
        timeout=10,
    )
    async with httpx.AsyncClient() as client:

        async def tasks() -> float:
            return gauge((await client.get(small.metrics_url)).text, "ponder_runtime_tasks")

        before, memory_before = await tasks(), small.rss("gateway")
        watcher = await asyncio.create_subprocess_exec(
            sys.executable, str(Path(__file__).with_name("watch_client.py")), small.gateway,
            created.workflow.name, "200", stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            assert watcher.stdout is not None
            line = await asyncio.wait_for(watcher.stdout.readline(), 60)
            assert line.strip() == b"ready"
            during = await tasks()
            assert during >= before + 200, (before, during)
        finally:
            watcher.send_signal(signal.SIGKILL)
            await watcher.communicate()
        deadline = time.monotonic() + 15
        after = await tasks()
        while after > before + 5 and time.monotonic() < deadline:
            await asyncio.sleep(0.25)
            after = await tasks()
        assert after <= before + 5, f"tasks: {before} before, {during} open, {after} after"
    grown = small.rss("gateway") - memory_before
    assert grown < 20 * MiB, f"gateway kept {grown / MiB:.1f} MiB after the watches went away"
    await stub.CancelWorkflow(pb.CancelWorkflowRequest(name=created.workflow.name), timeout=10)
