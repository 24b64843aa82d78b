"""Uploaded documents in the passage index: one index per tenant (a tenant's searches never
see another's passages), each document read with the library's extractors, split into
passages and embedded through the embedding service (keyword search finds it meanwhile)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from ponder_research.embedder import EmbeddingUnavailableError
from ponder_research.library.formats import UnreadableDocument, extract
from ponder_research.library.index import DocumentHit, LibraryIndex
from ponder_research.library.passages import split_passages
from ponder_research.uploads.manager import UnreadableUpload
from ponder_research.uploads.store import StoredDocument


logger = logging.getLogger(__name__)


def document_id(doc: StoredDocument) -> str:
    """The id a citation of the document carries: its resource name."""
    return f"libraries/{doc.library}/documents/{doc.id}"


class TenantIndexes:
    """The passage index of each tenant's uploads (made on first use by `make_index`)."""

    def __init__(self, make_index: Callable[[], LibraryIndex], *, retry_seconds: float) -> None:
        self._make = make_index
        self._indexes: dict[str, LibraryIndex] = {}
        self._retry_seconds = retry_seconds
        self._embedding: dict[str, asyncio.Task[None]] = {}

    def index(self, tenant: str) -> LibraryIndex | None:
        """The tenant's index, None before its first upload."""
        return self._indexes.get(tenant)

    async def add(self, doc: StoredDocument, data: bytes) -> int:
        """Read, split and index the document; its passage count. UnreadableUpload when its
        text cannot be extracted (naming the file)."""
        try:
            extracted = await asyncio.to_thread(extract, data, doc.media_type, doc.display_name)
        except UnreadableDocument as exc:
            raise UnreadableUpload(str(exc)) from exc
        passages = split_passages(extracted, document_id(doc))
        if not passages:
            raise UnreadableUpload(f"{doc.display_name}: no text found")
        index = self._indexes.get(doc.tenant)
        if index is None:
            index = self._indexes[doc.tenant] = self._make()
        index.add(
            document_id(doc),
            doc.display_name,
            doc.media_type,
            passages,
            title=extracted.title or doc.display_name,
        )
        await self._embed(doc.tenant, index)
        return len(passages)

    async def remove(self, doc: StoredDocument) -> None:
        """Drop the document's passages."""
        index = self._indexes.get(doc.tenant)
        if index is not None:
            index.remove(document_id(doc))

    async def _embed(self, tenant: str, index: LibraryIndex) -> None:
        """Embed what is pending now; if the embedding service is down, keep trying in the
        background (the document is found by keywords until then)."""
        try:
            await index.embed_pending()
        except EmbeddingUnavailableError as exc:
            logger.info("library upload embedding waits", extra={"reason": str(exc)})
            task = self._embedding.get(tenant)
            if task is None or task.done():
                self._embedding[tenant] = asyncio.create_task(self._retry(index))

    async def _retry(self, index: LibraryIndex) -> None:
        while True:
            await asyncio.sleep(self._retry_seconds)
            try:
                await index.embed_pending()
            except EmbeddingUnavailableError:
                continue
            return

    async def search(self, tenant: str, query: str, k: int) -> list[DocumentHit]:
        """The tenant's best documents with their passages (none before any upload)."""
        index = self._indexes.get(tenant)
        return [] if index is None else await index.search(query, k)

    def version(self, tenant: str) -> str:
        """The content hash of the tenant's indexed uploads ("" before any)."""
        index = self._indexes.get(tenant)
        return "" if index is None or not len(index) else index.version

    def count(self, tenant: str) -> int:
        """How many of the tenant's uploads are indexed."""
        index = self._indexes.get(tenant)
        return 0 if index is None else len(index)

    async def close(self) -> None:
        """Stop background embedding."""
        for task in self._embedding.values():
            task.cancel()
        await asyncio.gather(*self._embedding.values(), return_exceptions=True)
