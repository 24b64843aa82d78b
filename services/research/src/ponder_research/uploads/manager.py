"""Uploaded libraries as a domain: limits, deduplication by content hash, tenancy (a tenant
sees only its own libraries), background indexing PENDING → INDEXED/FAILED, watches, and the
version each tenant's libraries are at (it changes with every indexed, failed or deleted
document, so cached answers built from a library are dropped with it)."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import re
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

from ponder_research.uploads.store import DocumentState, DocumentStore, StoredDocument


logger = logging.getLogger(__name__)

_LIBRARY_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
MAX_DISPLAY_NAME = 200


class UploadError(Exception):
    """Base of the library's refusals."""


class BadUpload(UploadError):
    """A request field is invalid; `field` names it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class UploadTooLarge(BadUpload):
    """The file is over the size limit."""


class LibraryFull(UploadError):
    """The library holds its maximum number of documents."""


class DocumentNotFound(UploadError):
    """No such document (or library) for this tenant."""


class UnreadableUpload(Exception):
    """Indexing found the document unreadable; the message says why, naming it."""


class PassageIndexer(Protocol):
    """Reads, splits and indexes a document's passages; removes them again."""

    async def add(self, doc: StoredDocument, data: bytes) -> int:
        """Index the document under `doc.key`; the number of passages. Raises
        UnreadableUpload when its text cannot be extracted."""
        ...

    async def remove(self, doc: StoredDocument) -> None:
        """Drop the document's passages from the index."""
        ...


@dataclass(frozen=True, slots=True)
class Limits:
    """Size of one file and documents per library."""

    max_bytes: int
    max_documents: int


def library_id(parent: str, field: str = "parent") -> str:
    """The id of "libraries/{library}"; BadUpload otherwise."""
    prefix, _, ident = parent.partition("/")
    if prefix != "libraries" or not _LIBRARY_ID.match(ident):
        raise BadUpload(
            field,
            'must be "libraries/{library}", the id 1 to 63 lower-case letters, digits, "-" or "_"',
        )
    return ident


def document_path(name: str) -> tuple[str, str]:
    """(library, document) of "libraries/{library}/documents/{document}"; BadUpload otherwise."""
    parts = name.split("/")
    if len(parts) != 4 or parts[2] != "documents" or not parts[3]:
        raise BadUpload("name", 'must be "libraries/{library}/documents/{document}"')
    return library_id(f"libraries/{parts[1]}", "name"), parts[3]


