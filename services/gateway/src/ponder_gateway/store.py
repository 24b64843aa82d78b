"""Durable workflow records: an embedded SQLite file, written on a dedicated thread.

Small records: the result lives apart in `workflow_results`, once per distinct content (a cache
hit refers to the result of the workflow it reuses; record_codec.py), and a result goes with the
last record that refers to it (a trigger). Listing walks one index per filter (record_plan.py):

| filter part                 | index (with a tenant / admin: every tenant)          |
|-----------------------------|------------------------------------------------------|
| none, create_time range     | workflows_tenant_order / workflows_order             |
| state = X (+ time range)    | workflows_tenant_state / workflows_state             |
| kind = X (+ time range)     | workflows_tenant_kind / workflows_kind               |
| anything else               | checked on at most SCAN_LIMIT entries of the above   |

Retention walks `workflows_finished` (finished records by update_time); the webhook sweep walks
`workflows_delivery_due` (records whose completion webhook is still to be delivered, by when
the next attempt is due), so neither reads records that have nothing for it."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

from ponder.workflow.v1 import workflow_service_pb2 as workflow_pb2
from ponder_gateway.filters import Filter, to_sql
from ponder_gateway.principals import DEFAULT_TENANT
from ponder_gateway.record_codec import RecordCodec, decode
from ponder_gateway.record_plan import SCAN_LIMIT, Page, Plan, Position, plan
from ponder_gateway.webhooks.state import due_at
from ponder_runtime import AlreadyExistsError
from ponder_runtime.sqlite import SqliteFile


UNFINISHED = (workflow_pb2.WORKFLOW_STATE_PENDING, workflow_pb2.WORKFLOW_STATE_RUNNING)
FINISHED = (
    workflow_pb2.WORKFLOW_STATE_SUCCEEDED,
    workflow_pb2.WORKFLOW_STATE_FAILED,
    workflow_pb2.WORKFLOW_STATE_CANCELLED,
)
_FINISHED_SQL = "(" + ", ".join(str(int(state)) for state in FINISHED) + ")"
_UNFINISHED_SQL = "(" + ", ".join(str(int(state)) for state in UNFINISHED) + ")"
_COLUMNS = (
    "name, create_time, state, kind, data, update_time, topic, tenant, codec, result_hash,"
    " delivery_due"
)
# Deliveries are retried for at most a week (PONDER_GATEWAY_WEBHOOK_RETRY_SECONDS' bound): an
# older file's records that ended before that have none left to index.
_LONGEST_DELIVERY_NS = 7 * 24 * 3600 * 10**9

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS workflows (
    name TEXT PRIMARY KEY,
    create_time INTEGER NOT NULL,
    state INTEGER NOT NULL,
    kind INTEGER NOT NULL,
    data BLOB NOT NULL,
    update_time INTEGER NOT NULL DEFAULT 0,
    topic TEXT NOT NULL DEFAULT '',
    tenant TEXT NOT NULL DEFAULT 'default',
    codec INTEGER NOT NULL DEFAULT 0,
    result_hash BLOB,
    delivery_due INTEGER
);
CREATE TABLE IF NOT EXISTS workflow_results (
    hash BLOB PRIMARY KEY,
    data BLOB NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS workflows_order ON workflows(create_time DESC, name DESC);
CREATE INDEX IF NOT EXISTS workflows_tenant_order ON workflows(tenant, create_time DESC, name DESC);
CREATE INDEX IF NOT EXISTS workflows_tenant_state
    ON workflows(tenant, state, create_time DESC, name DESC);
CREATE INDEX IF NOT EXISTS workflows_tenant_kind
    ON workflows(tenant, kind, create_time DESC, name DESC);
CREATE INDEX IF NOT EXISTS workflows_result ON workflows(result_hash)
    WHERE result_hash IS NOT NULL;
CREATE INDEX IF NOT EXISTS workflows_finished ON workflows(update_time)
    WHERE state IN {_FINISHED_SQL};
CREATE INDEX IF NOT EXISTS workflows_unfinished ON workflows(create_time)
    WHERE state IN {_UNFINISHED_SQL};
CREATE INDEX IF NOT EXISTS workflows_delivery_due ON workflows(delivery_due, name)
    WHERE delivery_due IS NOT NULL;
CREATE TRIGGER IF NOT EXISTS workflow_result_released AFTER DELETE ON workflows
    WHEN OLD.result_hash IS NOT NULL BEGIN
    DELETE FROM workflow_results WHERE hash = OLD.result_hash
        AND NOT EXISTS (SELECT 1 FROM workflows WHERE result_hash = OLD.result_hash);
END;
CREATE TRIGGER IF NOT EXISTS workflow_result_replaced AFTER UPDATE OF result_hash ON workflows
    WHEN OLD.result_hash IS NOT NULL AND OLD.result_hash IS NOT NEW.result_hash BEGIN
    DELETE FROM workflow_results WHERE hash = OLD.result_hash
        AND NOT EXISTS (SELECT 1 FROM workflows WHERE result_hash = OLD.result_hash);
END;
"""
_FIELDS = {
    "state": "w.state",
    "kind": "w.kind",
    "create_time": "w.create_time",
    "update_time": "w.update_time",
    "topic": "w.topic",
    "tenant": "w.tenant",
}
_INDEXES = {
    "order": "workflows_order",
    "tenant_order": "workflows_tenant_order",
    "tenant_state": "workflows_tenant_state",
    "tenant_kind": "workflows_tenant_kind",
}
_UPSERT = (
    f"INSERT INTO workflows ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(name) DO"
    " UPDATE SET create_time = excluded.create_time, state = excluded.state,"
    " kind = excluded.kind, data = excluded.data, update_time = excluded.update_time,"
    " topic = excluded.topic, tenant = excluded.tenant, codec = excluded.codec,"
    " result_hash = excluded.result_hash, delivery_due = excluded.delivery_due"
)
_INSERT = f"INSERT INTO workflows ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
_KEEP_RESULT = "INSERT OR IGNORE INTO workflow_results (hash, data) VALUES (?, ?)"
_READ = "SELECT w.data, w.codec, r.data FROM workflows w"
_JOIN = " LEFT JOIN workflow_results r ON r.hash = w.result_hash"
_NEWEST_FIRST = " ORDER BY w.create_time DESC, w.name DESC"


