"""Records at scale on both stores: results stored once and shared by cache hits, deletion and
retention that keep a result while a record refers to it, indexed listing with every filter
kind and keyset page tokens that stay right under inserts, and the bounded scan."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from ponder.workflow.v1 import workflow_service_pb2 as pb
from ponder_gateway import filters
from ponder_gateway.filters import All, Owner
from ponder_gateway.record_plan import REDIS_SCAN_LIMIT, SCAN_LIMIT, plan
from ponder_gateway.redis_state import RedisWorkflowStore
from ponder_gateway.retention import Retention
from ponder_gateway.settings import GatewaySettings
from ponder_gateway.store import SqliteWorkflowStore
from ponder_gateway.workflows.events import RedisEventLog, SqliteEventLog, make_event
from ponder_runtime import SettingsError, load_settings


JAN = 1767225600  # 2026-01-01T00:00:00Z
STATES = ["SUCCEEDED", "FAILED", "RUNNING", "SUCCEEDED", "CANCELLED"]
KINDS = ["RESEARCH", "REFLECTION", "RESEARCH_REFLECTION"]


def _result() -> pb.WorkflowResult:
    text = "Self-reflection lets a language agent critique and revise its answer. " * 60
    return pb.WorkflowResult(text=text, score=8.5, model="fake-model", iterations=[])


def _record(i: int, *, tenant: str = "default", state: str | None = None) -> pb.Workflow:
    workflow = pb.Workflow(
        name=f"workflows/w{i:05d}",
        state=f"WORKFLOW_STATE_{state or STATES[i % 5]}",
        kind=f"WORKFLOW_KIND_{KINDS[i % 3]}",
        topic="RAG agents" if i % 7 == 0 else f"topic {i}",
        tenant=tenant,
    )
    workflow.create_time.FromSeconds(JAN + i)
    workflow.update_time.FromSeconds(JAN + i + 1)
    return workflow


def _source_and_hit() -> tuple[pb.Workflow, pb.Workflow]:
    source = _record(1, state="SUCCEEDED")
    source.result.CopyFrom(_result())
    hit = _record(2, state="SUCCEEDED")
    hit.result.CopyFrom(_result())
    hit.cache.CopyFrom(pb.CacheInfo(hit=True, similarity=1.0, source_workflow=source.name))
    hit.steps.add(name="cache_lookup", state=pb.STEP_STATE_SUCCEEDED, message="hit (1.000)")
    return source, hit


class Stores:
    """A store of one kind with what a test needs to look inside it."""

    def __init__(self, kind: str, tmp_path: Path, redis_url: str | None) -> None:
        self.kind = kind
        self.path = tmp_path / "workflows.sqlite3"
        self.client = aioredis.Redis.from_url(redis_url) if redis_url else None
        if self.client is not None:
            self.store: SqliteWorkflowStore | RedisWorkflowStore = RedisWorkflowStore(self.client)
            self.log: SqliteEventLog | RedisEventLog = RedisEventLog(self.client)
        else:
            self.store = SqliteWorkflowStore(self.path)
            self.log = SqliteEventLog(tmp_path / "events.sqlite3")

    async def results(self) -> int:
        """How many distinct results are stored."""
        if self.client is not None:
            return len([k async for k in self.client.scan_iter("ponder:gateway:res:*")])
        with sqlite3.connect(self.path) as db:
            return int(db.execute("SELECT COUNT(*) FROM workflow_results").fetchone()[0])

    async def record_bytes(self, name: str) -> int:
        """The stored size of a record without its shared result."""
        if self.client is not None:
            return int(await self.client.hstrlen(f"ponder:gateway:rec:{name}", "d"))
        with sqlite3.connect(self.path) as db:
            row = db.execute("SELECT length(data) FROM workflows WHERE name = ?", (name,))
            return int(row.fetchone()[0])

    async def close(self) -> None:
        """Close the store (and the client)."""
        await self.store.close()
        await self.log.close()
        if self.client is not None:
            await self.client.aclose()


@pytest.fixture(params=["sqlite", "redis"])
async def stores(request, tmp_path: Path) -> AsyncIterator[Stores]:
    """A SQLite store in a temp file, or a Redis store on the test redis-server (emptied)."""
    url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    found = Stores(request.param, tmp_path, url)
    yield found
    await found.close()


async def test_a_cache_hit_refers_to_the_result_it_reuses(stores: Stores):
    """The source and a cache hit with the same result: one result stored, the hit's record
    under 1 KB, and both read back whole."""
    source, hit = _source_and_hit()
    await stores.store.save(source)
    await stores.store.save(hit)
    assert await stores.results() == 1
    assert await stores.record_bytes(hit.name) <= 1024
    assert await stores.store.get(hit.name) == hit
    assert await stores.store.get(source.name) == source


async def test_a_shared_result_lives_until_its_last_reference_goes(stores: Stores):
    """Deleting the source keeps the result the hit refers to; deleting the hit frees it."""
    source, hit = _source_and_hit()
    await stores.store.save(source)
    await stores.store.save(hit)
    assert await stores.store.delete(source.name)
    assert await stores.store.get(source.name) is None
    assert await stores.results() == 1
    found = await stores.store.get(hit.name)
    assert found is not None
    assert found.result == _result()
    assert await stores.store.delete(hit.name)
    assert await stores.results() == 0
    assert not await stores.store.delete(hit.name)  # gone: nothing to delete


async def test_an_unfinished_record_is_not_deleted(stores: Stores):
    """A RUNNING record stays (the API answers FAILED_PRECONDITION before it gets here)."""
    running = _record(2, state="RUNNING")
    await stores.store.save(running)
    assert not await stores.store.delete(running.name)
    assert await stores.store.get(running.name) == running


async def test_retention_purges_old_finished_records_and_their_events(stores: Stores):
    """With an injected clock, a sweep purges the finished records last updated before the
    retention period, in batches, with their events and results; running and recent ones
    stay, and the purged count is a metric."""
    old = [_record(i) for i in range(10)]  # updated JAN+1 .. JAN+10
    for workflow in old:
        workflow.result.CopyFrom(_result())
        await stores.store.save(workflow)
        await stores.log.append(
            workflow.name, make_event(workflow, pb.WORKFLOW_EVENT_TYPE_STATE_CHANGED)
        )
    reader = InMemoryMetricReader()
    retention = Retention(
        stores.store,
        stores.log,
        keep=timedelta(seconds=5),
        batch=3,
        meter=MeterProvider(metric_readers=[reader]).get_meter("test"),
        now=lambda: JAN + 11.5,  # cutoff JAN+6.5: records updated at JAN+1..JAN+6 are due
    )
    purged = await retention.sweep()
    due = {w.name for w in old[:6] if w.state != pb.WORKFLOW_STATE_RUNNING}
    assert purged == len(due)
    for workflow in old:
        stored = await stores.store.get(workflow.name)
        assert (stored is None) == (workflow.name in due)
        assert bool(await stores.log.after(workflow.name, 0)) == (workflow.name not in due)
    assert await stores.results() == 1  # still referred to by the records kept
    assert await retention.sweep() == 0
    data = reader.get_metrics_data()
    assert data is not None
    points = [
        getattr(point, "value", None)
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == "ponder.workflow.purged"
        for point in metric.data.data_points
    ]
    assert points == [len(due)]


FILTER_CASES = [
    ("", "tenant_order"),
    ("state = SUCCEEDED", "tenant_state"),
    ("kind = RESEARCH", "tenant_kind"),
    (
        'create_time >= "2026-01-01T00:00:10Z" AND create_time < "2026-01-01T00:00:30Z"',
        "tenant_order",
    ),
    ("state = FAILED AND kind = REFLECTION", "tenant_state"),
    ('topic:"rag"', "tenant_order"),
    ("state = RUNNING OR kind = RESEARCH", "tenant_order"),
    ("NOT state = SUCCEEDED", "tenant_order"),
    ('update_time > "2026-01-01T00:00:20Z"', "tenant_order"),
    ("state != CANCELLED AND kind = REFLECTION", "tenant_kind"),
]


@pytest.mark.parametrize(("text", "index"), FILTER_CASES)
async def test_each_filter_pages_right_under_inserts(stores: Stores, text: str, index: str):
    """Every filter kind, scoped to a tenant, walks its index and pages three at a time with
    keyset tokens: newer records inserted between pages (and another tenant's) never shift
    or repeat a page, and the pages hold exactly the matching records, newest first."""
    originals = [_record(i) for i in range(40)]
    await stores.store.save_many(originals)
    await stores.store.save_many(_record(i, tenant="other") for i in range(40, 50))
    where = All((Owner("default"), filters.parse(text)))
    assert plan(where).index == index
    expected = [w.name for w in reversed(originals) if filters.matches(where, w)]
    seen: list[str] = []
    after = None
    for round_ in range(100):
        page = await stores.store.list(where, limit=3, after=after)
        seen.extend(w.name for w in page.workflows)
        if page.next_after is None:
            break
        after = page.next_after
        await stores.store.save(_record(1000 + round_))  # newer than every original
    assert seen == expected


async def test_a_filter_no_index_answers_scans_a_bounded_number(stores: Stores):
    """With more records than a page may examine and a topic filter matching only the
    oldest, the first pages come back empty with a token (each scan bounded), and following
    the tokens finds the match, then ends."""
    records = [_record(i) for i in range(SCAN_LIMIT + 50)]
    for workflow in records:
        workflow.topic = "needle" if workflow is records[0] else "hay"
    await stores.store.save_many(records)
    where = filters.parse('topic:"needle"')
    bound = SCAN_LIMIT if stores.kind == "sqlite" else REDIS_SCAN_LIMIT
    found: list[str] = []
    pages = 0
    after = None
    while True:
        page = await stores.store.list(where, limit=10, after=after)
        pages += 1
        found.extend(w.name for w in page.workflows)
        if page.next_after is None:
            break
        assert not page.workflows  # short pages: the scan stopped at its bound
        after = page.next_after
    assert found == [records[0].name]
    assert pages == -(-len(records) // bound)  # ceil: one page per bound of entries


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30d", timedelta(days=30)),
        ("12h", timedelta(hours=12)),
        ("90m", timedelta(minutes=90)),
        ("45s", timedelta(seconds=45)),
        ("3600", timedelta(hours=1)),
        ("P30D", timedelta(days=30)),
        ("0", timedelta(0)),
    ],
)
def test_the_retention_setting_reads_durations(monkeypatch, text: str, expected: timedelta):
    """PONDER_GATEWAY_RETENTION takes 30d, 12h, 90m, 45s, seconds or ISO 8601."""
    monkeypatch.setenv("PONDER_GATEWAY_RETENTION", text)
    assert load_settings(GatewaySettings).retention == expected


def test_a_bad_retention_is_a_settings_error_naming_the_variable(monkeypatch):
    """A retention that is not a duration stops the gateway at start, naming the variable."""
    monkeypatch.setenv("PONDER_GATEWAY_RETENTION", "soon")
    with pytest.raises(SettingsError, match="PONDER_GATEWAY_RETENTION"):
        load_settings(GatewaySettings)
    monkeypatch.delenv("PONDER_GATEWAY_RETENTION")
    assert load_settings(GatewaySettings).retention == timedelta(days=30)


def test_the_temporal_engine_needs_a_shared_cache_signing_key(monkeypatch) -> None:
    """PONDER_GATEWAY_ENGINE=temporal without PONDER_GATEWAY_CACHE_SIGNING_KEY stops a gateway
    or worker at start, naming both; with a key it loads."""
    monkeypatch.setenv("PONDER_GATEWAY_ENGINE", "temporal")
    monkeypatch.delenv("PONDER_GATEWAY_CACHE_SIGNING_KEY", raising=False)
    with pytest.raises(SettingsError, match=r"PONDER_GATEWAY_ENGINE.*CACHE_SIGNING_KEY"):
        load_settings(GatewaySettings)
    monkeypatch.setenv("PONDER_GATEWAY_CACHE_SIGNING_KEY", "k1:" + "s" * 32)
    assert load_settings(GatewaySettings).engine == "temporal"


async def test_redis_records_of_the_older_layout_are_upgraded(redis_url: str):
    """A record written as a plain key (the layout before indexed records) is moved at start
    (the first `unfinished`, as recovery calls it): listed, read, deletable; its old key and
    the old order set are gone."""
    client = aioredis.Redis.from_url(redis_url)
    old = _record(3, state="SUCCEEDED")
    old.result.CopyFrom(_result())
    await client.set(f"ponder:gateway:wf:{old.name}", old.SerializeToString())
    await client.zadd("ponder:gateway:order", {old.name: 1})
    store = RedisWorkflowStore(client)
    try:
        assert await store.unfinished() == []
        page = await store.list(Owner("default"), limit=10, after=None)
        assert [w.name for w in page.workflows] == [old.name]
        assert await store.get(old.name) == old
        assert not await client.exists(f"ponder:gateway:wf:{old.name}", "ponder:gateway:order")
        assert await store.delete(old.name)
    finally:
        await client.aclose()
