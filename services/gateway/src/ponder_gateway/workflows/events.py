"""The event history of each workflow, numbered 1, 2, 3, ... per workflow, kept where the
records are (SQLite or Redis) so that any process can append and any replica can follow.

A watcher reads the events after the last sequence it has seen; `Wakeups` wakes the watchers
of this process at once when this process appends, and the others poll (other replicas, or a
Temporal worker, append too)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Protocol

import redis.asyncio as aioredis

from ponder.workflow.v1 import workflow_service_pb2 as workflow_pb2
from ponder_runtime.protobuf import timestamp
from ponder_runtime.sqlite import SqliteFile


Event = workflow_pb2.WatchWorkflowResponse

FINAL_STATES = (
    workflow_pb2.WORKFLOW_STATE_SUCCEEDED,
    workflow_pb2.WORKFLOW_STATE_FAILED,
    workflow_pb2.WORKFLOW_STATE_CANCELLED,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS workflow_events (
    name TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (name, sequence)
);
"""
# The next number is taken inside the insert: atomic, whichever process appends.
_APPEND = (
    "INSERT INTO workflow_events SELECT ?, COALESCE(MAX(sequence), 0) + 1, ? "
    "FROM workflow_events WHERE name = ?"
)


def make_event(
    workflow: workflow_pb2.Workflow,
    event_type: workflow_pb2.WorkflowEventType,
    step: workflow_pb2.WorkflowStep | None = None,
) -> Event:
    """An event carrying the workflow after it (its sequence is given by the log)."""
    event = Event(event_type=event_type, event_time=timestamp())
    event.workflow.CopyFrom(workflow)
    if step is not None:
        event.step.CopyFrom(step)
    return event


class EventLog(Protocol):
    """Append-only, numbered events per workflow."""

    async def append(self, name: str, event: Event) -> None:
        """Add an event; it gets the workflow's next sequence number."""
        ...

    async def after(self, name: str, sequence: int) -> list[Event]:
        """The events numbered above `sequence`, in order."""
        ...

    async def last(self, name: str) -> Event | None:
        """The latest event, if any."""
        ...

    async def delete(self, names: Sequence[str]) -> None:
        """Forget the events of these workflows (deleted or purged)."""
        ...

    async def close(self) -> None:
        """Release the storage."""
        ...


class SqliteEventLog:
    """Events in a SQLite file beside the records' (WAL: a worker process may append)."""

    def __init__(self, path: Path) -> None:
        self._file = SqliteFile(path, _SCHEMA, thread_name="workflow-events")

    async def append(self, name: str, event: Event) -> None:
        """Insert with the next number for `name`."""
        await self._file.write(_APPEND, (name, event.SerializeToString(), name))

    async def after(self, name: str, sequence: int) -> list[Event]:
        """Events of `name` above `sequence`."""
        rows = await self._file.run(
            lambda db: db.execute(
                "SELECT sequence, data FROM workflow_events WHERE name = ? AND sequence > ? "
                "ORDER BY sequence",
                (name, sequence),
            ).fetchall()
        )
        return [_numbered(data, number) for number, data in rows]

    async def last(self, name: str) -> Event | None:
        """The highest-numbered event of `name`."""
        row = await self._file.run(
            lambda db: db.execute(
                "SELECT sequence, data FROM workflow_events WHERE name = ? "
                "ORDER BY sequence DESC LIMIT 1",
                (name,),
            ).fetchone()
        )
        return None if row is None else _numbered(row[1], row[0])

    async def delete(self, names: Sequence[str]) -> None:
        """Delete their rows (one transaction, through the primary key)."""
        if not names:
            return

        def delete(db: sqlite3.Connection) -> None:
            db.execute("BEGIN IMMEDIATE")
            db.executemany("DELETE FROM workflow_events WHERE name = ?", [(n,) for n in names])
            db.execute("COMMIT")

        await self._file.run(delete)

    async def close(self) -> None:
        """Close the file."""
        await self._file.close()