def _migrate(db: sqlite3.Connection) -> None:
    """Bring a file written by an older version up to date: the filter columns (time and
    topic, filled from the records), the owning tenant (older rows belong to the default
    tenant), the codec and result reference (older rows keep their result inline) and when a
    webhook delivery is due (filled from the records that ended within a week)."""
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
    if "codec" not in columns:
        db.execute("ALTER TABLE workflows ADD COLUMN codec INTEGER NOT NULL DEFAULT 0")
        db.execute("ALTER TABLE workflows ADD COLUMN result_hash BLOB")
    if "delivery_due" not in columns:
        db.execute("ALTER TABLE workflows ADD COLUMN delivery_due INTEGER")
        recent = time.time_ns() - _LONGEST_DELIVERY_NS
        rows = db.execute(
            f"SELECT name, data, codec FROM workflows WHERE state IN {_FINISHED_SQL}"
            " AND update_time >= ?",
            (recent,),
        ).fetchall()
        for name, data, codec in rows:
            due = due_at(decode(data, codec, None))
            if due is not None:
                db.execute("UPDATE workflows SET delivery_due = ? WHERE name = ?", (due, name))
    db.execute("COMMIT")


def tenant_of(workflow: workflow_pb2.Workflow) -> str:
    """The tenant owning a record (the default tenant for records older than tenants)."""
    return workflow.tenant or DEFAULT_TENANT


def position_of(workflow: workflow_pb2.Workflow) -> Position:
    """The record's place in the newest-first order."""
    return int(workflow.create_time.ToNanoseconds()), workflow.name


