"""A created workflow that the cache answers costs one store write (its final record: no
PENDING record, no events) on SQLite and on Redis, with the local and the Temporal engine,
whether the gateway's first level holds the answer or only the embedding service's LookupCache
finds it; what a client sees of it (the reply, Get, List, Watch, its webhook) is what it sees
of any finished workflow; it counts against the tenant's workflow budget and takes no running
slot. REFRESH, BYPASS and misses still run (two writes or more); a miss is looked up once,
before it is recorded, and its run takes that lookup over (a hung embedding service holds the
create no longer than CREATE_LOOKUP_SECONDS). With Temporal, a synchronous run the cache
answers starts no Temporal workflow either.
Writes are counted by thin wrappers of the real stores' save and the event logs' append;
LookupCache calls by the embedding service's own server spans."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, NamedTuple

import grpc
import pytest
import redis.asyncio as aioredis
from temporalio.client import Client
from temporalio.service import RPCError

from ponder.embedding.v1 import embedding_service_pb2 as embedding_pb2
from ponder.embedding.v1 import embedding_service_pb2_grpc as embedding_grpc
from ponder.type.v1.document_pb2 import SOURCE_KIND_ARXIV
from ponder.workflow.v1 import workflow_service_pb2 as pb
from ponder.workflow.v1 import workflow_service_pb2_grpc as workflow_grpc
from ponder_devstack.fake_apis import FakeApi
from ponder_gateway.cache import WorkflowCache
from ponder_gateway.redis_state import RedisWorkflowStore
from ponder_gateway.store import SqliteWorkflowStore
from ponder_gateway.wiring import beside
from ponder_gateway.workflows.admission import Admission
from ponder_gateway.workflows.engine import CREATE_LOOKUP_SECONDS
from ponder_gateway.workflows.engine_local import LocalEngine
from ponder_gateway.workflows.engine_temporal import TemporalEngine
from ponder_gateway.workflows.events import RedisEventLog, SqliteEventLog
from tests.conftest import InProcessStack
from tests.support.counting import (
    CountingLog,
    CountingStore,
    gateway_parts,
    lookups_served,
    served,
)
from tests.support.fakes import behaving
from tests.support.gateways import gateway
from tests.support.servers import serving
from tests.temporal_stack import CACHE_SIGNING_KEY, TemporalStack
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


def answered_once(
    workflow: pb.Workflow, source: pb.Workflow, store: CountingStore, log: CountingLog
) -> None:
    """Fails unless `workflow` is `source`'s answer from the cache (SUCCEEDED, its result,
    one cache_lookup step) recorded with one save and no event."""
    assert workflow.state == SUCCEEDED
    assert workflow.cache.hit
    assert workflow.cache.source_workflow == source.name
    assert workflow.result == source.result
    assert [step.name for step in workflow.steps] == ["cache_lookup"]
    assert store.saved == [SUCCEEDED]
    assert log.appended == 0


def counting_from_here(stack: InProcessStack, store: CountingStore, log: CountingLog) -> int:
    """Start the counts again (no save, no event yet); the LookupCache calls served so far."""
    store.saved.clear()
    log.appended = 0
    return lookups_served(stack)


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


class Local(NamedTuple):
    """The WorkflowService on the local engine, its counted records and its semantic cache."""

    stub: workflow_grpc.WorkflowServiceStub
    store: CountingStore
    log: CountingLog
    cache: WorkflowCache


@pytest.fixture
async def local(
    stack: InProcessStack, tmp_path: Path, records: tuple[CountingStore, CountingLog]
) -> AsyncIterator[Local]:
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
            yield Local(stub, store, log, parts.cache)
        await engine.drain(5.0)


@pytest.mark.parametrize("first_level", [True, False], ids=["first-level", "lookupcache-only"])
async def test_a_created_cache_hit_is_one_store_write_on_the_local_engine(
    local: Local, stack: InProcessStack, first_level: bool
):
    """After a run kept its answer, the same topic created is answered SUCCEEDED at once,
    from the first level or, with that emptied (as after a restart, or on another replica),
    from the embedding service's LookupCache, asked before anything is recorded: one save
    (the final record), no event, no LookupCache call or one; Get, List and Watch see it."""
    stub, store, log, cache = local
    topic = fresh_topic()
    first = (
        await stub.RunWorkflow(pb.RunWorkflowRequest(workflow=spec(topic)), timeout=60)
    ).workflow
    assert not first.cache.hit
    if not first_level:
        cache.forget_recent()  # only the embedding service holds the answer now
    asked = counting_from_here(stack, store, log)

    reply = await stub.CreateWorkflow(pb.CreateWorkflowRequest(workflow=spec(topic)), timeout=30)
    created = reply.workflow
    answered_once(created, first, store, log)  # one durable write, before the reply
    assert created.steps[0].message.startswith("hit (similarity 1.000")
    assert lookups_served(stack) - asked == (0 if first_level else 1)

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
    local: Local,
    fake_arxiv: FakeApi,
):
    """With the one running slot held by a slow workflow (arXiv answers after 3 s), a created
    cache hit is answered SUCCEEDED while that one still runs: it calls no service."""
    stub, store, _, _ = local
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
    local: Local, stack: InProcessStack, policy: int
):
    """A REFRESH or BYPASS of a remembered topic, and a topic never asked, are created
    PENDING and run in the background: the PENDING record first, then more, and events;
    REFRESH and BYPASS never ask LookupCache, the miss once."""
    stub, store, log, _ = local
    topic = fresh_topic()
    await stub.RunWorkflow(pb.RunWorkflowRequest(workflow=spec(topic)), timeout=60)
    for asked, lookups in ((spec(topic, policy), 0), (spec(fresh_topic()), 1)):
        before = counting_from_here(stack, store, log)
        created = (await stub.CreateWorkflow(pb.CreateWorkflowRequest(workflow=asked))).workflow
        assert created.state == pb.WORKFLOW_STATE_PENDING
        states = await watched(stub, created.name)
        assert states[-1].state == SUCCEEDED
        assert not states[-1].cache.hit
        assert store.saved[0] == pb.WORKFLOW_STATE_PENDING
        assert store.saved[-1] == SUCCEEDED
        assert len(store.saved) >= 2
        assert log.appended > 0
        assert lookups_served(stack) - before == lookups


async def test_a_created_miss_is_looked_up_once_and_recorded_as_before(
    local: Local, stack: InProcessStack
):
    """A created topic never asked is looked up once, before its PENDING record; its run
    takes that lookup over as its cache_lookup step (the miss and why, in the step and the
    workflow's `cache` field) and does not ask again."""
    stub, store, log, _ = local
    asked = lookups_served(stack)
    store.saved.clear()
    created = (
        await stub.CreateWorkflow(pb.CreateWorkflowRequest(workflow=spec(fresh_topic())))
    ).workflow
    assert created.state == pb.WORKFLOW_STATE_PENDING
    assert not created.steps
    assert not created.HasField("cache")
    events = await watched(stub, created.name)
    final = events[-1]
    assert final.state == SUCCEEDED
    assert lookups_served(stack) - asked == 1
    assert [step.name for step in final.steps] == [
        "cache_lookup", "research", "rank", "summarize", "cache_store",
    ]  # fmt: skip
    lookup = final.steps[0]
    assert lookup.state == pb.STEP_STATE_SUCCEEDED
    assert lookup.message.startswith("miss ("), lookup.message
    assert lookup.start_time.ToNanoseconds() >= created.create_time.ToNanoseconds()
    assert not final.cache.hit
    assert final.cache.namespace.startswith("workflow/research/v1/")
    assert final.cache.verdict not in (
        pb.CACHE_VERDICT_UNSPECIFIED, pb.CACHE_VERDICT_EXACT, pb.CACHE_VERDICT_ACCEPTED,
    )  # fmt: skip
    assert store.saved[0] == pb.WORKFLOW_STATE_PENDING
    assert store.saved[-1] == SUCCEEDED
    assert log.appended > 0


class SilentLookups(embedding_grpc.EmbeddingServiceServicer):
    """An embedding service whose LookupCache never answers (it notes the time each call
    was given); its other methods are unimplemented (ranking and storing fail at once)."""

    def __init__(self) -> None:
        self.given: list[float | None] = []

    async def LookupCache(
        self, request: embedding_pb2.LookupCacheRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> embedding_pb2.LookupCacheResponse:
        """Wait until the caller gives up."""
        self.given.append(context.time_remaining())
        await asyncio.Event().wait()
        return embedding_pb2.LookupCacheResponse()


async def test_a_hung_embedding_service_holds_a_create_for_its_short_lookup_only(
    stack: InProcessStack, tmp_path: Path
):
    """With LookupCache hung and the lookup's own timeout at 3 s, a create's lookup is given
    CREATE_LOOKUP_SECONDS (1 s) and the create is answered PENDING all the same; its run
    asks again with the lookup's own 3 s, and its cache_lookup step says the embedding
    service was unavailable, as before."""
    silent = SilentLookups()
    register = functools.partial(embedding_grpc.add_EmbeddingServiceServicer_to_server, silent)
    store = SqliteWorkflowStore(tmp_path / "workflows.sqlite3")
    log = SqliteEventLog(tmp_path / "events.sqlite3")
    async with (
        serving(["ponder.embedding.v1.EmbeddingService"], register) as embedding,
        gateway_parts(
            stack,
            tmp_path,
            embedding_addr=f"127.0.0.1:{embedding.port}",
            rank_timeout_seconds=3.0,
        ) as parts,
    ):
        engine = LocalEngine(
            parts.upstreams, parts.cache, store, log, parts.settings, admission=Admission()
        )
        async with served(engine) as stub:
            created = (
                await stub.CreateWorkflow(
                    pb.CreateWorkflowRequest(workflow=spec(fresh_topic())), timeout=20
                )
            ).workflow
            assert created.state == pb.WORKFLOW_STATE_PENDING
            [final] = (await watched(stub, created.name))[-1:]
        await engine.drain(5.0)
    [for_the_create, for_the_run] = silent.given
    # What each call was given (gRPC rounds the timeout it sends up a little).
    assert CREATE_LOOKUP_SECONDS == 1.0
    assert for_the_create is not None
    assert 0 < for_the_create <= 1.1
    assert for_the_run is not None
    assert 2.0 < for_the_run <= 3.1
    assert final.state == SUCCEEDED  # ranked in research's order, not cached
    lookup = final.steps[0]
    assert (lookup.name, lookup.state) == ("cache_lookup", pb.STEP_STATE_FAILED)
    assert lookup.message.startswith("embedding service unavailable (DEADLINE_EXCEEDED"), lookup
    assert any(warning.startswith("cache: ") for warning in final.warnings)


class OnTemporal(NamedTuple):
    """The WorkflowService on the Temporal engine (the session's workers), its counted
    records, its semantic cache and a Temporal client."""

    stub: workflow_grpc.WorkflowServiceStub
    store: CountingStore
    log: CountingLog
    cache: WorkflowCache
    client: Client


@contextlib.asynccontextmanager
async def on_temporal(
    stack: InProcessStack, temporal_stack: TemporalStack
) -> AsyncIterator[OnTemporal]:
    """A Temporal engine over the workers' records (SQLite), answering cache hits itself
    with the cache signing key the workers use."""
    records = temporal_stack.records
    store = CountingStore(SqliteWorkflowStore(records))
    log = CountingLog(SqliteEventLog(beside(records, "events")))
    async with gateway_parts(stack, records.parent, cache_signing_key=CACHE_SIGNING_KEY) as parts:
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
            yield OnTemporal(stub, store, log, parts.cache, await connect())
        await engine.drain(5.0)


async def started_no_temporal_workflow(client: Client, workflow: pb.Workflow) -> None:
    """Fails unless Temporal has no workflow of the workflow's id."""
    with pytest.raises(RPCError):  # not found
        await client.get_workflow_handle(workflow.id).describe()


async def test_a_created_cache_hit_is_one_store_write_on_the_temporal_engine(
    stack: InProcessStack, temporal_stack: TemporalStack
):
    """With Temporal, a created hit is answered and recorded by the gateway, from its first
    level or from LookupCache alone: one save, no event, and no Temporal workflow started; a
    miss is looked up once (by the gateway; the workers take its lookup over) and runs on
    the workers."""
    async with on_temporal(stack, temporal_stack) as (stub, store, log, cache, client):
        topic = fresh_topic()
        run = await stub.RunWorkflow(pb.RunWorkflowRequest(workflow=spec(topic)), timeout=60)
        assert not run.workflow.cache.hit  # ran on a worker, which kept it in the cache
        asked = lookups_served(stack)
        missed = await stub.CreateWorkflow(
            pb.CreateWorkflowRequest(workflow=spec(fresh_topic())), timeout=30
        )
        assert missed.workflow.state == pb.WORKFLOW_STATE_PENDING
        ended = await watched(stub, missed.workflow.name)
        assert ended[-1].state == SUCCEEDED
        assert lookups_served(stack) - asked == 1
        assert ended[-1].steps[0].message.startswith("miss ("), ended[-1].steps[0]
        assert ended[-1].cache.verdict != pb.CACHE_VERDICT_UNSPECIFIED

        for first_level in (True, False):
            if not first_level:
                cache.forget_recent()  # only the embedding service holds the answer now
            asked = counting_from_here(stack, store, log)
            created = (
                await stub.CreateWorkflow(
                    pb.CreateWorkflowRequest(workflow=spec(topic)), timeout=30
                )
            ).workflow
            answered_once(created, run.workflow, store, log)
            assert lookups_served(stack) - asked == (0 if first_level else 1)
            got = await stub.GetWorkflow(pb.GetWorkflowRequest(name=created.name), timeout=10)
            assert got.workflow == created
            assert await watched(stub, created.name) == [created]
            await started_no_temporal_workflow(client, created)


async def test_a_synchronous_cache_hit_starts_no_temporal_workflow(
    stack: InProcessStack, temporal_stack: TemporalStack
):
    """With Temporal, a synchronous run the cache answers (its first level, or LookupCache
    alone) is answered and recorded by the gateway: one save, no Temporal workflow; a miss
    is looked up once, by the gateway, and runs on a worker."""
    async with on_temporal(stack, temporal_stack) as (stub, store, log, cache, client):
        topic = fresh_topic()
        asked = lookups_served(stack)
        run = (
            await stub.RunWorkflow(pb.RunWorkflowRequest(workflow=spec(topic)), timeout=60)
        ).workflow
        assert not run.cache.hit
        assert lookups_served(stack) - asked == 1
        assert run.steps[0].message.startswith("miss ("), run.steps[0]
        await client.get_workflow_handle(run.id).describe()  # it ran on Temporal

        for first_level in (True, False):
            if not first_level:
                cache.forget_recent()
            asked = counting_from_here(stack, store, log)
            again = (
                await stub.RunWorkflow(pb.RunWorkflowRequest(workflow=spec(topic)), timeout=60)
            ).workflow
            answered_once(again, run, store, log)
            assert lookups_served(stack) - asked == (0 if first_level else 1)
            got = await stub.GetWorkflow(pb.GetWorkflowRequest(name=again.name), timeout=10)
            assert got.workflow == again
            await started_no_temporal_workflow(client, again)


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
