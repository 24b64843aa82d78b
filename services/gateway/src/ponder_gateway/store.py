"""Durable workflow records: an embedded SQLite file, written on a dedicated thread."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from ponder.workflow.v1 import workflow_service_pb2 as workflow_pb2
from ponder_gateway.filters import Filter, to_sql
from ponder_gateway.principals import DEFAULT_TENANT
from ponder_runtime.sqlite import SqliteFile


_SCHEMA = """
CREATE TABLE IF NOT EXISTS workflows (
    name TEXT PRIMARY KEY,
    create_time INTEGER NOT NULL,
    state INTEGER NOT NULL,
    kind INTEGER NOT NULL,
    data BLOB NOT NULL,
    update_time INTEGER NOT NULL DEFAULT 0,
    topic TEXT NOT NULL DEFAULT '',
    tenant TEXT NOT NULL DEFAULT 'default'
);
CREATE INDEX IF NOT EXISTS workflows_order ON workflows(create_time DESC, name DESC);
CREATE INDEX IF NOT EXISTS workflows_tenant_order ON workflows(tenant, create_time DESC, name DESC);
"""
_COLUMNS = {
    "state": "state",
    "kind": "kind",
    "create_time": "create_time",
    "update_time": "update_time",
    "topic": "topic",
    "tenant": "tenant",
}
UNFINISHED = (workflow_pb2.WORKFLOW_STATE_PENDING, workflow_pb2.WORKFLOW_STATE_RUNNING)


def _migrate(db: sqlite3.Connection) -> None:
    """Bring a file written by an older version up to date: the filter columns (time and
    topic, filled from the records) and the owning tenant (older rows belong to the default
    tenant)."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(workflows)")}
    if not columns:
        return  # a new file: the schema creates everything
    db.execute("BEGIN IMMEDIATE")
    if "tenant" not in columns:
        db.execute(
            f"ALTER TABLE workflows ADD COLUMN tenant TEXT NOT NULL DEFAULT '{DEFAULT_TENANT}'"
        )
    if "topic" not in columns:
        db.execute("ALTER TABLE workflows ADD COLUMN update_time INTEGER NOT NULL DEFAULT 0")
        db.execute("ALTER TABLE workflows ADD COLUMN topic TEXT NOT NULL DEFAULT ''")
        for name, data in db.execute("SELECT name, data FROM workflows").fetchall():
            record = workflow_pb2.Workflow.FromString(data)
            db.execute(
                "UPDATE workflows SET update_time = ?, topic = ? WHERE name = ?",
                (record.update_time.ToNanoseconds(), record.topic.lower(), name),
            )
    db.execute("COMMIT")


def tenant_of(workflow: workflow_pb2.Workflow) -> str:
    """The tenant owning a record (the default tenant for records older than tenants)."""
    return workflow.tenant or DEFAULT_TENANT


def _nanos(workflow: workflow_pb2.Workflow) -> int:
    return int(workflow.create_time.ToNanoseconds())


class WorkflowStore(Protocol):
    """Where workflow records live: SQLite (one gateway) or Redis (replicas share them)."""

    async def save(self, workflow: workflow_pb2.Workflow) -> None:
        """Insert or replace a record; durable on return."""
        ...

    async def get(self, name: str) -> workflow_pb2.Workflow | None:
        """A record by name."""
        ...

    async def list(
        self, where: Filter, *, limit: int, after: tuple[int, str] | None
    ) -> list[workflow_pb2.Workflow]:
        """A page of records, newest first, after a (create_time ns, name) position."""
        ...

    async def unfinished(self) -> Sequence[workflow_pb2.Workflow]:
        """Records still PENDING or RUNNING."""
        ...

    async def close(self) -> None:
        """Release the storage."""
        ...


class SqliteWorkflowStore:
    """Workflows by name, newest first; each save is committed before it returns."""

    def __init__(self, path: Path) -> None:
        self._file = SqliteFile(path, _SCHEMA, thread_name="workflow-store", migrate=_migrate)

    async def save(self, workflow: workflow_pb2.Workflow) -> None:
        """Insert or replace a workflow record."""
        row = (
            workflow.name, _nanos(workflow), int(workflow.state), int(workflow.kind),
            workflow.SerializeToString(), int(workflow.update_time.ToNanoseconds()),
            workflow.topic.lower(), tenant_of(workflow),
        )  # fmt: skip
        await self._file.write(
            "INSERT OR REPLACE INTO workflows (name, create_time, state, kind, data, update_time,"
            " topic, tenant) VALUES (?,?,?,?,?,?,?,?)",
            row,
        )

    async def get(self, name: str) -> workflow_pb2.Workflow | None:
        """The workflow called `name`, if any."""
        row = await self._file.run(
            lambda db: db.execute("SELECT data FROM workflows WHERE name = ?", (name,)).fetchone()
        )
        return None if row is None else workflow_pb2.Workflow.FromString(row[0])

    async def list(
        self, where: Filter, *, limit: int, after: tuple[int, str] | None
    ) -> list[workflow_pb2.Workflow]:
        """Up to `limit` workflows, newest first, strictly after the (create_time, name)
        position `after` (the last item of the previous page)."""
        condition, args = to_sql(where, _COLUMNS)
        clauses = [condition]
        if after is not None:
            clauses.append("(create_time < ? OR (create_time = ? AND name < ?))")
            args.extend([after[0], after[0], after[1]])
        sql = "SELECT data FROM workflows WHERE " + " AND ".join(clauses)
        sql += " ORDER BY create_time DESC, name DESC LIMIT ?"
        args.append(limit)
        rows = await self._file.run(lambda db: db.execute(sql, args).fetchall())
        return [workflow_pb2.Workflow.FromString(row[0]) for row in rows]

    async def unfinished(self) -> Sequence[workflow_pb2.Workflow]:
        """Workflows recorded as PENDING or RUNNING."""
        rows = await self._file.run(
            lambda db: db.execute(
                "SELECT data FROM workflows WHERE state IN (?, ?)", UNFINISHED
            ).fetchall()
        )
        return [workflow_pb2.Workflow.FromString(row[0]) for row in rows]

    async def close(self) -> None:
        """Close the file and the thread."""
        await self._file.close()