class RedisEventLog:
    """Events in one Redis list per workflow (RPUSH numbers them atomically); a finished
    workflow's list expires after `retention_seconds`."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str = "ponder:gateway",
        retention_seconds: int = 24 * 3600,
    ) -> None:
        self._redis = client
        self._prefix = prefix
        self._retention = retention_seconds

    def _key(self, name: str) -> str:
        return f"{self._prefix}:ev:{name}"

    async def append(self, name: str, event: Event) -> None:
        """RPUSH; the list's length is the event's number."""
        key = self._key(name)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.rpush(key, event.SerializeToString())
            if event.event_type == workflow_pb2.WORKFLOW_EVENT_TYPE_FINISHED:
                pipe.expire(key, self._retention)
            await pipe.execute()

    async def after(self, name: str, sequence: int) -> list[Event]:
        """LRANGE from index `sequence`."""
        items = await self._redis.lrange(self._key(name), sequence, -1)
        return [_numbered(data, sequence + i + 1) for i, data in enumerate(items)]

    async def last(self, name: str) -> Event | None:
        """The list's last item."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.llen(self._key(name))
            pipe.lindex(self._key(name), -1)
            length, data = await pipe.execute()
        return None if data is None else _numbered(data, int(length))

    async def delete(self, names: Sequence[str]) -> None:
        """DEL their lists."""
        if names:
            await self._redis.delete(*(self._key(name) for name in names))

    async def close(self) -> None:
        """Nothing to flush."""


def _numbered(data: object, sequence: int) -> Event:
    raw = data if isinstance(data, bytes) else str(data).encode()
    event = Event.FromString(raw)
    event.sequence = sequence
    return event


class Wakeups:
    """Wakes this process's watchers of a workflow when this process appends to its log. A
    watcher takes `version(name)` before it reads the log and passes it to `wait`, so an
    append in between is never missed."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}
        self._versions: dict[str, int] = {}

    def version(self, name: str) -> int:
        """How many appends for `name` were notified (0 once it finished)."""
        return self._versions.get(name, 0)

    def notify(self, name: str, *, last: bool = False) -> None:
        """Something was appended for `name` (`last`: its FINISHED event)."""
        if last:
            self._versions.pop(name, None)
        else:
            self._versions[name] = self.version(name) + 1
        event = self._events.pop(name, None)
        if event is not None:
            event.set()

    async def wait(self, name: str, since: int, timeout: float) -> None:
        """Until an append here for `name` after `since`, or `timeout` (appends elsewhere)."""
        if self.version(name) != since:
            return
        event = self._events.setdefault(name, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)


async def follow(
    log: EventLog,
    wakeups: Wakeups,
    name: str,
    current: Callable[[str], Awaitable[workflow_pb2.Workflow]],
    *,
    recorded: Callable[[str], Awaitable[workflow_pb2.Workflow | None]],
    after_sequence: int = 0,
    poll_seconds: Callable[[str], float] = lambda _: 0.25,
) -> AsyncGenerator[Event, None]:
    """A watch: without `after_sequence`, a SNAPSHOT first (numbered like the last event it
    includes, 0 before any); then every event numbered above it, until FINISHED.

    `current(name)` reads the workflow (NotFoundError when there is none), `recorded(name)` its
    durable record (a live workflow may look final before its end is recorded); `poll_seconds(name)`
    is how long to wait for an append here before reading the log again. A workflow that
    reached a final state without a FINISHED event (a synchronous run, or one resolved after
    its process stopped) ends the watch with a FINISHED event made from its record."""
    workflow = await current(name)
    if after_sequence <= 0:
        latest = await log.last(name)
        snapshot = Event(event_type=workflow_pb2.WORKFLOW_EVENT_TYPE_SNAPSHOT)
        snapshot.event_time.CopyFrom(timestamp())
        if latest is not None and latest.workflow.update_time.ToNanoseconds() >= (
            workflow.update_time.ToNanoseconds()
        ):
            snapshot.workflow.CopyFrom(latest.workflow)
        else:
            snapshot.workflow.CopyFrom(workflow)
        snapshot.sequence = 0 if latest is None else latest.sequence
        yield snapshot
        if latest is not None and latest.event_type == workflow_pb2.WORKFLOW_EVENT_TYPE_FINISHED:
            return
        if latest is None and workflow.state in FINAL_STATES:
            return
        after_sequence = snapshot.sequence
    while True:
        seen = wakeups.version(name)
        events = await log.after(name, after_sequence)
        for event in events:
            after_sequence = event.sequence
            yield event
            if event.event_type == workflow_pb2.WORKFLOW_EVENT_TYPE_FINISHED:
                return
        if not events:
            stored = await recorded(name)
            if (
                stored is not None
                and stored.state in FINAL_STATES
                and not await log.after(name, after_sequence)
            ):
                workflow = stored
                # Final without a FINISHED event (yet: it follows the final record, as the
                # last event, so it gets this very number).
                ended = make_event(workflow, workflow_pb2.WORKFLOW_EVENT_TYPE_FINISHED)
                ended.sequence = after_sequence + 1
                yield ended
                return
            await wakeups.wait(name, seen, poll_seconds(name))
