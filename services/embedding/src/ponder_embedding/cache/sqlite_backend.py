"""The default cache backend: one embedded SQLite file (WAL), written on a dedicated thread."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ponder_embedding.cache.entries import CacheChange, CacheEntry
from ponder_runtime.sqlite import SqliteFile


_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY,
    namespace TEXT NOT NULL,
    text TEXT NOT NULL,
    payload BLOB NOT NULL,
    payload_type TEXT NOT NULL,
    vector BLOB NOT NULL,
    create_time REAL NOT NULL,
    expire_time REAL NOT NULL,
    hit_count INTEGER NOT NULL DEFAULT 0,
    last_access REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_namespace ON entries(namespace);
CREATE INDEX IF NOT EXISTS entries_expire_time ON entries(expire_time);
"""
_COLUMNS = (
    "key, namespace, text, payload, payload_type, vector, create_time, expire_time, "
    "hit_count, last_access"
)
# Loading leaves payloads on disk: they are read on a hit.
_LOAD_COLUMNS = _COLUMNS.replace("payload,", "NULL,", 1)


def _row_to_entry(row: tuple[object, ...]) -> CacheEntry:
    key, namespace, text, payload, payload_type, vector, created, expires, hits, access = row
    assert isinstance(vector, bytes)
    return CacheEntry(
        key=str(key),
        namespace=str(namespace),
        text=str(text),
        payload=bytes(payload) if isinstance(payload, bytes | bytearray | memoryview) else None,
        payload_type=str(payload_type),
        vector=np.frombuffer(vector, dtype="<f4").astype(np.float32),
        create_time=float(created),  # type: ignore[arg-type]
        expire_time=float(expires),  # type: ignore[arg-type]
        hit_count=int(hits),  # type: ignore[call-overload]
        last_access=float(access),  # type: ignore[arg-type]
    )


class SqliteBackend:
    """Entries in a SQLite file. Every write is committed with synchronous=FULL before it
    returns, so a stored entry survives SIGKILL and power loss."""

    def __init__(self, path: Path) -> None:
        self._file = SqliteFile(path, _SCHEMA, thread_name="cache-sqlite")

    async def load_all(self, now: float) -> list[CacheEntry]:
        """Unexpired entries; expired ones are deleted on the way."""

        def load(db: sqlite3.Connection) -> list[CacheEntry]:
            db.execute("DELETE FROM entries WHERE expire_time <= ?", (now,))
            rows = db.execute(
                f"SELECT {_LOAD_COLUMNS} FROM entries ORDER BY last_access"
            ).fetchall()
            return [_row_to_entry(row) for row in rows]

        return await self._file.run(load)

    async def put(self, entry: CacheEntry) -> None:
        """Insert or replace, committed before returning."""
        values = (
            entry.key, entry.namespace, entry.text, entry.payload, entry.payload_type,
            entry.vector.astype("<f4").tobytes(), entry.create_time, entry.expire_time,
            entry.hit_count, entry.last_access,
        )  # fmt: skip
        await self._file.run(
            lambda db: db.execute(
                f"INSERT OR REPLACE INTO entries ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)", values
            )
        )

    async def get(self, key: str) -> CacheEntry | None:
        """The stored entry for `key`."""
        row = await self._file.run(
            lambda db: db.execute(
                f"SELECT {_COLUMNS} FROM entries WHERE key = ?", (key,)
            ).fetchone()
        )
        return None if row is None else _row_to_entry(row)

    async def delete(self, keys: Sequence[str]) -> None:
        """Remove entries by key."""
        if keys:
            await self._file.run(
                lambda db: db.executemany("DELETE FROM entries WHERE key = ?", [(k,) for k in keys])
            )

    async def delete_namespace(self, namespace: str) -> list[str]:
        """Remove a namespace; return the removed keys."""

        def delete(db: sqlite3.Connection) -> list[str]:
            keys = [
                str(row[0])
                for row in db.execute("SELECT key FROM entries WHERE namespace = ?", (namespace,))
            ]
            db.execute("DELETE FROM entries WHERE namespace = ?", (namespace,))
            return keys

        return await self._file.run(delete)

    async def record_hits(self, hits: Sequence[tuple[str, int, float]]) -> None:
        """Add hit counts and last-access times in one transaction."""
        if not hits:
            return

        def record(db: sqlite3.Connection) -> None:
            with db:
                db.execute("BEGIN")
                db.executemany(
                    "UPDATE entries SET hit_count = hit_count + ?, "
                    "last_access = MAX(last_access, ?) WHERE key = ?",
                    [(count, access, key) for key, count, access in hits],
                )

        await self._file.run(record)

    async def changes(self) -> list[CacheChange]:
        """A single-process backend has no other writers."""
        return []

    async def close(self) -> None:
        """Close the database and its thread."""
        await self._file.close()