class WorkflowStore(Protocol):
    """Where workflow records live: SQLite (one gateway) or Redis (replicas share them)."""

    async def save(self, workflow: workflow_pb2.Workflow) -> None:
        """Insert or replace a record; durable on return."""
        ...

    async def insert(self, workflow: workflow_pb2.Workflow) -> None:
        """Record a new workflow; AlreadyExistsError when one of that name is recorded (two
        creations of one caller-chosen id, on one replica or two); durable on return."""
        ...

    async def get(self, name: str) -> workflow_pb2.Workflow | None:
        """A record by name."""
        ...

    async def list(self, where: Filter, *, limit: int, after: Position | None) -> Page:
        """A page of up to `limit` records, newest first, after a (create_time ns, name)
        position, and where the next page starts."""
        ...

    async def unfinished(self) -> Sequence[workflow_pb2.Workflow]:
        """Records still PENDING or RUNNING."""
        ...

    async def delete(self, name: str) -> bool:
        """Delete a finished record (its result too when no other record refers to it);
        False when there is no finished record of that name."""
        ...

    async def due(
        self, before_ns: int, *, limit: int, after: Position | None = None
    ) -> Sequence[workflow_pb2.Workflow]:
        """Up to `limit` records whose webhook delivery is open and was due at `before_ns`
        or earlier, soonest first, after a (due ns, name) position."""
        ...

    async def purge(self, before_ns: int, *, limit: int) -> Sequence[str]:
        """Delete up to `limit` finished records last updated before `before_ns`; their
        names."""
        ...

    async def close(self) -> None:
        """Release the storage."""
        ...


def _where(found: Plan, after: Position | None) -> tuple[list[str], list[Any]]:
    """The conditions the plan's index answers, and the keyset position."""
    clauses: list[str] = []
    args: list[Any] = []
    for column, value in (("tenant", found.tenant), ("state", found.state), ("kind", found.kind)):
        if value is not None:
            clauses.append(f"w.{column} = ?")
            args.append(value)
    if found.low is not None:
        clauses.append("w.create_time >= ?")
        args.append(found.low)
    if found.high is not None:
        clauses.append("w.create_time <= ?")
        args.append(found.high)
    if after is not None:
        clauses.append("w.create_time <= ? AND (w.create_time < ? OR w.name < ?)")
        args.extend([after[0], after[0], after[1]])
    return clauses or ["1"], args


def _list(db: sqlite3.Connection, where: Filter, limit: int, after: Position | None) -> Page:
    found = plan(where)
    if found.empty:
        return Page()
    index = f" INDEXED BY {_INDEXES[found.index]}"
    clauses, args = _where(found, after)
    boundary: Position | None = None
    if not found.exact:  # the rest is checked on at most SCAN_LIMIT entries
        row = db.execute(
            f"SELECT w.create_time, w.name FROM workflows w{index} WHERE "
            + " AND ".join(clauses)
            + _NEWEST_FIRST
            + f" LIMIT 1 OFFSET {SCAN_LIMIT - 1}",
            args,
        ).fetchone()
        if row is not None:
            boundary = (int(row[0]), str(row[1]))
            clauses.append("w.create_time >= ? AND (w.create_time > ? OR w.name >= ?)")
            args.extend([boundary[0], boundary[0], boundary[1]])
        rest, rest_args = to_sql(found.rest, _FIELDS)
        clauses.append(rest)
        args.extend(rest_args)
    rows = db.execute(
        f"{_READ}{index}{_JOIN} WHERE " + " AND ".join(clauses) + _NEWEST_FIRST + " LIMIT ?",
        [*args, limit + 1],
    ).fetchall()
    workflows = [decode(data, codec, result) for data, codec, result in rows[:limit]]
    if len(rows) > limit:
        return Page(workflows, position_of(workflows[-1]))
    return Page(workflows, boundary)


