"""The research service as a ServiceModule: sources, servicer, start-up and shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import grpc

from ponder.research.v1 import research_service_pb2 as research_pb2
from ponder.research.v1 import research_service_pb2_grpc as research_grpc
from ponder_research.documents import SourceKind
from ponder_research.library import Library, load_library
from ponder_research.servicer import ResearchServicer
from ponder_research.settings import ResearchSettings
from ponder_research.sources import LibrarySource, Source, UnconfiguredSource
from ponder_runtime import Telemetry


class ResearchModule:
    """Loads the library at start and serves ResearchService."""

    def __init__(self, settings: ResearchSettings, telemetry: Telemetry) -> None:
        self._settings = settings
        self._telemetry = telemetry
        self._library = Library([])
        self._sources: dict[SourceKind, Source] = {
            SourceKind.LIBRARY: LibrarySource(self._library),
            SourceKind.ARXIV: UnconfiguredSource(
                SourceKind.ARXIV, "the arXiv source is not part of this build yet"
            ),
            SourceKind.WEB: UnconfiguredSource(
                SourceKind.WEB, "the web search source is not part of this build yet"
            ),
        }

    @property
    def service_names(self) -> Sequence[str]:
        """ResearchService's full name."""
        return [research_pb2.DESCRIPTOR.services_by_name["ResearchService"].full_name]

    def register(self, server: grpc.aio.Server) -> None:
        """Add the servicer."""
        servicer = ResearchServicer(
            self._sources, source_timeout=self._settings.source_timeout_seconds
        )
        research_grpc.add_ResearchServiceServicer_to_server(servicer, server)

    async def start(self) -> None:
        """Read and index the library off the event loop."""
        documents = await asyncio.to_thread(
            load_library,
            self._settings.library_dirs,
            include_sample=self._settings.include_sample_library,
        )
        self._library = Library(documents)
        self._sources[SourceKind.LIBRARY] = LibrarySource(self._library)

    async def close(self) -> None:
        """Nothing to release yet."""
