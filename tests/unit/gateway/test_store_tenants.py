"""Workflow records know their tenant: an older SQLite file gains the column (its rows are the
default tenant's), and both stores list one tenant's records only."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import redis.asyncio as aioredis

from ponder.workflow.v1 import workflow_service_pb2 as pb
from ponder_gateway.filters import EVERYTHING, Owner
from ponder_gateway.redis_state import RedisWorkflowStore
from ponder_gateway.store import SqliteWorkflowStore, WorkflowStore


_OLD_SCHEMA = """
CREATE TABLE workflows (
    name TEXT PRIMARY KEY,
    create_time INTEGER NOT NULL,
    state INTEGER NOT NULL,
    kind INTEGER NOT NULL,
    data BLOB NOT NULL
);
"""


def _workflow(name: str, tenant: str, seconds: int) -> pb.Workflow:
    workflow = pb.Workflow(name=f"workflows/{name}", tenant=tenant, topic=name)
    workflow.create_time.FromSeconds(seconds)
    return workflow


async def _names(store: WorkflowStore, tenant: str | None) -> list[str]:
    where = EVERYTHING if tenant is None else Owner(tenant)
    page = await store.list(where, limit=10, after=None)
    return [w.name for w in page.workflows]


async def test_an_older_sqlite_file_gains_the_tenant_column(tmp_path: Path) -> None:
    """A file written before tenants: its record is listed for the default tenant only, new
    records are listed for their own tenant, and no filter lists them all."""
    path = tmp_path / "workflows.sqlite3"
    old = _workflow("before-tenants", "", 1)
    with sqlite3.connect(path) as db:
        db.executescript(_OLD_SCHEMA)
        db.execute(
            "INSERT INTO workflows VALUES (?,?,?,?,?)",
            (old.name, 1_000_000_000, 0, 0, old.SerializeToString()),
        )
    store = SqliteWorkflowStore(path)
    try:
        await store.save(_workflow("of-a", "a", 2))
        assert await _names(store, "default") == ["workflows/before-tenants"]
        assert await _names(store, "a") == ["workflows/of-a"]
        assert await _names(store, "b") == []
        assert await _names(store, None) == ["workflows/of-a", "workflows/before-tenants"]
    finally:
        await store.close()
    reopened = SqliteWorkflowStore(path)  # the column is not added twice
    try:
        assert await _names(reopened, "a") == ["workflows/of-a"]
    finally:
        await reopened.close()


async def test_redis_records_are_listed_per_tenant(redis_url: str) -> None:
    """Shared records: each tenant lists its own; a record without a tenant is the default
    tenant's."""
    client = aioredis.from_url(redis_url)
    store = RedisWorkflowStore(client)
    try:
        for workflow in (_workflow("old", "", 1), _workflow("of-a", "a", 2)):
            await store.save(workflow)
        assert await _names(store, "a") == ["workflows/of-a"]
        assert await _names(store, "default") == ["workflows/old"]
        assert await _names(store, None) == ["workflows/of-a", "workflows/old"]
    finally:
        await client.aclose()
