"""The uploaded libraries assembled from the research settings: the durable store, the
per-tenant passage indexes, the LibraryService servicer, and the library source that searches
the shared folder library together with the caller's tenant's uploads."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import replace

import grpc

from ponder.library.v1 import library_service_pb2_grpc as library_grpc
from ponder_research.documents import FoundDocument, SourceKind
from ponder_research.library.formats import MEDIA_TYPES
from ponder_research.library.index import LibraryIndex
from ponder_research.library_servicer import LibraryServicer
from ponder_research.settings import ResearchSettings
from ponder_research.sources import Query, Source
from ponder_research.uploads.indexing import TenantIndexes
from ponder_research.uploads.manager import Limits, Uploads
from ponder_research.uploads.store import DocumentStore


class UploadedLibraries:
    """Every tenant's uploads: served by LibraryService, searched by the library source."""

    def __init__(
        self,
        settings: ResearchSettings,
        make_index: Callable[[], LibraryIndex],
        shared_version: Callable[[], str],
    ) -> None:
        self._shared_version = shared_version
        self.indexes = TenantIndexes(make_index, retry_seconds=settings.index_retry_seconds)
        self.uploads = Uploads(
            DocumentStore(settings.uploads_path),
            self.indexes,
            Limits(
                max_bytes=settings.library_max_document_bytes,
                max_documents=settings.library_max_documents,
            ),
            set(MEDIA_TYPES),
            version=self.version,
        )

    def register(self, server: grpc.aio.Server) -> None:
        """Add the LibraryService servicer."""
        library_grpc.add_LibraryServiceServicer_to_server(LibraryServicer(self.uploads), server)

    async def start(self) -> None:
        """Index the stored uploads again (in the background) and take new ones."""
        await self.uploads.start()

    async def restored(self) -> None:
        """Return once the uploads stored before the start are indexed again."""
        await self.uploads.restored()

    async def close(self) -> None:
        """Stop indexing; close the store."""
        await self.uploads.close()
        await self.indexes.close()

    def version(self, tenant: str) -> str:
        """The version of what `tenant` searches: the shared library's alone without a tenant
        or uploads; else a hash of it, the tenant and its indexed uploads."""
        shared = self._shared_version()
        uploads = self.indexes.version(tenant) if tenant else ""
        if not tenant:
            return shared
        digest = hashlib.sha256(f"{shared}\x00{tenant}\x00{uploads}".encode())
        return digest.hexdigest()[:16]

    def count(self, tenant: str) -> int:
        """How many of the tenant's uploads are indexed."""
        return self.indexes.count(tenant) if tenant else 0


class TenantLibrarySource:
    """The LIBRARY source: the shared library's matches and the query's tenant's uploads',
    merged by score (both are scored by the same passage index)."""

    kind = SourceKind.LIBRARY

    def __init__(self, shared: Source, uploads: UploadedLibraries) -> None:
        self._shared = shared
        self._uploads = uploads

    async def search(self, query: Query) -> list[FoundDocument]:
        """Up to `query.limit` documents, best first."""
        found = await self._shared.search(query)
        if query.tenant:
            hits = await self._uploads.indexes.search(query.tenant, query.text, query.limit)
            found = found + [hit.found() for hit in hits]
        found.sort(key=lambda doc: -doc.score)
        return [replace(doc, source=SourceKind.LIBRARY) for doc in found[: query.limit]]
