"""The local library's version, asked of the research service (GetLibrary) and kept for a few
seconds: it is part of the cache namespace of workflows that search the library, so a cached
answer is never served once the library it was made from changed."""

from __future__ import annotations

import time

import grpc

from ponder.research.v1 import research_service_pb2 as research_pb2
from ponder.research.v1 import research_service_pb2_grpc as research_grpc


class LibraryVersionError(Exception):
    """The research service could not say which library it serves."""


class LibraryVersions:
    """GetLibrary's version, asked again after `seconds` (0: on every call)."""

    def __init__(
        self, stub: research_grpc.ResearchServiceStub, *, seconds: float, timeout: float
    ) -> None:
        self._stub = stub
        self._seconds = seconds
        self._timeout = timeout
        self._known: tuple[float, str] | None = None

    async def current(self) -> str:
        """The library's version; raises LibraryVersionError when research cannot answer."""
        now = time.monotonic()
        if self._known is not None and now < self._known[0]:
            return self._known[1]
        try:
            reply = await self._stub.GetLibrary(
                research_pb2.GetLibraryRequest(), timeout=self._timeout
            )
        except grpc.aio.AioRpcError as exc:
            raise LibraryVersionError(f"{exc.code().name}: {exc.details()}") from exc
        version: str = reply.version
        self._known = (now + self._seconds, version)
        return version
