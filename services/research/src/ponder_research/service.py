"""The research service as a ServiceModule: sources, search, library indexing, shutdown."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import grpc

from ponder.library.v1 import library_service_pb2 as library_pb2
from ponder.research.v1 import research_service_pb2 as research_pb2
from ponder.research.v1 import research_service_pb2_grpc as research_grpc
from ponder_research.arxiv_source import ArxivSource, RequestSpacing
from ponder_research.documents import SourceKind
from ponder_research.embedder import EmbeddingUnavailableError
from ponder_research.embedding_client import EmbeddingClient
from ponder_research.library import LibraryIndex, LibrarySource, VectorStore, load_library
from ponder_research.search import Searcher
from ponder_research.servicer import ResearchServicer
from ponder_research.settings import ResearchSettings
from ponder_research.source_cache import SourceCache
from ponder_research.sources import Source
from ponder_research.uploads.module import TenantLibrarySource, UploadedLibraries
from ponder_research.web_source import WebSource
from ponder_runtime import ChannelFactory, Telemetry
from ponder_runtime.internal_auth import internal_interceptors
from ponder_runtime.tasks import cancel_and_wait


logger = logging.getLogger(__name__)


class ResearchModule:
    """Loads the library at start (SERVING then, keyword search), embeds it in the background
    through the embedding service (then search by meaning), and serves ResearchService."""

    def __init__(self, settings: ResearchSettings, telemetry: Telemetry) -> None:
        self._settings = settings
        self._channels = ChannelFactory(
            telemetry,
            max_message_bytes=settings.max_message_bytes,
            internal_token=settings.internal_token_value,
        )
        self._embedding = EmbeddingClient(
            self._channels.channel(settings.embedding_addr),
            timeout=settings.embedding_timeout_seconds,
        )
        self._library = LibrarySource(
            LibraryIndex(
                self._embedding,
                VectorStore(settings.index_path),
                min_similarity=settings.library_min_similarity,
            )
        )
        # Uploaded libraries (LibraryService): one passage index per tenant, searched with the
        # shared one above for the tenant a search names.
        self.uploads = UploadedLibraries(
            settings,
            lambda: LibraryIndex(
                self._embedding,
                VectorStore(settings.index_path),
                min_similarity=settings.library_min_similarity,
            ),
            shared_version=lambda: self._library.index.version,
        )
        sources: dict[SourceKind, Source] = {
            SourceKind.ARXIV: ArxivSource(
                settings.arxiv_api_url,
                http_timeout=settings.arxiv_http_timeout_seconds,
                spacing=RequestSpacing(settings.arxiv_min_interval_seconds),
            ),
            SourceKind.WEB: WebSource(
                settings.tavily_api_key,
                api_base_url=settings.tavily_api_url,
                timeout=settings.source_timeout_seconds,
            ),
            SourceKind.LIBRARY: TenantLibrarySource(self._library, self.uploads),
        }
        self.searcher = Searcher(
            sources,
            cache=SourceCache(
                ttl=settings.source_cache_ttl_seconds,
                max_entries=settings.source_cache_max_entries,
            ),
            embedding=self._embedding,
            tracer=telemetry.tracer("ponder_research"),
            meter=telemetry.meter("ponder_research"),
        )
        self._indexing: asyncio.Task[None] | None = None

    @property
    def service_names(self) -> Sequence[str]:
        """ResearchService's and LibraryService's full names."""
        return [
            research_pb2.DESCRIPTOR.services_by_name["ResearchService"].full_name,
            library_pb2.DESCRIPTOR.services_by_name["LibraryService"].full_name,
        ]

    @property
    def library(self) -> LibraryIndex:
        """The library index in use."""
        return self._library.index

    def interceptors(self) -> list[grpc.aio.ServerInterceptor]:
        """access: every method but health and reflection needs the internal token."""
        return internal_interceptors(self._settings.internal_token_value, "research")

    def register(self, server: grpc.aio.Server) -> None:
        """Add the servicer."""
        servicer = ResearchServicer(
            self.searcher,
            source_timeout=self._settings.source_timeout_seconds,
            library=lambda: self._library.index,
            uploads=self.uploads,
        )
        research_grpc.add_ResearchServiceServicer_to_server(servicer, server)
        self.uploads.register(server)

    async def start(self) -> None:
        """Read the library (keyword search works at once); embed it in the background."""
        files = await asyncio.to_thread(
            load_library,
            self._settings.library_dirs,
            include_sample=self._settings.include_sample_library,
        )
        for file in files:
            file.add_to(self._library.index)
        self._indexing = asyncio.create_task(self._index_library(self._library.index))
        await self.uploads.start()  # stored uploads are indexed again in the background

    async def _index_library(self, index: LibraryIndex) -> None:
        while True:
            try:
                await index.embed_pending()
                logger.info(
                    "library indexed",
                    extra={"documents": len(index), "passages": index.passage_count},
                )
            except EmbeddingUnavailableError as exc:
                logger.info(
                    "library indexing waits for the embedding service",
                    extra={"reason": str(exc), "retry_seconds": self._settings.index_retry_seconds},
                )
                await asyncio.sleep(self._settings.index_retry_seconds)
            else:
                return

    async def wait_indexed(self) -> None:
        """Return once the library is searched by meaning and the stored uploads are indexed
        again (tests, benchmarks)."""
        if self._indexing is not None:
            await asyncio.shield(self._indexing)
        await self.uploads.restored()

    async def close(self) -> None:
        """Stop indexing, close the uploads' store and the channel to the embedding service."""
        await cancel_and_wait(self._indexing)
        await self.uploads.close()
        await self._channels.close()
