"""The local library's version, asked of the research service (GetLibrary) and kept for a few
seconds: it is part of the cache namespace of workflows that search the library, so a cached
answer is never served once the library it was made from changed. Per tenant: a tenant's
version covers its uploaded libraries too (and differs from every other tenant's)."""

from __future__ import annotations

import time

import grpc

from ponder.research.v1 import research_service_pb2 as research_pb2
from ponder.research.v1 import research_service_pb2_grpc as research_grpc


_MAX_TENANTS = 10_000  # versions kept at most (all forgotten at once beyond)


class LibraryVersionError(Exception):
    """The research service could not say which library it serves."""


class LibraryVersions:
    """GetLibrary's version per tenant, asked again after `seconds` (0: on every call)."""

    def __init__(
        self, stub: research_grpc.ResearchServiceStub, *, seconds: float, timeout: float
    ) -> None:
        self._stub = stub
        self._seconds = seconds
        self._timeout = timeout
        self._known: dict[str, tuple[float, str]] = {}

    async def current(self, tenant: str = "") -> str:
        """The version of what `tenant` searches ("" : the shared library alone); raises
        LibraryVersionError when research cannot answer."""
        now = time.monotonic()
        known = self._known.get(tenant)
        if known is not None and now < known[0]:
            return known[1]
        try:
            reply = await self._stub.GetLibrary(
                research_pb2.GetLibraryRequest(tenant=tenant), timeout=self._timeout
            )
        except grpc.aio.AioRpcError as exc:
            raise LibraryVersionError(f"{exc.code().name}: {exc.details()}") from exc
        version: str = reply.version
        if len(self._known) >= _MAX_TENANTS:
            self._known.clear()
        self._known[tenant] = (now + self._seconds, version)
        return version
