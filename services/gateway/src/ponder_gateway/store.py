"""Durable workflow records: an embedded SQLite file, written on a dedicated thread."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ponder.workflow.v1 import workflow_service_pb2 as workflow_pb2
from ponder_gateway.principals import DEFAULT_TENANT
from ponder_runtime.sqlite import SqliteFile


_SCHEMA = """
CREATE TABLE IF NOT EXISTS workflows (
    name TEXT PRIMARY KEY,
    create_time INTEGER NOT NULL,
    state INTEGER NOT NULL,
    kind INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS workflows_order ON workflows(create_time DESC, name DESC);
"""
UNFINISHED = (workflow_pb2.WORKFLOW_STATE_PENDING, workflow_pb2.WORKFLOW_STATE_RUNNING)


def _add_tenant_column(db: sqlite3.Connection) -> None:
    """access: the owning tenant, added to files made before tenants existed (their rows
    belong to the default tenant)."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(workflows)")}
    if "tenant" not in columns:
        db.execute(
            f"ALTER TABLE workflows ADD COLUMN tenant TEXT NOT NULL DEFAULT '{DEFAULT_TENANT}'"
        )
    db.execute(
        "CREATE INDEX IF NOT EXISTS workflows_tenant_order "
        "ON workflows(tenant, create_time DESC, name DESC)"
    )


def tenant_of(workflow: workflow_pb2.Workflow) -> str:
    """The tenant owning a record (the default tenant for records older than tenants)."""
    return workflow.tenant or DEFAULT_TENANT


@dataclass(frozen=True, slots=True)
class ListFilter:
    """Which workflows to list: any of these states / kinds (empty = any), of this tenant
    (None = every tenant's)."""

    states: tuple[int, ...] = ()
    kinds: tuple[int, ...] = ()
    tenant: str | None = None


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
        self, where: ListFilter, *, limit: int, after: tuple[int, str] | None
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
        self._file = SqliteFile(path, _SCHEMA, thread_name="workflow-store")
        self._migrated = False

    async def _ready(self) -> None:
        if not self._migrated:
            await self._file.run(_add_tenant_column)
            self._migrated = True

    async def save(self, workflow: workflow_pb2.Workflow) -> None:
        """Insert or replace a workflow record."""
        await self._ready()
        row = (
            workflow.name, _nanos(workflow), int(workflow.state), int(workflow.kind),
            workflow.SerializeToString(), tenant_of(workflow),
        )  # fmt: skip
        await self._file.write(
            "INSERT OR REPLACE INTO workflows (name, create_time, state, kind, data, tenant) "
            "VALUES (?,?,?,?,?,?)",
            row,
        )

    async def get(self, name: str) -> workflow_pb2.Workflow | None:
        """The workflow called `name`, if any."""
        row = await self._file.run(
            lambda db: db.execute("SELECT data FROM workflows WHERE name = ?", (name,)).fetchone()
        )
        return None if row is None else workflow_pb2.Workflow.FromString(row[0])

    async def list(
        self, where: ListFilter, *, limit: int, after: tuple[int, str] | None
    ) -> list[workflow_pb2.Workflow]:
        """Up to `limit` workflows, newest first, strictly after the (create_time, name)
        position `after` (the last item of the previous page)."""
        await self._ready()
        clauses: list[str] = []
        args: list[object] = []
        if where.tenant is not None:
            clauses.append("tenant = ?")
            args.append(where.tenant)
        for column, values in (("state", where.states), ("kind", where.kinds)):
            if values:
                clauses.append(f"{column} IN ({','.join('?' * len(values))})")
                args.extend(values)
        if after is not None:
            clauses.append("(create_time < ? OR (create_time = ? AND name < ?))")
            args.extend([after[0], after[0], after[1]])
        sql = "SELECT data FROM workflows"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
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