class SqliteWorkflowStore:
    """Workflows by name, newest first; each save is committed (with its group) before it
    returns: WAL with synchronous=FULL (ponder_runtime.sqlite)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._file = SqliteFile(path, _SCHEMA, thread_name="workflow-store", migrate=_migrate)
        self._codec = RecordCodec()

    def _row(self, workflow: workflow_pb2.Workflow) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        """The record's columns, and its result's (hash, bytes) (both None: no result)."""
        encoded = self._codec.encode(workflow)
        return (
            workflow.name, position_of(workflow)[0], int(workflow.state), int(workflow.kind),
            encoded.data, int(workflow.update_time.ToNanoseconds()), workflow.topic.lower(),
            tenant_of(workflow), encoded.codec, encoded.result_hash, due_at(workflow),
        ), (encoded.result_hash, encoded.result)  # fmt: skip

    async def save(self, workflow: workflow_pb2.Workflow) -> None:
        """Insert or replace a workflow record (and its result, unless already kept): one
        write, committed with the other writes that arrive meanwhile (group commit)."""
        await self._write(workflow, _UPSERT)

    async def insert(self, workflow: workflow_pb2.Workflow) -> None:
        """Record a new workflow as `save` does; AlreadyExistsError when its name is taken
        (the primary key refuses it; nothing of it is written)."""
        try:
            await self._write(workflow, _INSERT)
        except sqlite3.IntegrityError as exc:
            raise AlreadyExistsError(
                f"{workflow.name} already exists", metadata={"name": workflow.name}
            ) from exc

    async def _write(self, workflow: workflow_pb2.Workflow, statement: str) -> None:
        row, result = self._row(workflow)
        statements: list[tuple[str, Sequence[Any]]] = [(statement, row)]
        if result[0] is not None:
            statements.insert(0, (_KEEP_RESULT, result))
        await self._file.write_all(statements)

    async def save_many(self, workflows: Iterable[workflow_pb2.Workflow]) -> None:
        """Insert many records in one transaction (bulk loads and benchmarks)."""
        rows = [self._row(workflow) for workflow in workflows]

        def insert(db: sqlite3.Connection) -> None:
            db.execute("BEGIN IMMEDIATE")
            db.executemany(
                "INSERT OR IGNORE INTO workflow_results (hash, data) VALUES (?, ?)",
                [result for _, result in rows if result[0] is not None],
            )
            db.executemany(
                f"INSERT OR REPLACE INTO workflows ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                [row for row, _ in rows],
            )
            db.execute("COMMIT")

        await self._file.run(insert)

    async def get(self, name: str) -> workflow_pb2.Workflow | None:
        """The workflow called `name`, if any."""
        row = await self._file.run(
            lambda db: db.execute(f"{_READ}{_JOIN} WHERE w.name = ?", (name,)).fetchone()
        )
        return None if row is None else decode(row[0], row[1], row[2])

    async def list(self, where: Filter, *, limit: int, after: Position | None) -> Page:
        """Up to `limit` workflows, newest first, strictly after the (create_time, name)
        position `after`, from the filter's index (record_plan.py)."""
        return await self._file.run(lambda db: _list(db, where, limit, after))

    async def unfinished(self) -> Sequence[workflow_pb2.Workflow]:
        """Workflows recorded as PENDING or RUNNING."""
        rows = await self._file.run(
            lambda db: db.execute(
                f"{_READ} INDEXED BY workflows_unfinished{_JOIN} WHERE w.state IN {_UNFINISHED_SQL}"
            ).fetchall()
        )
        return [decode(data, codec, result) for data, codec, result in rows]

    async def delete(self, name: str) -> bool:
        """Delete the finished record `name` (its result goes with its last reference)."""

        def delete(db: sqlite3.Connection) -> bool:
            done = db.execute(
                f"DELETE FROM workflows WHERE name = ? AND state IN {_FINISHED_SQL}", (name,)
            )
            return done.rowcount > 0

        return await self._file.run(delete)

    async def due(
        self, before_ns: int, *, limit: int, after: Position | None = None
    ) -> Sequence[workflow_pb2.Workflow]:
        """Records with an open webhook delivery due by `before_ns`, soonest first, after the
        (due ns, name) position (the `workflows_delivery_due` index)."""
        low, name = after if after is not None else (-1, "")
        rows = await self._file.run(
            lambda db: db.execute(
                f"{_READ} INDEXED BY workflows_delivery_due{_JOIN}"
                " WHERE w.delivery_due IS NOT NULL AND w.delivery_due <= ?"
                " AND (w.delivery_due > ? OR (w.delivery_due = ? AND w.name > ?))"
                " ORDER BY w.delivery_due, w.name LIMIT ?",
                (before_ns, low, low, name, limit),
            ).fetchall()
        )
        return [decode(data, codec, result) for data, codec, result in rows]

    async def purge(self, before_ns: int, *, limit: int) -> Sequence[str]:
        """Delete up to `limit` finished records last updated before `before_ns`."""

        def purge(db: sqlite3.Connection) -> list[str]:
            db.execute("BEGIN IMMEDIATE")
            try:
                names = [
                    str(row[0])
                    for row in db.execute(
                        "SELECT name FROM workflows INDEXED BY workflows_finished "
                        f"WHERE state IN {_FINISHED_SQL} AND update_time < ? LIMIT ?",
                        (before_ns, limit),
                    )
                ]
                db.executemany("DELETE FROM workflows WHERE name = ?", [(n,) for n in names])
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            return names

        return await self._file.run(purge)

    async def close(self) -> None:
        """Close the file and the thread."""
        await self._file.close()
