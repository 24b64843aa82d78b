"""The workflow event log on both backends (SQLite file, Redis): numbered from 1 per
workflow whoever appends, read after a number, and followed by a watch to FINISHED."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from ponder.workflow.v1 import workflow_service_pb2 as pb
from ponder_gateway.store import SqliteWorkflowStore
from ponder_gateway.workflows.events import (
    EventLog,
    RedisEventLog,
    SqliteEventLog,
    Wakeups,
    follow,
    make_event,
)
from ponder_gateway.workflows.recorder import StoreSink


@pytest.fixture(params=["sqlite", "redis"])
async def log(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[EventLog]:
    """An empty event log on each backend."""
    if request.param == "sqlite":
        sqlite = SqliteEventLog(tmp_path / "events.sqlite3")
        yield sqlite
        await sqlite.close()
        return
    client = aioredis.from_url(request.getfixturevalue("redis_server"))
    yield RedisEventLog(client, prefix=f"test:{tmp_path.name}")
    await client.aclose()


def workflow(state: int = pb.WORKFLOW_STATE_RUNNING) -> pb.Workflow:
    """A workflow record in `state`."""
    return pb.Workflow(name="workflows/w-1", id="w-1", state=state)  # type: ignore[arg-type]


async def test_appends_are_numbered_and_read_after_a_number(log: EventLog):
    """Two writers (as a worker and a gateway would) append at once: 1..N without gaps;
    `after` and `last` see them in order."""
    step = pb.WorkflowStep(name="research")
    await asyncio.gather(
        *(
            log.append(
                "workflows/w-1", make_event(workflow(), pb.WORKFLOW_EVENT_TYPE_STEP_UPDATED, step)
            )
            for _ in range(6)
        )
    )
    events = await log.after("workflows/w-1", 0)
    assert [e.sequence for e in events] == [1, 2, 3, 4, 5, 6]
    assert [e.sequence for e in await log.after("workflows/w-1", 4)] == [5, 6]
    last = await log.last("workflows/w-1")
    assert last is not None
    assert (last.sequence, last.step.name) == (6, "research")
    assert await log.last("workflows/other") is None


async def test_a_watch_resumes_after_a_number_and_ends_with_finished(log: EventLog):
    """A watch from 0 starts with a snapshot numbered like the last event; one resuming
    after 1 gets events 2.. and ends at FINISHED, appended while it waits."""
    name = "workflows/w-1"
    await log.append(name, make_event(workflow(), pb.WORKFLOW_EVENT_TYPE_STATE_CHANGED))
    await log.append(name, make_event(workflow(), pb.WORKFLOW_EVENT_TYPE_STEP_UPDATED))
    wakeups = Wakeups()

    async def current(_: str) -> pb.Workflow:
        return workflow()

    async def recorded(_: str) -> pb.Workflow | None:
        return workflow()

    first = follow(log, wakeups, name, current, recorded=recorded)
    snapshot = await anext(first)
    assert (snapshot.event_type, snapshot.sequence) == (pb.WORKFLOW_EVENT_TYPE_SNAPSHOT, 2)
    await first.aclose()

    async def finish() -> None:
        await asyncio.sleep(0.1)
        done = workflow(pb.WORKFLOW_STATE_SUCCEEDED)
        await log.append(name, make_event(done, pb.WORKFLOW_EVENT_TYPE_FINISHED))
        wakeups.notify(name, last=True)

    finishing = asyncio.create_task(finish())
    resumed = [
        event
        async for event in follow(log, wakeups, name, current, recorded=recorded, after_sequence=1)
    ]
    await finishing
    assert [(e.sequence, e.event_type) for e in resumed] == [
        (2, pb.WORKFLOW_EVENT_TYPE_STEP_UPDATED),
        (3, pb.WORKFLOW_EVENT_TYPE_FINISHED),
    ]


async def test_an_event_log_outage_does_not_fail_the_workflow(tmp_path: Path, caplog):
    """A log that cannot take an event (Redis away) is logged and skipped: the recorder goes
    on, and this process's watchers are still woken to read the record."""

    class DownLog:
        async def append(self, name: str, event: pb.WatchWorkflowResponse) -> None:
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    store = SqliteWorkflowStore(tmp_path / "records.sqlite3")
    wakeups = Wakeups()
    sink = StoreSink(store, DownLog(), wakeups, watched=True)  # type: ignore[arg-type]
    workflow = pb.Workflow(name="workflows/outage", state=pb.WORKFLOW_STATE_RUNNING)
    before = wakeups.version(workflow.name)
    try:
        await sink.event(workflow, pb.WORKFLOW_EVENT_TYPE_STATE_CHANGED)
        await sink.save(workflow)
        assert (await store.get(workflow.name)) == workflow
    finally:
        await store.close()
    assert wakeups.version(workflow.name) > before
    assert "workflow event not recorded" in caplog.text
