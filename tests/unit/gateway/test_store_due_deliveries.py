"""The stores' index of open webhook deliveries: the sweep reads only records with a delivery
still to make, soonest first, on SQLite and Redis, including records saved before the index."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from ponder.workflow.v1 import workflow_service_pb2 as pb
from ponder_gateway.redis_state import RedisWorkflowStore
from ponder_gateway.store import SqliteWorkflowStore
from ponder_gateway.webhooks.state import due_at, mark_ended


SECOND = 10**9
DAY = 86400


def _ended(name: str, ended: int, *, hooked: bool = True) -> pb.Workflow:
    """A SUCCEEDED workflow that ended at `ended` (s), its webhook due then when `hooked`."""
    workflow = pb.Workflow(name=f"workflows/{name}", id=name, topic=f"topic {name}")
    workflow.state = pb.WORKFLOW_STATE_SUCCEEDED
    workflow.result.text = f"answer of {name}"
    workflow.create_time.FromSeconds(ended - 5)
    workflow.end_time.FromSeconds(ended)
    workflow.update_time.FromSeconds(ended)
    if hooked:
        workflow.notification.url = "https://hooks.example.com/ponder"
        mark_ended(workflow, workflow.end_time)
    return workflow


def _names(records: Sequence[pb.Workflow]) -> list[str]:
    return [record.id for record in records]


@pytest.fixture(params=["sqlite", "redis"])
async def store(request, tmp_path: Path) -> AsyncIterator[SqliteWorkflowStore | RedisWorkflowStore]:
    """A SQLite store in a temp file, or a Redis store on the emptied test redis-server."""
    if request.param == "sqlite":
        records: SqliteWorkflowStore | RedisWorkflowStore = SqliteWorkflowStore(
            tmp_path / "workflows.sqlite3"
        )
        yield records
        await records.close()
        return
    client = aioredis.Redis.from_url(request.getfixturevalue("redis_url"))
    records = RedisWorkflowStore(client)
    yield records
    await records.close()
    await client.aclose()


async def test_only_open_deliveries_due_by_the_time_come_back_soonest_first(
    store: SqliteWorkflowStore | RedisWorkflowStore,
) -> None:
    """Open deliveries due by the bound, soonest first, paged by (due, name); a delivered one,
    one without a target, a running one and one due later never; a delivery that closes or a
    record deleted leaves the index."""
    now = int(time.time())
    delivered = _ended("delivered", now - 50)
    delivered.notification_delivery.state = pb.NOTIFICATION_DELIVERY_STATE_DELIVERED
    running = pb.Workflow(name="workflows/running", id="running", state=pb.WORKFLOW_STATE_RUNNING)
    running.notification.url = "https://hooks.example.com/ponder"
    running.create_time.FromSeconds(now - 60)
    for record in (
        _ended("late", now - 10),
        _ended("early", now - 40),
        _ended("plain", now - 30, hooked=False),
        _ended("later", now + 100),
        delivered,
        running,
    ):
        await store.save(record)
    bound = now * SECOND
    assert _names(await store.due(bound, limit=10)) == ["early", "late"]
    first = await store.due(bound, limit=1)
    assert _names(first) == ["early"]
    after = (due_at(first[0]) or 0, first[0].name)
    assert _names(await store.due(bound, limit=1, after=after)) == ["late"]
    assert (await store.due(bound, limit=1))[0].result.text == "answer of early"  # whole
    closed = _ended("early", now - 40)
    closed.notification_delivery.state = pb.NOTIFICATION_DELIVERY_STATE_FAILED
    await store.save(closed)
    assert _names(await store.due(bound, limit=10)) == ["late"]
    assert await store.delete("workflows/late")
    assert _names(await store.due((now + 200) * SECOND, limit=10)) == ["later"]


async def test_an_older_sqlite_file_gains_the_index_of_open_deliveries(tmp_path: Path) -> None:
    """A records file written before the index is migrated on open: its open deliveries of the
    last week are indexed from the records (older ones have none left to make)."""
    path = tmp_path / "old.sqlite3"
    now = int(time.time())
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE workflows (name TEXT PRIMARY KEY, create_time INTEGER NOT NULL, "
            "state INTEGER NOT NULL, kind INTEGER NOT NULL, data BLOB NOT NULL, "
            "update_time INTEGER NOT NULL DEFAULT 0, topic TEXT NOT NULL DEFAULT '', "
            "tenant TEXT NOT NULL DEFAULT 'default', codec INTEGER NOT NULL DEFAULT 0, "
            "result_hash BLOB)"
        )
        for record in (
            _ended("recent", now - 60),
            _ended("quiet", now - 30, hooked=False),
            _ended("ancient", now - 8 * DAY),
        ):
            db.execute(
                "INSERT INTO workflows (name, create_time, state, kind, data, update_time) "
                "VALUES (?,?,?,?,?,?)",
                (record.name, record.create_time.ToNanoseconds(), record.state, record.kind,
                 record.SerializeToString(), record.update_time.ToNanoseconds()),
            )  # fmt: skip
    store = SqliteWorkflowStore(path)
    try:
        assert _names(await store.due(now * SECOND, limit=10)) == ["recent"]
        assert (await store.get("workflows/recent")) == _ended("recent", now - 60)
    finally:
        await store.close()


async def test_redis_records_saved_before_the_index_are_indexed_once(redis_url: str) -> None:
    """Records saved before the index (no due set, no marker) are indexed at the first `due`
    call, those that ended within a week; the marker stops a second pass."""
    client = aioredis.Redis.from_url(redis_url)
    now = int(time.time())
    try:
        store = RedisWorkflowStore(client)
        for record in (
            _ended("recent", now - 60),
            _ended("quiet", now - 30, hooked=False),
            _ended("ancient", now - 8 * DAY),
        ):
            await store.save(record)
        await client.delete("ponder:gateway:due", "ponder:gateway:due:indexed")  # older layout
        upgraded = RedisWorkflowStore(client)
        assert _names(await upgraded.due(now * SECOND, limit=10)) == ["recent"]
        assert await upgraded.index_due() == 0  # once per store
    finally:
        await client.aclose()
