"""gRPC servicer of ponder.research.v1.ResearchService."""

from __future__ import annotations

from collections.abc import Mapping

import grpc

from ponder.research.v1 import research_service_pb2 as research_pb2
from ponder.research.v1 import research_service_pb2_grpc as research_grpc
from ponder.type.v1 import document_pb2
from ponder_research.convert import PROTO_TO_KIND, document_to_proto, outcome_to_proto
from ponder_research.documents import SourceKind
from ponder_research.search import AllSourcesFailedError, search_sources
from ponder_research.sources import Source
from ponder_runtime import RequestValidator, UnavailableError, call_timeout


MAX_QUERY_LENGTH = 2000
DEFAULT_MAX_RESULTS = 10
MAX_RESULTS = 50


class ResearchServicer(research_grpc.ResearchServiceServicer):
    """Validates requests, runs the fan-out search and reports per-source statuses."""

    def __init__(self, sources: Mapping[SourceKind, Source], *, source_timeout: float) -> None:
        self._sources = sources
        self._source_timeout = source_timeout

    async def SearchSources(
        self, request: research_pb2.SearchSourcesRequest, context: grpc.aio.ServicerContext
    ) -> research_pb2.SearchSourcesResponse:
        """Search the requested sources concurrently."""
        check = RequestValidator()
        check.text("query", request.query, max_length=MAX_QUERY_LENGTH)
        check.number(
            "max_results", request.max_results, low=1, high=MAX_RESULTS, zero_means_default=True
        )
        for index, kind in enumerate(request.sources):
            if kind not in PROTO_TO_KIND:
                name = (
                    document_pb2.SourceKind.Name(kind)
                    if kind in document_pb2.SourceKind.values()
                    else str(kind)
                )
                check.add(f"sources[{index}]", f"unknown source {name}")
        timeout = self._source_timeout
        if request.HasField("source_timeout"):
            timeout = request.source_timeout.ToNanoseconds() / 1e9
            check.number("source_timeout", timeout, low=0.01, high=120, zero_means_default=False)
        check.check()
        try:
            result = await search_sources(
                self._sources,
                request.query,
                [PROTO_TO_KIND[kind] for kind in request.sources],
                max_results=request.max_results or DEFAULT_MAX_RESULTS,
                timeout=call_timeout(context, timeout),
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
        )