class Uploads:
    """The LibraryService's work, for any tenant (the servicer says which)."""

    def __init__(
        self,
        store: DocumentStore,
        indexer: PassageIndexer,
        limits: Limits,
        media_types: set[str],
        *,
        version: Callable[[str], str],
    ) -> None:
        self._store = store
        self._version = version
        self._indexer = indexer
        self._limits = limits
        self._media_types = media_types
        self._queue: asyncio.Queue[StoredDocument] = asyncio.Queue()
        self._changed = asyncio.Condition()
        self._worker: asyncio.Task[None] | None = None
        self._restoring: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()  # create/delete of one process at a time (dedupe, count)

    async def start(self) -> None:
        """Serve the queue, and index again in the background what the store holds (the index
        lives in memory; vectors come back from the vector store): until `restored()`, a
        document INDEXED before a restart may be missing from searches."""
        stored = [
            doc for doc in await self._store.everything() if doc.state != DocumentState.FAILED
        ]
        self._restoring = asyncio.create_task(self._restore(stored), name="library-restore")
        self._worker = asyncio.create_task(self._work(), name="library-indexing")

    async def _restore(self, documents: list[StoredDocument]) -> None:
        for doc in documents:
            await self._index(doc)
        logger.info("library uploads restored", extra={"documents": len(documents)})

    async def restored(self) -> None:
        """Return once the documents stored before the start are indexed again."""
        if self._restoring is not None:
            await asyncio.shield(self._restoring)

    async def close(self) -> None:
        """Stop indexing and close the store."""
        for task in (self._worker, self._restoring):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await self._store.close()

    async def create(
        self, tenant: str, parent: str, data: bytes, media_type: str, display_name: str
    ) -> StoredDocument:
        """Store the upload and queue its indexing; the existing document for the same bytes."""
        library = library_id(parent)
        if not data:
            raise BadUpload("file.data", "the file is empty")
        if len(data) > self._limits.max_bytes:
            raise UploadTooLarge(
                "file.data",
                f"the file has {len(data)} bytes; at most {self._limits.max_bytes} are accepted",
            )
        media = media_type.split(";", 1)[0].strip().lower()
        if media not in self._media_types:
            raise BadUpload(
                "file.content_type",
                f"{media_type or 'no media type'} is not supported; use one of "
                + ", ".join(sorted(self._media_types)),
            )
        if len(display_name) > MAX_DISPLAY_NAME:
            raise BadUpload("display_name", f"at most {MAX_DISPLAY_NAME} characters")
        sha256 = hashlib.sha256(data).hexdigest()
        async with self._lock:
            existing = await self._store.by_hash(tenant, library, sha256)
            if existing is not None:
                return existing
            if await self._store.count(tenant, library) >= self._limits.max_documents:
                raise LibraryFull(
                    f"{parent} holds {self._limits.max_documents} documents, the most allowed; "
                    "delete some first"
                )
            now = dt.datetime.now(dt.UTC)
            doc = await self._store.insert(
                StoredDocument(
                    tenant=tenant,
                    library=library,
                    id=uuid.uuid4().hex[:16],
                    display_name=display_name.strip() or "document",
                    media_type=media,
                    size_bytes=len(data),
                    sha256=sha256,
                    state=DocumentState.PENDING,
                    failure_reason="",
                    passage_count=0,
                    create_time=now,
                    update_time=now,
                    sequence=0,
                ),
                data,
            )
        self._queue.put_nowait(doc)
        return doc

    async def get(self, tenant: str, name: str) -> StoredDocument:
        """The tenant's document; DocumentNotFound otherwise."""
        library, doc_id = document_path(name)
        doc = await self._store.get(tenant, library, doc_id)
        if doc is None:
            raise DocumentNotFound(f"{name} not found")
        return doc

    async def page(
        self, tenant: str, parent: str, *, after: int, limit: int
    ) -> list[StoredDocument]:
        """A page of the tenant's library (empty for a library it has not uploaded to)."""
        return await self._store.page(tenant, library_id(parent), after=after, limit=limit)

    async def delete(self, tenant: str, name: str) -> str:
        """Remove the document and its passages; the tenant's version after it."""
        async with self._lock:
            doc = await self.get(tenant, name)
            await self._store.delete(doc)
            await self._indexer.remove(doc)
        await self._changed_for(tenant)
        return self._version(tenant)

    async def watch(self, tenant: str, name: str) -> AsyncIterator[StoredDocument]:
        """The document now, then at each change, until INDEXED or FAILED (or deleted:
        DocumentNotFound)."""
        last: StoredDocument | None = None
        while True:
            async with self._changed:
                doc = await self.get(tenant, name)
                if doc == last:
                    await self._changed.wait()
                    continue
            last = doc
            yield doc
            if doc.state != DocumentState.PENDING:
                return

    async def _changed_for(self, tenant: str) -> None:
        """Wake the watchers (of every tenant: each checks its own document)."""
        async with self._changed:
            self._changed.notify_all()

    async def _work(self) -> None:
        while True:
            doc = await self._queue.get()
            await self._index(doc)

    async def _index(self, doc: StoredDocument) -> None:
        """Index one document and record the outcome (a failure touches nothing else)."""
        current = await self._store.get(doc.tenant, doc.library, doc.id)
        if current is None:  # deleted while queued
            return
        data = await self._store.data(current)
        try:
            passages = await self._indexer.add(current, data)
        except UnreadableUpload as exc:
            logger.warning(
                "library document unreadable", extra={"document": doc.key, "reason": str(exc)}
            )
            done = current.with_state(DocumentState.FAILED, reason=str(exc))
        except Exception as exc:  # a bug in one document must not stop the queue
            logger.exception("library indexing failed", extra={"document": doc.key})
            done = current.with_state(DocumentState.FAILED, reason=f"{doc.display_name}: {exc}")
        else:
            done = current.with_state(DocumentState.INDEXED, passages=passages)
        if (done.state, done.failure_reason, done.passage_count) == (
            current.state,
            current.failure_reason,
            current.passage_count,
        ):
            return  # indexed again after a restart, as before: nothing to record
        async with self._lock:
            if await self._store.get(doc.tenant, doc.library, doc.id) is None:
                await self._indexer.remove(current)  # deleted while indexing
                return
            await self._store.update_state(done)
        await self._changed_for(doc.tenant)
