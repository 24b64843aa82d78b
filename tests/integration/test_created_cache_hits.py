"""A created workflow that the gateway's first-level cache answers costs one store write (its
final record: no PENDING record, no events) on SQLite and on Redis, with the local and the
Temporal engine; what a client sees of it (the reply, Get, List, Watch, its webhook) is what
it sees of any finished workflow; it counts against the tenant's workflow budget and takes no
running slot; REFRESH, BYPASS and misses still run (two writes or more).
Writes are counted by thin wrappers of the real stores' save and the event logs' append."""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import redis.asyncio as aioredis
from temporalio.client import Client
from temporalio.service import RPCError

from ponder.type.v1.document_pb2 import SOURCE_KIND_ARXIV
from ponder.workflow.v1 import workflow_service_pb2 as pb
from ponder.workflow.v1 import workflow_service_pb2_grpc as workflow_grpc
from ponder_devstack.fake_apis import FakeApi
from ponder_gateway.redis_state import RedisWorkflowStore
from ponder_gateway.store import SqliteWorkflowStore
from ponder_gateway.wiring import beside
from ponder_gateway.workflows.admission import Admission
from ponder_gateway.workflows.engine_local import LocalEngine
from ponder_gateway.workflows.engine_temporal import TemporalEngine
from ponder_gateway.workflows.events import RedisEventLog, SqliteEventLog
from tests.conftest import InProcessStack
from tests.support.counting import CountingLog, CountingStore, gateway_parts, served
from tests.support.fakes import behaving
from tests.support.gateways import gateway
from tests.temporal_stack import TemporalStack
from tests.webhook_receiver import Receiver


SUCCEEDED = pb.WORKFLOW_STATE_SUCCEEDED
SECRET = "whsec-created-hits-0123456789"


def spec(topic: str, policy: int = pb.CACHE_POLICY_USE) -> pb.Workflow:
    """A research workflow on `topic` with the cache policy."""
    return pb.Workflow(
        kind=pb.WORKFLOW_KIND_RESEARCH,
        topic=topic,
        parameters=pb.WorkflowParameters(cache_policy=policy),  # type: ignore[arg-type]
    )


def fresh_topic() -> str:
    """A topic no other test asks (the cache is shared by the session's stack)."""
    return f"dense passage retrieval for open-domain questions {uuid.uuid4().hex[:8]}"


async def watched(stub: workflow_grpc.WorkflowServiceStub, name: str) -> list[pb.Workflow]:
    """WatchWorkflow to its end: the workflow of each event."""
    events = stub.WatchWorkflow(pb.WatchWorkflowRequest(name=name), timeout=60)
    seen: list[pb.WatchWorkflowResponse] = [event async for event in events]
    return [event.workflow for event in seen]


@pytest.fixture(params=["sqlite", "redis"])
async def records(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[CountingStore, CountingLog]]:
    """A real SQLite or Redis store and event log, each behind a counting wrapper."""
    if request.param == "sqlite":
        path = tmp_path / "workflows.sqlite3"
        store = CountingStore(SqliteWorkflowStore(path))
        log = CountingLog(SqliteEventLog(beside(path, "events")))
        yield store, log
        await store.close()
        await log.close()
        return
    client = aioredis.Redis.from_url(request.getfixturevalue("redis_url"))
    yield CountingStore(RedisWorkflowStore(client)), CountingLog(RedisEventLog(client))
    await client.aclose()


@pytest.fixture
async def local(
    stack: InProcessStack, tmp_path: Path, records: tuple[CountingStore, CountingLog]
) -> AsyncIterator[tuple[workflow_grpc.WorkflowServiceStub, CountingStore, CountingLog]]:
    """The WorkflowService on the local engine over the counted records."""
    store, log = records
    async with gateway_parts(stack, tmp_path) as parts:
        # One running slot: a created cache hit must not wait for it (see below).
        engine = LocalEngine(
            parts.upstreams,
            parts.cache,
            store,
            log,
            parts.settings,
            admission=Admission(max_running=1),
        )
        async with served(engine) as stub:
            yield stub, store, log
        await engine.drain(5.0)


