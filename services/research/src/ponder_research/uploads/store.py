"""The durable record of uploaded documents: one SQLite file under the research data dir with
each document's bytes, metadata and indexing state, so a restart re-indexes what it holds and
never loses a state."""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path

from ponder_runtime.sqlite import SqliteFile


class DocumentState(StrEnum):
    """Where a document is in its indexing."""

    PENDING = "pending"
    INDEXED = "indexed"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class StoredDocument:
    """One uploaded document (its bytes are read separately: `DocumentStore.data`)."""

    tenant: str
    library: str
    id: str
    display_name: str
    media_type: str
    size_bytes: int
    sha256: str
    state: DocumentState
    failure_reason: str
    passage_count: int
    create_time: dt.datetime
    update_time: dt.datetime
    sequence: int  # order of upload within the store (listing order, page tokens)

    @property
    def key(self) -> str:
        """A key unique across tenants and libraries: the passage index's document key."""
        return f"{self.tenant}/{self.library}/{self.id}"

    def with_state(
        self, state: DocumentState, *, reason: str = "", passages: int = 0
    ) -> StoredDocument:
        """The document in a new state, updated now."""
        return replace(
            self,
            state=state,
            failure_reason=reason,
            passage_count=passages,
            update_time=dt.datetime.now(dt.UTC),
        )


_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    sequence INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant TEXT NOT NULL,
    library TEXT NOT NULL,
    id TEXT NOT NULL,
    display_name TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    state TEXT NOT NULL,
    failure_reason TEXT NOT NULL,
    passage_count INTEGER NOT NULL,
    create_time TEXT NOT NULL,
    update_time TEXT NOT NULL,
    data BLOB NOT NULL,
    UNIQUE (tenant, library, id),
    UNIQUE (tenant, library, sha256)
);
"""
_COLUMNS = (
    "tenant, library, id, display_name, media_type, size_bytes, sha256, state, failure_reason, "
    "passage_count, create_time, update_time, sequence"
)


def _row(row: tuple[object, ...]) -> StoredDocument:
    (tenant, library, doc_id, name, media, size, sha, state, reason, passages, created) = row[:11]
    return StoredDocument(
        tenant=str(tenant),
        library=str(library),
        id=str(doc_id),
        display_name=str(name),
        media_type=str(media),
        size_bytes=int(str(size)),
        sha256=str(sha),
        state=DocumentState(str(state)),
        failure_reason=str(reason),
        passage_count=int(str(passages)),
        create_time=dt.datetime.fromisoformat(str(created)),
        update_time=dt.datetime.fromisoformat(str(row[11])),
        sequence=int(str(row[12])),
    )


class DocumentStore:
    """Documents by (tenant, library, id), with their bytes; writes are durable on return."""

    def __init__(self, path: Path) -> None:
        self._file = SqliteFile(path, _SCHEMA, thread_name="research-uploads")

    async def insert(self, doc: StoredDocument, data: bytes) -> StoredDocument:
        """Store a new document; returns it with its sequence number."""
        await self._file.write(
            "INSERT INTO documents (tenant, library, id, display_name, media_type, size_bytes, "
            "sha256, state, failure_reason, passage_count, create_time, update_time, data) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                doc.tenant,
                doc.library,
                doc.id,
                doc.display_name,
                doc.media_type,
                doc.size_bytes,
                doc.sha256,
                doc.state.value,
                doc.failure_reason,
                doc.passage_count,
                doc.create_time.isoformat(),
                doc.update_time.isoformat(),
                data,
            ),
        )
        stored = await self.get(doc.tenant, doc.library, doc.id)
        assert stored is not None
        return stored

    async def update_state(self, doc: StoredDocument) -> None:
        """Record the document's state, reason and passage count."""
        await self._file.write(
            "UPDATE documents SET state = ?, failure_reason = ?, passage_count = ?, "
            "update_time = ? WHERE tenant = ? AND library = ? AND id = ?",
            (
                doc.state.value,
                doc.failure_reason,
                doc.passage_count,
                doc.update_time.isoformat(),
                doc.tenant,
                doc.library,
                doc.id,
            ),
        )

    async def delete(self, doc: StoredDocument) -> None:
        """Remove the document and its bytes."""
        await self._file.write(
            "DELETE FROM documents WHERE tenant = ? AND library = ? AND id = ?",
            (doc.tenant, doc.library, doc.id),
        )

    async def get(self, tenant: str, library: str, doc_id: str) -> StoredDocument | None:
        """The document, or None."""
        return await self._one(
            f"SELECT {_COLUMNS} FROM documents WHERE tenant = ? AND library = ? AND id = ?",
            (tenant, library, doc_id),
        )

    async def by_hash(self, tenant: str, library: str, sha256: str) -> StoredDocument | None:
        """The document of the library with these bytes, or None."""
        return await self._one(
            f"SELECT {_COLUMNS} FROM documents WHERE tenant = ? AND library = ? AND sha256 = ?",
            (tenant, library, sha256),
        )

    async def _one(self, sql: str, params: tuple[str, ...]) -> StoredDocument | None:
        def work(db: sqlite3.Connection) -> StoredDocument | None:
            row = db.execute(sql, params).fetchone()
            return None if row is None else _row(row)

        return await self._file.run(work)

    async def page(
        self, tenant: str, library: str, *, after: int, limit: int
    ) -> list[StoredDocument]:
        """Up to `limit` documents of the library uploaded after sequence `after`, oldest first."""

        def work(db: sqlite3.Connection) -> list[StoredDocument]:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM documents WHERE tenant = ? AND library = ? "
                "AND sequence > ? ORDER BY sequence LIMIT ?",
                (tenant, library, after, limit),
            ).fetchall()
            return [_row(row) for row in rows]

        return await self._file.run(work)

    async def count(self, tenant: str, library: str) -> int:
        """How many documents the library holds."""

        def work(db: sqlite3.Connection) -> int:
            row = db.execute(
                "SELECT COUNT(*) FROM documents WHERE tenant = ? AND library = ?",
                (tenant, library),
            ).fetchone()
            return int(row[0])

        return await self._file.run(work)

    async def everything(self) -> list[StoredDocument]:
        """Every document of every tenant, in upload order (the start-up re-index)."""

        def work(db: sqlite3.Connection) -> list[StoredDocument]:
            rows = db.execute(f"SELECT {_COLUMNS} FROM documents ORDER BY sequence").fetchall()
            return [_row(row) for row in rows]

        return await self._file.run(work)

    async def data(self, doc: StoredDocument) -> bytes:
        """The document's bytes."""

        def work(db: sqlite3.Connection) -> bytes:
            row = db.execute(
                "SELECT data FROM documents WHERE tenant = ? AND library = ? AND id = ?",
                (doc.tenant, doc.library, doc.id),
            ).fetchone()
            return b"" if row is None else bytes(row[0])

        return await self._file.run(work)

    async def close(self) -> None:
        """Close the file."""
        await self._file.close()
