"""gRPC servicer of ponder.research.v1.ResearchService."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import grpc

from ponder.research.v1 import research_service_pb2 as research_pb2
from ponder.research.v1 import research_service_pb2_grpc as research_grpc
from ponder_research.convert import (
    PROTO_TO_KIND,
    RANKING_TO_PROTO,
    document_to_proto,
    outcome_to_proto,
)
from ponder_research.library import LibraryIndex
from ponder_research.search import AllSourcesFailedError, Searcher
from ponder_research.sources import Query
from ponder_runtime import RequestValidator, UnavailableError


MAX_QUERY_LENGTH = 2000
DEFAULT_MAX_RESULTS = 10
MAX_RESULTS = 50
MAX_DOMAINS = 50
MAX_TENANT_LENGTH = 63  # the gateway's tenant names (principals.py)


def source_budget(context: grpc.aio.ServicerContext[Any, Any], timeout: float) -> float:
    """Each source's time: its timeout, cut to 80% of the caller's remaining deadline so that
    merging and reranking still fit in it."""
    remaining: float | None = context.time_remaining()
    if remaining is None:
        return timeout
    return max(0.01, min(timeout, remaining * 0.8 - 0.05))


class TenantVersions(Protocol):
    """What the tenants' uploaded libraries tell GetLibrary and the source cache."""

    def version(self, tenant: str) -> str:
        """The version of what `tenant` searches in the library."""
        ...

    def count(self, tenant: str) -> int:
        """How many of the tenant's uploads are indexed."""
        ...


class ResearchServicer(research_grpc.ResearchServiceServicer):
    """Validates requests, runs the search and reports per-source statuses."""

    def __init__(
        self,
        searcher: Searcher,
        *,
        source_timeout: float,
        library: Callable[[], LibraryIndex] | None = None,
        uploads: TenantVersions | None = None,
    ) -> None:
        self._searcher = searcher
        self._source_timeout = source_timeout
        self._library = library or LibraryIndex
        self._uploads = uploads

    async def GetLibrary(
        self, request: research_pb2.GetLibraryRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> research_pb2.GetLibraryResponse:
        """The library's version (content hash) and size; with a tenant, counting its uploads."""
        library = self._library()
        if self._uploads is None or not request.tenant:
            return research_pb2.GetLibraryResponse(
                version=library.version, document_count=len(library)
            )
        return research_pb2.GetLibraryResponse(
            version=self._uploads.version(request.tenant),
            document_count=len(library) + self._uploads.count(request.tenant),
        )

    async def SearchSources(
        self,
        request: research_pb2.SearchSourcesRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> research_pb2.SearchSourcesResponse:
        """Search the requested sources concurrently."""
        check = RequestValidator()
        check.text("query", request.query, max_length=MAX_QUERY_LENGTH)
        check.text("tenant", request.tenant, max_length=MAX_TENANT_LENGTH, required=False)
        check.number(
            "max_results", request.max_results, low=1, high=MAX_RESULTS, zero_means_default=True
        )
        for index, kind in enumerate(request.sources):
            if kind not in PROTO_TO_KIND:
                check.add(f"sources[{index}]", "must be SOURCE_KIND_ARXIV, _WEB or _LIBRARY")
        for field in ("include_domains", "exclude_domains"):
            domains = getattr(request, field)
            check.count(field, domains, low=0, high=MAX_DOMAINS)
            for index, domain in enumerate(domains):
                check.text(f"{field}[{index}]", domain, max_length=253)
        timeout = self._source_timeout
        if request.HasField("source_timeout"):
            timeout = request.source_timeout.ToNanoseconds() / 1e9
            check.number("source_timeout", timeout, low=0.01, high=120, zero_means_default=False)
        check.check()
        max_results = request.max_results or DEFAULT_MAX_RESULTS
        query = Query(
            text=" ".join(request.query.split()),
            limit=max_results,
            include_domains=tuple(request.include_domains),
            exclude_domains=tuple(request.exclude_domains),
            tenant=request.tenant,
            library_version=self._uploads.version(request.tenant) if self._uploads else "",
        )
        try:
            result = await self._searcher.search(
                query,
                [PROTO_TO_KIND[kind] for kind in request.sources],
                max_results=max_results,
                timeout=source_budget(context, timeout),
            )
        except AllSourcesFailedError as exc:
            raise UnavailableError(
                str(exc),
                metadata={o.source.value: f"{o.state.value}: {o.message}" for o in exc.outcomes},
            ) from exc
        return research_pb2.SearchSourcesResponse(
            documents=[document_to_proto(doc) for doc in result.documents],
            source_statuses=[outcome_to_proto(outcome) for outcome in result.outcomes],
            duplicates_removed=result.duplicates_removed,
            ranking=RANKING_TO_PROTO[result.ranking],
            ranking_note=result.ranking_note,
        )