async def test_a_created_cache_hit_is_one_store_write_on_the_local_engine(
    local: tuple[workflow_grpc.WorkflowServiceStub, CountingStore, CountingLog],
):
    """After a run kept its answer, the same topic created is answered SUCCEEDED at once from
    the first level: one save (the final record), no event; Get, List and Watch see it."""
    stub, store, log = local
    topic = fresh_topic()
    first = (
        await stub.RunWorkflow(pb.RunWorkflowRequest(workflow=spec(topic)), timeout=60)
    ).workflow
    assert not first.cache.hit
    store.saved.clear()
    log.appended = 0

    reply = await stub.CreateWorkflow(pb.CreateWorkflowRequest(workflow=spec(topic)), timeout=30)
    created = reply.workflow
    assert created.state == SUCCEEDED
    assert created.cache.hit
    assert created.cache.source_workflow == first.name
    assert created.result == first.result
    assert [step.name for step in created.steps] == ["cache_lookup"]
    assert store.saved == [SUCCEEDED]  # one durable write, before the reply
    assert log.appended == 0

    got = await stub.GetWorkflow(pb.GetWorkflowRequest(name=created.name), timeout=10)
    assert got.workflow == created
    page = await stub.ListWorkflows(pb.ListWorkflowsRequest(page_size=1), timeout=10)
    assert [w.name for w in page.workflows] == [created.name]
    listed = await stub.ListWorkflows(
        pb.ListWorkflowsRequest(filter="state = SUCCEEDED", page_size=1), timeout=10
    )
    assert list(listed.workflows) == [created]
    assert await watched(stub, created.name) == [created]  # its final state, then the end
    assert store.saved == [SUCCEEDED]
    assert log.appended == 0


async def test_a_created_cache_hit_does_not_wait_for_a_running_slot(
    local: tuple[workflow_grpc.WorkflowServiceStub, CountingStore, CountingLog],
    fake_arxiv: FakeApi,
):
    """With the one running slot held by a slow workflow (arXiv answers after 3 s), a created
    cache hit is answered SUCCEEDED while that one still runs: it calls no service."""
    stub, store, _ = local
    topic = fresh_topic()
    await stub.RunWorkflow(pb.RunWorkflowRequest(workflow=spec(topic)), timeout=60)
    slow = spec(fresh_topic(), pb.CACHE_POLICY_BYPASS)
    slow.parameters.sources.append(SOURCE_KIND_ARXIV)
    with behaving(fake_arxiv, latency=3.0):
        running = (await stub.CreateWorkflow(pb.CreateWorkflowRequest(workflow=slow))).workflow
        events = stub.WatchWorkflow(pb.WatchWorkflowRequest(name=running.name), timeout=60)
        async for event in events:
            if event.step.name == "research":  # started: it holds the slot
                break
        events.cancel()
        store.saved.clear()
        created = (
            await stub.CreateWorkflow(pb.CreateWorkflowRequest(workflow=spec(topic)), timeout=30)
        ).workflow
        assert created.state == SUCCEEDED
        assert store.saved == [SUCCEEDED]
        still = await stub.GetWorkflow(pb.GetWorkflowRequest(name=running.name), timeout=10)
        assert still.workflow.state == pb.WORKFLOW_STATE_RUNNING
        ended = await watched(stub, running.name)
    assert ended[-1].state == SUCCEEDED


@pytest.mark.parametrize("policy", [pb.CACHE_POLICY_REFRESH, pb.CACHE_POLICY_BYPASS])
async def test_refresh_bypass_and_a_miss_still_run_when_created(
    local: tuple[workflow_grpc.WorkflowServiceStub, CountingStore, CountingLog], policy: int
):
    """A REFRESH or BYPASS of a remembered topic, and a topic never asked, are created
    PENDING and run in the background: the PENDING record first, then more, and events."""
    stub, store, log = local
    topic = fresh_topic()
    await stub.RunWorkflow(pb.RunWorkflowRequest(workflow=spec(topic)), timeout=60)
    for asked in (spec(topic, policy), spec(fresh_topic())):
        store.saved.clear()
        log.appended = 0
        created = (await stub.CreateWorkflow(pb.CreateWorkflowRequest(workflow=asked))).workflow
        assert created.state == pb.WORKFLOW_STATE_PENDING
        states = await watched(stub, created.name)
        assert states[-1].state == SUCCEEDED
        assert not states[-1].cache.hit
        assert store.saved[0] == pb.WORKFLOW_STATE_PENDING
        assert store.saved[-1] == SUCCEEDED
        assert len(store.saved) >= 2
        assert log.appended > 0


