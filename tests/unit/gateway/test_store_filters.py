"""Both record stores answer ListWorkflows filters alike, and an older SQLite file is migrated."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from ponder.workflow.v1 import workflow_service_pb2 as pb
from ponder_gateway import filters
from ponder_gateway.redis_state import RedisWorkflowStore
from ponder_gateway.store import SqliteWorkflowStore, WorkflowStore


JAN = 1767225600  # 2026-01-01T00:00:00Z
FILTERS = [
    ("state = SUCCEEDED OR kind = REFLECTION", {"0", "2", "3", "5", "8"}),
    ('NOT (kind = RESEARCH) AND topic:"agents"', {"5"}),
    ('create_time >= "2026-01-01T00:00:05Z" AND state != FAILED', {"5", "7", "8", "9"}),
]


def _records() -> list[pb.Workflow]:
    states = ["SUCCEEDED", "FAILED", "RUNNING", "SUCCEEDED", "CANCELLED"]
    kinds = ["RESEARCH", "RESEARCH", "REFLECTION"]
    records = []
    for i in range(10):
        workflow = pb.Workflow(
            name=f"workflows/{i}",
            state=f"WORKFLOW_STATE_{states[i % 5]}",
            kind=f"WORKFLOW_KIND_{kinds[i % 3]}",
            topic="RAG agents" if i == 5 else f"topic {i}",
        )
        workflow.create_time.FromSeconds(JAN + i)
        workflow.update_time.FromSeconds(JAN + i + 1)
        records.append(workflow)
    return records


@pytest.fixture(params=["sqlite", "redis"])
async def store(request, tmp_path: Path) -> AsyncIterator[WorkflowStore]:
    """A SQLite store in a temp file, or a Redis store on the test redis-server."""
    if request.param == "sqlite":
        sqlite_store = SqliteWorkflowStore(tmp_path / "workflows.db")
        yield sqlite_store
        await sqlite_store.close()
        return
    client = aioredis.Redis.from_url(request.getfixturevalue("redis_url"))
    yield RedisWorkflowStore(client)
    await client.aclose()


@pytest.mark.parametrize(("text", "expected"), FILTERS)
async def test_filters_page_through_either_store(store, text, expected):
    """A filter with OR across fields, NOT, topic and time selects the same records on either
    store, newest first, a page of two at a time."""
    for record in _records():
        await store.save(record)
    tree = filters.parse(text)
    seen: list[str] = []
    after = None
    while True:
        page = await store.list(tree, limit=2, after=after)
        seen.extend(w.name.split("/")[1] for w in page.workflows)
        if page.next_after is None:
            break
        after = page.next_after
    assert seen == sorted(expected, reverse=True)


async def test_an_older_sqlite_file_gains_the_filter_columns(tmp_path):
    """A records file written before time and topic filters is migrated on open, its rows
    filled from their records, and then filters on topic find them."""
    path = tmp_path / "old.db"
    old = _records()[5]
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE workflows (name TEXT PRIMARY KEY, create_time INTEGER NOT NULL, "
            "state INTEGER NOT NULL, kind INTEGER NOT NULL, data BLOB NOT NULL)"
        )
        db.execute(
            "INSERT INTO workflows VALUES (?,?,?,?,?)",
            (old.name, old.create_time.ToNanoseconds(), old.state, old.kind,
             old.SerializeToString()),
        )  # fmt: skip
    store = SqliteWorkflowStore(path)
    try:
        found = await store.list(filters.parse('topic:"rag"'), limit=10, after=None)
        assert [w.name for w in found.workflows] == [old.name]
        later = filters.parse('update_time > "2026-01-01T00:00:05Z"')
        assert [w.name for w in (await store.list(later, limit=10, after=None)).workflows] == [
            old.name
        ]
    finally:
        await store.close()