async def test_a_created_cache_hit_is_one_store_write_on_the_temporal_engine(
    stack: InProcessStack, temporal_stack: TemporalStack
):
    """With Temporal, a first-level hit is answered and recorded by the gateway: one save,
    no event, and no Temporal workflow started; a miss still runs on the workers."""
    records = temporal_stack.records
    store = CountingStore(SqliteWorkflowStore(records))
    log = CountingLog(SqliteEventLog(beside(records, "events")))
    async with gateway_parts(stack, records.parent) as parts:
        settings = parts.settings.model_copy(
            update={
                "engine": "temporal",
                "temporal_address": temporal_stack.env["PONDER_TEMPORAL_ADDRESS"],
            }
        )
        connect = functools.partial(Client.connect, settings.temporal_address)
        engine = TemporalEngine(
            connect,
            store,
            log,
            settings,
            admission=Admission(),
            answers=(parts.upstreams, parts.cache),
        )
        await engine.start()
        async with served(engine) as stub:
            topic = fresh_topic()
            run = await stub.RunWorkflow(pb.RunWorkflowRequest(workflow=spec(topic)), timeout=60)
            assert not run.workflow.cache.hit  # ran on a worker, which kept it in the cache
            missed = await stub.CreateWorkflow(
                pb.CreateWorkflowRequest(workflow=spec(fresh_topic())), timeout=30
            )
            assert missed.workflow.state == pb.WORKFLOW_STATE_PENDING
            store.saved.clear()
            log.appended = 0

            created = (
                await stub.CreateWorkflow(
                    pb.CreateWorkflowRequest(workflow=spec(topic)), timeout=30
                )
            ).workflow
            assert created.state == SUCCEEDED
            assert created.cache.hit
            assert created.cache.source_workflow == run.workflow.name
            assert created.result == run.workflow.result
            assert store.saved == [SUCCEEDED]
            assert log.appended == 0
            got = await stub.GetWorkflow(pb.GetWorkflowRequest(name=created.name), timeout=10)
            assert got.workflow == created
            assert await watched(stub, created.name) == [created]
            client = await connect()
            with pytest.raises(RPCError):  # not found: no Temporal workflow of that id
                await client.get_workflow_handle(created.id).describe()
            ended = await watched(stub, missed.workflow.name)
            assert ended[-1].state == SUCCEEDED
        await engine.drain(5.0)


async def test_a_created_cache_hit_fires_its_webhook_and_reads_like_any_workflow(
    stack: InProcessStack, tmp_path: Path
):
    """Through a whole gateway (access guard, REST facade, notifier): a created cache hit
    with a notification target is SUCCEEDED in the reply, its webhook is delivered, and
    Get, List and Watch see it."""
    hooks = Receiver(SECRET).start()
    server = await gateway(
        stack,
        tmp_path,
        webhook_secrets={"hooks": SECRET},
        webhook_allowed_networks=["127.0.0.1/32"],
        rate_limit_burst=1000,
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = workflow_grpc.WorkflowServiceStub(channel)
            topic = fresh_topic()
            await stub.RunWorkflow(pb.RunWorkflowRequest(workflow=spec(topic)), timeout=60)
            asked = spec(topic)
            asked.notification.url = hooks.url
            asked.notification.secret_name = "hooks"
            created = (await stub.CreateWorkflow(pb.CreateWorkflowRequest(workflow=asked))).workflow
            assert created.state == SUCCEEDED
            assert created.cache.hit
            for _ in range(1200):  # the delivery runs in the background
                got = (await stub.GetWorkflow(pb.GetWorkflowRequest(name=created.name))).workflow
                if got.notification_delivery.state == pb.NOTIFICATION_DELIVERY_STATE_DELIVERED:
                    break
                await asyncio.sleep(0.05)
            assert got.notification_delivery.state == pb.NOTIFICATION_DELIVERY_STATE_DELIVERED
            [delivery] = hooks.accepted
            assert delivery.verified
            assert delivery.json["workflow"]["name"] == created.name
            page = await stub.ListWorkflows(pb.ListWorkflowsRequest(page_size=1))
            assert [w.name for w in page.workflows] == [created.name]
            [final] = await watched(stub, created.name)
            assert final.state == SUCCEEDED
            assert final.result == created.result
    finally:
        await server.stop(0)
        hooks.close()


async def test_a_created_cache_hit_counts_against_the_tenants_workflow_budget(
    stack: InProcessStack, tmp_path: Path, fake_arxiv: FakeApi
):
    """With a budget of one workflow per tenant held by a slow one, a created cache hit is
    refused RESOURCE_EXHAUSTED as any workflow is, while an identical create still joins the
    running one (no budget needed); once it ended, the hit is answered."""
    server = await gateway(stack, tmp_path, max_workflows_per_tenant=1, rate_limit_burst=1000)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = workflow_grpc.WorkflowServiceStub(channel)
            topic = fresh_topic()
            await stub.RunWorkflow(pb.RunWorkflowRequest(workflow=spec(topic)), timeout=60)
            slow = spec(fresh_topic(), pb.CACHE_POLICY_BYPASS)
            slow.parameters.sources.append(SOURCE_KIND_ARXIV)
            with behaving(fake_arxiv, latency=3.0):
                request = pb.CreateWorkflowRequest(workflow=slow)
                running = (await stub.CreateWorkflow(request)).workflow
                joined = (await stub.CreateWorkflow(request)).workflow
                assert joined.name == running.name
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await stub.CreateWorkflow(pb.CreateWorkflowRequest(workflow=spec(topic)))
                assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                ended = await watched(stub, running.name)
            assert ended[-1].state == SUCCEEDED
            created = await stub.CreateWorkflow(pb.CreateWorkflowRequest(workflow=spec(topic)))
            assert created.workflow.state == SUCCEEDED
    finally:
        await server.stop(0)
